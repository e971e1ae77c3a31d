"""Runs and sweeps as they lie on disk, for `tpbench report`.

A run is a directory with `.hydra/config.yaml` (and `.hydra/hydra.yaml`, whose config-group
choices name the data, net and rule, and `.hydra/overrides.yaml`, the command line that made it)
and the metrics its logger wrote (CSV, TensorBoard or W&B: tpbench.runs.metric_files). A run's
state: complete, failed, interrupted or running. Optuna storages under the root (`optuna.db`,
`optuna.journal`) decide for sweep trials that ended (with the failure reason); otherwise the
run's `run.yaml` (tpbench.runs.state), and for runs older than that file, its `train.log`
("Done in", or a divergence).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tpbench.runs.metric_files import read_metrics
from tpbench.runs.state import read_state

STATES = {"COMPLETE": "complete", "FAIL": "failed", "PRUNED": "pruned"}  # Optuna's, when ended
RUN_STATES = {
    "finished": "complete",
    "failed": "failed",
    "interrupted": "interrupted",
    "pruned": "pruned",
}
# DTP with another inverse loss is that loss's rule (the FW-DTP authors build their DRL and L-DRL
# rows so: algo=dtp, algo/inverse_loss=drl_clean or ldrl)
RULE_OF_INVERSE_LOSS = {"ldrl": "ldrl", "drl": "drl", "drl_clean": "drl"}
HIDDEN_OVERRIDES = (
    "paths.",
    "hydra.",
    "threads",
    "ckpt_path",
    "trainer.enable_progress_bar",
    "callbacks.",
    "optuna_trial.",
)


@dataclass
class Run:
    path: Path
    cfg: DictConfig
    data: str
    net: str
    rule: str  # the algo config name, `_alt` for the alternating schedule (see rule_label)
    label: str  # what the report groups by: the rule, or "rule key=value" (report --by key)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> epoch -> value
    state: str = "running"  # complete | failed | interrupted | running
    reason: str = ""
    overrides: list[str] = field(default_factory=list)  # what set its hyper-parameters
    trial: bool = False  # a trial of a sweep (its state comes from the Optuna storage)

    def last(self, metric: str) -> float | None:
        values = self.curves.get(metric)
        return values[max(values)] if values else None

    @property
    def val_err(self) -> float:
        """Best validation error (fraction); inf when none was logged."""
        return min(self.curves.get("val/err", {}).values(), default=math.inf)

    @property
    def best_acc(self) -> tuple[float, bool] | None:
        """(accuracy %, is it the test accuracy) of the histogram: test, else best validation;
        None for a run that logged neither (logger=none)."""
        test = self.last("test/err")
        if test is not None:
            return 100 * (1 - test), True
        return (100 * (1 - self.val_err), False) if math.isfinite(self.val_err) else None

    @property
    def failed_at_start(self) -> bool:
        """A run (not a sweep trial) that failed before its first epoch ended: a mistake on
        its command line, not a result; the report lists it apart."""
        return self.state == "failed" and not self.trial and not self.curves


def rule_label(cfg: DictConfig, choices: dict) -> str:
    """The algo config name, `_alt` for the alternating schedule (dtp, dtp_alt, fa, ...); DTP
    with the DRL or L-DRL inverse loss is drl or ldrl (RULE_OF_INVERSE_LOSS)."""
    algo = choices.get("algo") or str(cfg.algo._target_).rsplit(".", 1)[-1].lower()
    if algo.removesuffix("_alt") == "dtp":
        algo = RULE_OF_INVERSE_LOSS.get(choices.get("algo/inverse_loss"), algo)
    schedule = OmegaConf.select(cfg, "algo.schedule._target_", throw_on_resolution_failure=False)
    if schedule is None:
        return algo
    return algo.removesuffix("_alt") + ("_alt" if schedule.endswith(".Alternating") else "")


def read_trials(storages: list[Path]) -> dict[Path, tuple[str, str]]:
    """run dir -> (optuna state, failure reason) from these Optuna storages (.db or .journal)."""
    import optuna  # slow import, only needed here

    from tpbench.runs.storage import FAIL_REASON, INTERRUPTED, RUN_DIR, make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = {}
    for path in storages:
        scheme = "sqlite" if path.suffix == ".db" else "journal"
        storage = make_storage(f"{scheme}:///{path.resolve()}")
        for name in optuna.get_all_study_names(storage):
            for t in optuna.load_study(study_name=name, storage=storage).trials:
                if RUN_DIR in t.user_attrs and INTERRUPTED not in t.user_attrs:
                    # matched by name inside the sweep dir: the sweep may have been moved
                    run_dir = (path.parent / Path(t.user_attrs[RUN_DIR]).name).resolve()
                    trials[run_dir] = (t.state.name, t.user_attrs.get(FAIL_REASON, ""))
    return trials


def state_from_log(run_dir: Path) -> tuple[str, str]:
    logs = list(run_dir.glob("*.log"))
    text = logs[0].read_text(errors="replace") if logs else ""
    diverged = [line for line in text.splitlines() if "diverged" in line.lower()]
    if diverged:
        return "failed", diverged[-1].split(" - ", 1)[-1].strip()
    return ("complete" if "Done in" in text else "running"), ""


def run_state(run_dir: Path, trials: dict) -> tuple[str, str]:
    """(complete | pruned | failed | interrupted | running, reason)."""
    state, reason = trials.get(run_dir.resolve(), (None, ""))
    if state in STATES:
        return STATES[state], reason
    recorded = read_state(run_dir)
    if recorded is not None:
        return RUN_STATES.get(recorded[0], "running"), recorded[1]
    return state_from_log(run_dir)


def shown_overrides(run_dir: Path) -> list[str]:
    """The run's command-line overrides, less paths, threads and console settings."""
    path = run_dir / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(path)] if path.is_file() else []
    return [o for o in overrides if not o.lstrip("+~").startswith(HIDDEN_OVERRIDES)]


