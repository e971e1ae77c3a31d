"""The `tpbench` console script.

- `tpbench report DIR`: sensitivity histograms, learning curves and a table of best errors next to
  the papers' numbers, from a sweep or any directory of runs (see tpbench.report).
- `tpbench continue SWEEP_DIR [OVERRIDES...]`: resume a finished sweep's best trial in its own
  directory from its last checkpoint, with extra overrides such as `trainer.max_epochs=90`
  (Bartunov's ImageNet protocol: 60 configurations for 10 epochs, then only the best goes on).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

TRAIN = "from tpbench.train import main; main()"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def best_trial_overrides(sweep_dir: Path, overrides: list[str]) -> tuple[list[str], Path]:
    """(train.py arguments that resume the best trial in its run dir, the sweep's start dir)."""
    from tpbench.sweeper import quote

    results = sweep_dir / "optimization_results.yaml"
    if not results.is_file():
        raise FileNotFoundError(
            f"{results} does not exist: continue a sweep that has ended with a complete trial."
        )
    run_dir = Path(OmegaConf.load(results).best_run_dir)
    previous = list(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    replaced = {_key(o) for o in overrides}
    kept = [o for o in previous if _key(o) not in replaced]
    cwd = Path(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.cwd)
    return [*kept, *overrides, f"hydra.run.dir={quote(str(run_dir))}", "ckpt_path=auto"], cwd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tpbench", description="tpbench utilities")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="figures and tables from runs or sweeps")
    report.add_argument("dir", type=Path, help="a sweep directory, or any directory of runs")
    report.add_argument("--no-wandb", action="store_true", help="never log the report to W&B")
    report.add_argument(
        "--by", help="split each rule by this config value, e.g. algo.top_target.size"
    )
    resume = commands.add_parser("continue", help="resume a sweep's best trial, e.g. longer")
    resume.add_argument("dir", type=Path, help="the sweep directory (optimization_results.yaml)")
    resume.add_argument("overrides", nargs="*", help="e.g. trainer.max_epochs=90")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a directory; pass a sweep or runs directory.")
    try:
        if args.command == "continue":
            train_args, cwd = best_trial_overrides(args.dir.resolve(), args.overrides)
            logging.info("python train.py %s", " ".join(train_args))
            return subprocess.call([sys.executable, "-c", TRAIN, *train_args], cwd=cwd)
        from tpbench.report import report as write_report  # matplotlib: only when used

        for path in write_report(args.dir, wandb=not args.no_wandb, by=args.by):
            logging.info("wrote %s", path)
    except FileNotFoundError as error:
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
