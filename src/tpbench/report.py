"""`tpbench report DIR`: figures and a table from a sweep or any set of runs under DIR.

A run is a directory with `.hydra/config.yaml` and `csv/metrics*.csv` (a resumed run keeps its
earlier rows in `metrics.<n>.csv`). Optuna storages found under DIR (`optuna.db`,
`optuna.journal`) give each trial's state and failure reason; without one, the run's `train.log`
tells whether it finished ("Done in") or diverged. Writes into DIR:

- `sensitivity.png` (Bartunov Fig. 5): per (data, net), the distribution over configurations of
  the best test accuracy, one colour per rule; a rule whose runs have no test metric is shown with
  its best validation accuracy, and its legend entry says so;
- `curves.png` (Figs. 2, 8): per (data, net), train (dashed) and validation (solid) error per epoch
  of each rule's best run (chosen on validation);
- `report.md`: each rule's best validation error, the test error of that run, the paper's test
  error, run counts and failure reasons.

Partial sweeps work: running trials appear in the counts and curves, not in the histograms.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from tpbench.paper_results import PAPER_TEST_ERRORS  # noqa: E402

log = logging.getLogger(__name__)


@dataclass
class Run:
    path: Path
    cfg: DictConfig
    data: str
    net: str
    rule: str
    curves: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> epoch -> value
    state: str = "running"  # complete | failed | running
    reason: str = ""

    def last(self, metric: str) -> float | None:
        values = self.curves.get(metric)
        return values[max(values)] if values else None

    @property
    def val_err(self) -> float:
        """Best validation error (fraction); inf when none was logged."""
        return min(self.curves.get("val/err", {}).values(), default=math.inf)

    @property
    def best_acc(self) -> tuple[float, bool]:
        """(accuracy %, is it the test accuracy) of the histogram: test, else best validation."""
        test = self.last("test/err")
        return (100 * (1 - test), True) if test is not None else (100 * (1 - self.val_err), False)


def rule_label(cfg: DictConfig, choices: DictConfig) -> str:
    """The algo config name, `_alt` for the alternating schedule (dtp, dtp_alt, fa, ...)."""
    algo = choices.get("algo") or str(cfg.algo._target_).rsplit(".", 1)[-1].lower()
    schedule = OmegaConf.select(cfg, "algo.schedule", throw_on_resolution_failure=False)
    if schedule is None:
        return algo
    return algo.removesuffix("_alt") + ("_alt" if schedule == "alternating" else "")


def read_metrics(run_dir: Path) -> dict[str, dict[int, float]]:
    """metric -> {epoch: last value logged in that epoch}, earlier attempts' files first."""
    files = sorted(run_dir.glob("*/metrics*.csv"), key=lambda p: (p.name == "metrics.csv", p.name))
    curves: dict[str, dict[int, float]] = defaultdict(dict)
    for path in files:
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                for key, value in row.items():
                    if key not in ("epoch", "step") and value not in ("", None):
                        curves[key][int(float(row["epoch"]))] = float(value)
    return dict(curves)


def read_trials(root: Path) -> dict[Path, tuple[str, str]]:
    """run dir -> (state, failure reason) from every Optuna storage under root."""
    import optuna  # slow import, only needed here

    from tpbench.sweeper import FAIL_REASON, INTERRUPTED, RUN_DIR, make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = {}
    paths = [*root.rglob("optuna.db"), *root.rglob("optuna.journal")]
    for path in paths:
        scheme = "sqlite" if path.suffix == ".db" else "journal"
        storage = make_storage(f"{scheme}:///{path.resolve()}")
        for name in optuna.get_all_study_names(storage):
            for t in optuna.load_study(study_name=name, storage=storage).trials:
                if RUN_DIR in t.user_attrs and INTERRUPTED not in t.user_attrs:
                    run_dir = (path.parent / Path(t.user_attrs[RUN_DIR]).name).resolve()
                    trials[run_dir] = (t.state.name, t.user_attrs.get(FAIL_REASON, ""))
    return trials


def _state_from_log(run_dir: Path) -> tuple[str, str]:
    logs = list(run_dir.glob("*.log"))
    text = logs[0].read_text(errors="replace") if logs else ""
    diverged = [line for line in text.splitlines() if "diverged" in line.lower()]
    if diverged:
        return "failed", diverged[-1].split(" - ", 1)[-1].strip()
    return ("complete" if "Done in" in text else "running"), ""


def read_runs(root: Path) -> list[Run]:
    trials = read_trials(root)
    runs = []
    for config in sorted(root.rglob(".hydra/config.yaml")):
        run_dir = config.parent.parent
        cfg = OmegaConf.load(config)
        hydra_yaml = config.with_name("hydra.yaml")
        choices = OmegaConf.load(hydra_yaml).hydra.runtime.choices if hydra_yaml.exists() else {}
        run = Run(
            run_dir,
            cfg,
            choices.get("data", "?"),
            choices.get("net", "?"),
            rule_label(cfg, OmegaConf.create(dict(choices))),
            read_metrics(run_dir),
        )
        state, run.reason = trials.get(run_dir.resolve(), (None, ""))
        states = {"COMPLETE": "complete", "FAIL": "failed", "PRUNED": "failed"}
        run.state = states.get(state, "running") if state else None
        if run.state is None:
            run.state, run.reason = _state_from_log(run_dir)
        runs.append(run)
    return runs