def read_run(config: Path, trials: dict, by: str | None) -> Run:
    run_dir = config.parent.parent
    cfg = OmegaConf.load(config)
    hydra_yaml = config.with_name("hydra.yaml")
    choices = dict(OmegaConf.load(hydra_yaml).hydra.runtime.choices) if hydra_yaml.exists() else {}
    rule = rule_label(cfg, choices)
    value = OmegaConf.select(cfg, by, throw_on_resolution_failure=False) if by else None
    label = f"{rule} {by}={value}" if by else rule
    run = Run(run_dir, cfg, choices.get("data", "?"), choices.get("net", "?"), rule, label)
    run.curves = read_metrics(run_dir)
    run.state, run.reason = run_state(run_dir, trials)
    run.trial = run_dir.resolve() in trials
    run.overrides = shown_overrides(run_dir)
    return run


def label_order(label: str) -> tuple[str, bool, float, str]:
    """Sort key of a report label: by rule, then by its `--by` value, as a number where it is one
    (lr=3 before lr=10), else as text."""
    rule, _, value = label.partition("=")
    try:
        return rule, False, float(value), ""
    except ValueError:
        return rule, True, 0.0, value


def read_runs(root: Path, by: str | None = None) -> list[Run]:
    """Every run under root; `by` (a config key) splits each rule by that key's value."""
    found = files_under(root, "optuna.db", "optuna.journal", ".hydra/config.yaml")
    trials = read_trials([*found["optuna.db"], *found["optuna.journal"]])
    return [read_run(config, trials, by) for config in found[".hydra/config.yaml"]]


def files_under(root: Path, *relatives: str) -> dict[str, list[Path]]:
    """relative -> every `<dir>/<relative>` that is a file, for root and each directory below it,
    in one walk that follows symlinked directories (a report over links to several sweeps) but
    reads each real directory once (a link back up would loop)."""
    seen, found = set(), {relative: [] for relative in relatives}
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames.clear()
            continue
        seen.add(real)
        for relative, paths in found.items():
            if (candidate := Path(dirpath) / relative).is_file():
                paths.append(candidate)
    return {relative: sorted(paths) for relative, paths in found.items()}
