"""`tpbench report DIR`: figures and a table from a sweep or any set of runs under DIR.

Runs and sweep trials are read by tpbench.runs. Writes into DIR:

- `sensitivity.png` (Bartunov Fig. 5): per (data, net), the distribution over configurations of
  the best test accuracy, one colour per rule; a rule whose runs have no test metric is shown with
  its best validation accuracy, and its legend entry says so;
- `curves.png` (Figs. 2, 8): per (data, net), train (dashed) and validation (solid) error per epoch
  of each rule's best run (chosen on validation);
- `report.md`: each rule's best validation error, the test error of that run, the mean and
  standard deviation of the test error over its finished runs (seeds), the paper's test error,
  run counts and failure reasons.

`--by KEY` splits each rule by a config value (e.g. `algo.aux_size` for Bartunov's Fig. 4).

Partial sweeps work: running trials appear in the counts and curves, not in the histograms.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from tpbench.errors import InputError  # noqa: E402
from tpbench.paper_results import PAPER_TEST_ERRORS  # noqa: E402
from tpbench.runs import Run, read_runs  # noqa: E402

log = logging.getLogger(__name__)


def group(runs: list[Run]) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """(data, net) -> rule label -> runs."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[(run.data, run.net)][run.label].append(run)
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


def _spread(runs: list[Run]) -> str:
    """mean ± sd (n) of the test error % over finished runs, e.g. seeds."""
    tests = [
        100 * t for r in runs if r.state == "complete" and (t := r.last("test/err")) is not None
    ]
    if len(tests) < 2:
        return "–"
    return f"{statistics.mean(tests):.2f} ± {statistics.stdev(tests):.2f} ({len(tests)})"


def table(groups) -> list[str]:
    lines = [
        "| data | net | rule | runs: done / failed / running | best val err % "
        "| test err % of that run | test err % mean ± sd (n) | paper test err % | source |",
        "|" + "---|" * 9,
    ]
    for (data, net), rules in groups.items():
        for label, runs in rules.items():
            n = Counter(r.state for r in runs)
            best = min([r for r in runs if r.state == "complete"] or runs, key=lambda r: r.val_err)
            paper, source = PAPER_TEST_ERRORS.get((data, net, runs[0].rule), (None, ""))
            lines.append(
                f"| {data} | {net} | {label} | {n['complete']} / {n['failed']} / {n['running']} "
                f"| {_pct(best.val_err)} | {_pct(best.last('test/err'))} | {_spread(runs)} "
                f"| {'–' if paper is None else f'{paper:.2f}'} | {source} |"
            )
    return lines


def failures(runs: list[Run]) -> list[str]:
    reasons = Counter(
        (r.label, r.reason or "no reason recorded") for r in runs if r.state == "failed"
    )
    return [f"- {rule}: {count} x {reason}" for (rule, reason), count in reasons.most_common()]


def report(root: Path, wandb: bool = True, by: str | None = None) -> list[Path]:
    """Write sensitivity.png, curves.png and report.md into root; return their paths."""
    runs = read_runs(root, by)
    if not runs:
        raise InputError(f"No runs (directories with .hydra/config.yaml) under {root}.")
    groups = group(runs)
    labels = sorted({r.label for r in runs})
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    colors = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
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