def group(runs: list[Run]) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """(data, net) -> rule -> runs."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[(run.data, run.net)][run.rule].append(run)
    return {k: dict(sorted(v.items())) for k, v in sorted(groups.items())}


def _axes(n: int):
    cols = min(n, 2)
    fig, axes = plt.subplots(
        (n + cols - 1) // cols, cols, figsize=(6.5 * cols, 4.2 * ((n + 1) // 2)), squeeze=False
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_sensitivity(groups, colors, path: Path) -> None:
    fig, axes = _axes(len(groups))
    for ax, ((data, net), rules) in zip(axes, groups.items()):
        accs = [r.best_acc[0] for runs in rules.values() for r in runs if r.state == "complete"]
        low, high = min(accs, default=0.0), max(accs, default=100.0)
        bins = np.linspace(low - 0.5, high + 0.5, 21)  # shared by the rules of this subplot
        for rule, runs in rules.items():
            done = [r.best_acc for r in runs if r.state == "complete"]
            failed = sum(r.state == "failed" for r in runs)
            if not done and not failed:
                continue
            kind = "test" if all(is_test for _, is_test in done) else "best val (no test metric)"
            label = f"{rule}: {len(done)} runs, {failed} failed, {kind}"
            ax.hist(
                [acc for acc, _ in done],
                bins=bins,
                alpha=0.55,
                color=colors[rule],
                label=label,
            )
        ax.set(
            title=f"{data}, {net}",
            xlabel="best accuracy (%) of a configuration",
            ylabel="configurations",
        )
        ax.legend(fontsize=7)
    fig.suptitle("Sensitivity to hyper-parameters (Bartunov et al. 2018, Fig. 5)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(groups, colors, path: Path) -> None:
    fig, axes = _axes(len(groups))
    for ax, ((data, net), rules) in zip(axes, groups.items()):
        for rule, runs in rules.items():
            best = min(runs, key=lambda r: r.val_err)
            for metric, style in (("train/err", "--"), ("val/err", "-")):
                points = sorted(best.curves.get(metric, {}).items())
                if points:
                    epochs, errors = zip(*points)
                    ax.plot(
                        epochs,
                        [100 * e for e in errors],
                        style,
                        color=colors[rule],
                        label=f"{rule} {metric.split('/')[0]}",
                    )
        ax.set(
            title=f"{data}, {net}: train (dashed), validation (solid)",
            xlabel="epoch",
            ylabel="error (%)",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def table(groups) -> list[str]:
    lines = [
        "| data | net | rule | runs: done / failed / running | best val err % "
        "| test err % of that run | paper test err % | source |",
        "|" + "---|" * 8,
    ]
    for (data, net), rules in groups.items():
        for rule, runs in rules.items():
            n = Counter(r.state for r in runs)
            done = [r for r in runs if r.state == "complete"] or runs
            best = min(done, key=lambda r: r.val_err)
            paper, source = PAPER_TEST_ERRORS.get((data, net, rule), (None, ""))
            lines.append(
                f"| {data} | {net} | {rule} | {n['complete']} / {n['failed']} / {n['running']} "
                f"| {_pct(best.val_err)} | {_pct(best.last('test/err'))} "
                f"| {'–' if paper is None else f'{paper:.2f}'} | {source} |"
            )
    return lines


def failures(runs: list[Run]) -> list[str]:
    reasons = Counter(
        (r.rule, r.reason or "no reason recorded") for r in runs if r.state == "failed"
    )
    return [f"- {rule}: {count} x {reason}" for (rule, reason), count in reasons.most_common()]


def report(root: Path, wandb: bool = True) -> list[Path]:
    """Write sensitivity.png, curves.png and report.md into root; return their paths."""
    runs = read_runs(root)
    if not runs:
        raise FileNotFoundError(f"No runs (directories with .hydra/config.yaml) under {root}.")
    groups = group(runs)
    cmap = plt.get_cmap("tab10" if len({r.rule for r in runs}) <= 10 else "tab20")
    colors = {rule: cmap(i) for i, rule in enumerate(sorted({r.rule for r in runs}))}
    paths = [root / "sensitivity.png", root / "curves.png", root / "report.md"]
    plot_sensitivity(groups, colors, paths[0])
    plot_curves(groups, colors, paths[1])
    lines = [
        f"# Report: {root}",
        "",
        f"{len(runs)} runs. Best runs are chosen on validation "
        "error; the test error is that run's. Histogram: best test accuracy per configuration "
        "(best validation accuracy where a run has no test metric).",
        "",
        *table(groups),
        "",
        "![sensitivity](sensitivity.png)",
        "",
        "![curves](curves.png)",
        "",
    ]
    if fails := failures(runs):
        lines += ["## Failed runs", "", *fails, ""]
    paths[2].write_text("\n".join(lines))
    if wandb:
        log_to_wandb(runs, paths)
    return paths


def log_to_wandb(runs: list[Run], paths: list[Path]) -> None:
    """Log the figures and table to W&B when the runs used the wandb logger."""
    wandb_cfg = next(
        (r.cfg.logger.wandb for r in runs if "wandb" in (r.cfg.get("logger") or {})), None
    )
    if wandb_cfg is None:
        return
    import wandb

    project = OmegaConf.select(wandb_cfg, "project", throw_on_resolution_failure=False)
    with wandb.init(
        project=project or "tpbench",
        job_type="report",
        dir=str(paths[0].parent),
        name=f"report-{paths[0].parent.name}",
    ) as wandb_run:
        wandb_run.log({p.stem: wandb.Image(str(p)) for p in paths[:2]})
        wandb_run.log({"report": wandb.Html(f"<pre>{paths[2].read_text()}</pre>")})
