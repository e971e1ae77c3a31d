"""What the config tree offers, found from its files: a rule is its YAML in conf/algo/ (plus its
module), registered nowhere else; benchmarks and the generic tests list the rules from here."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"


def rule_names() -> list[str]:
    """Every `algo=<name>` of conf/algo/*.yaml, sorted (the part groups are subfolders)."""
    return sorted(p.stem for p in (CONFIG_DIR / "algo").glob("*.yaml"))


def parallel_rule_names() -> list[str]:
    """The rules without the alternating-schedule variants (`*_alt`), whose step is their
    parallel twin's: what a benchmark times and a generic test trains."""
    return [name for name in rule_names() if not name.endswith("_alt")]
