"""`tpbench report DIR`: figures and a table from a sweep or any set of runs under DIR.

Runs and sweep trials are read by tpbench.runs.reader. Writes into DIR:

- `sensitivity.png` (Bartunov Fig. 5) and `curves.png` (Figs. 2, 8): see tpbench.report_plots;
- `report.md`: each rule's best validation error, the test error of that run, the mean and
  standard deviation of the test error over its finished runs (seeds), the paper's test error,
  what docs/results reports for that row (FW-DTP table: docs/results/fwdtp_table.csv),
  run counts by state (complete / pruned / failed / interrupted / running), then each best run's
  directory and the overrides that set its hyper-parameters, and the failure reasons.

`--by KEY` splits each rule by a config value (e.g. `algo.top_target.size` for Bartunov's Fig. 4);
`--grid X Y` adds `grid.png`, the best validation error over two hyper-parameters per rule
(tpbench.report_grid).

Any mix works: plain runs, sweeps (complete or partial: running trials appear in the counts and
curves, not in the histograms), diagnostics runs, failed and interrupted runs.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from matplotlib import colormaps
from omegaconf import OmegaConf

from tpbench.atomic import write_text
from tpbench.checks import wandb_login_found
from tpbench.errors import InputError
from tpbench.paper_results import MEASURED_HERE, PAPER_TEST_ERRORS
from tpbench.report_grid import plot_grid
from tpbench.report_plots import plot_curves, plot_sensitivity
from tpbench.runs.reader import Run, label_order, read_runs

log = logging.getLogger(__name__)
STATES = ("complete", "pruned", "failed", "interrupted", "running")


def group(runs: list[Run]) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """(data, net) -> rule label -> runs."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=lambda run: label_order(run.label)):
        groups[(run.data, run.net)][run.label].append(run)
    return {k: dict(v) for k, v in sorted(groups.items())}


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
        "| data | net | rule | runs: done / pruned / failed / interrupted / running "
        "| best val err % | test err % of that run | test err % mean ± sd (n) "
        "| paper test err % | source | tpbench in docs/results % (seeds) |",
        "|" + "---|" * 10,
    ]
    for (data, net), rules in groups.items():
        for label, runs in rules.items():
            n = Counter(r.state for r in runs)
            best = best_run(runs)
            key = (data, net, runs[0].rule)
            paper, source = PAPER_TEST_ERRORS.get(key, (None, ""))
            counts = " / ".join(str(n[state]) for state in STATES)
            lines.append(
                f"| {data} | {net} | {label} | {counts} "
                f"| {_pct(best.val_err)} | {_pct(best.last('test/err'))} | {_spread(runs)} "
                f"| {'–' if paper is None else f'{paper:.2f}'} | {source} "
                f"| {MEASURED_HERE.get(key, '–')} |"
            )
    return lines


def best_run(runs: list[Run]) -> Run:
    """The complete run with the lowest validation error (any run when none is complete)."""
    return min([r for r in runs if r.state == "complete"] or runs, key=lambda r: r.val_err)


def best_runs(groups, root: Path) -> list[str]:
    """Per (data, net, rule): the best run's directory and the overrides that made it."""
    lines = []
    for (data, net), rules in groups.items():
        for label, runs in rules.items():
            best = best_run(runs)
            where = best.path.relative_to(root) if best.path.is_relative_to(root) else best.path
            overrides = " ".join(f"`{o}`" for o in best.overrides) or "(the defaults)"
            lines.append(
                f"- **{data}, {net}, {label}** ({best.state}, val err {_pct(best.val_err)} %): "
                f"`{where}`; {overrides}"
            )
    return lines


def failures(runs: list[Run]) -> list[str]:
    reasons = Counter(
        (r.label, r.reason or "no reason recorded") for r in runs if r.state == "failed"
    )
    return [f"- {rule}: {count} x {reason}" for (rule, reason), count in reasons.most_common()]


def report(
    root: Path, wandb: bool = True, by: str | None = None, grid: tuple[str, str] | None = None
) -> list[Path]:
    """Write sensitivity.png, curves.png, report.md (and grid.png for two `grid` keys) into root,
    the figures only where there is something to draw; return their paths."""
    found = read_runs(root, by)
    runs = [r for r in found if not r.failed_at_start]
    if not runs:
        raise InputError(_no_runs(root, found))
    groups = group(runs)
    figures = _figures(runs, groups, root, grid)
    lines = [
        f"# Report: {root}",
        "",
        f"{len(runs)} runs. Best runs are chosen on validation "
        "error; the test error is that run's. Histogram: best test accuracy per configuration "
        "(best validation accuracy where a run has no test metric).",
        "",
        *table(groups),
        "",
        *(line for p in figures for line in (f"![{p.stem}]({p.name})", "")),
    ]
    lines += [
        "## Best runs: directory and hyper-parameters (overrides)",
        "",
        *best_runs(groups, root),
    ]
    lines += [""]
    if fails := failures(runs):
        lines += ["## Failed runs", "", *fails, ""]
    if leftovers := [r for r in found if r.failed_at_start]:
        lines += ["## Runs that failed at start-up (not counted above)", ""]
        lines += [f"- `{r.path.name}`: {r.reason or 'no reason recorded'}" for r in leftovers]
    paths = [*figures, root / "report.md"]
    write_text(paths[-1], "\n".join(lines))
    if wandb:
        log_to_wandb(runs, paths)
    return paths


def _figures(runs: list[Run], groups, root: Path, grid: tuple[str, str] | None) -> list[Path]:
    """The figures that have something to draw, written into root."""
    labels = sorted({r.label for r in runs}, key=label_order)
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colors = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
    figures = [root / "sensitivity.png", root / "curves.png"]
    drawn = [plot(groups, colors, p) for plot, p in zip((plot_sensitivity, plot_curves), figures)]
    figures = [p for p, ok in zip(figures, drawn) if ok]
    if grid is not None:
        figures.append(root / "grid.png")
        plot_grid(runs, *grid, figures[-1])
    return figures


def _no_runs(root: Path, found: list[Run]) -> str:
    if not found:
        return f"No runs (directories with .hydra/config.yaml) under {root}."
    return (
        f"No runs under {root} got past start-up: {len(found)} failed before their first "
        f"epoch (e.g. {found[0].path.name}: {found[0].reason or 'no reason recorded'})."
    )


def log_to_wandb(runs: list[Run], paths: list[Path]) -> None:
    """Log the figures and table to W&B when the runs used the wandb logger."""
    wandb_cfg = next(
        (r.cfg.logger.wandb for r in runs if "wandb" in (r.cfg.get("logger") or {})), None
    )
    if wandb_cfg is None:
        return
    import wandb

    root = paths[-1].parent
    mode = None if wandb_login_found() else "offline"
    if mode == "offline":
        log.info("No W&B login: the report is logged offline under %s/wandb (wandb sync)", root)
    project = OmegaConf.select(wandb_cfg, "project", throw_on_resolution_failure=False)
    with wandb.init(
        project=project or "tpbench",
        job_type="report",
        dir=str(root),
        name=f"report-{root.name}",
        mode=mode,
        settings=wandb.Settings(quiet=True),
    ) as wandb_run:
        wandb_run.log({p.stem: wandb.Image(str(p)) for p in paths if p.suffix == ".png"})
        wandb_run.log({"report": wandb.Html(f"<pre>{paths[-1].read_text()}</pre>")})
