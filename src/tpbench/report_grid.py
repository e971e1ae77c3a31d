"""`tpbench report DIR --grid X Y`: the best validation error over a 2-D hyper-parameter grid, one
panel per (data, rule), side by side on one colour scale.

It shows how sensitive a rule is to two hyper-parameters, as the FW-DTP poster claims for FW-DTP
against DTP over the forward learning rate and the output step:

    tpbench report logs/fwdtp_search --grid algo.optimizer.lr algo.top_target.beta

Each cell is one (X, Y) (the lowest error where several runs share it: seeds, or the values of
a third searched hyper-parameter, e.g. the feedback learning rate): its best validation error in
%, on a logarithmic colour scale from the best cell to chance level. A pruned trial's cell holds
its best error when it was stopped, hatched, with the number of training epochs it ran; a failed
one is a grey ×; a configuration without a run is blank.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from tpbench.errors import InputError  # noqa: E402
from tpbench.report_plots import save_figure  # noqa: E402
from tpbench.runs.reader import Run, label_order  # noqa: E402

Cell = tuple[float, str, int]  # (best val err %, state, epochs with a validation error)


def value_of(run: Run, key: str) -> float | None:
    value = OmegaConf.select(run.cfg, key, throw_on_resolution_failure=False)
    return float(value) if isinstance(value, int | float) else None


def grid_point(run: Run, x_key: str, y_key: str) -> tuple[float, float] | None:
    """(x, y) of a finished, pruned or failed run that sets both keys; None for any other run."""
    x, y = value_of(run, x_key), value_of(run, y_key)
    if x is None or y is None or run.state not in ("complete", "pruned", "failed"):
        return None
    return x, y


def cells(runs: list[Run], x_key: str, y_key: str) -> dict[tuple[float, float], Cell]:
    """(x, y) -> the cell of the best of the runs there (other seeds, or other values of a third
    searched hyper-parameter such as the feedback learning rate)."""
    table: dict[tuple[float, float], Cell] = {}
    for run in runs:
        point = grid_point(run, x_key, y_key)
        if point is None:
            continue
        error = 100 * run.val_err if math.isfinite(run.val_err) else math.inf
        cell = (error, run.state, len(run.curves.get("val/err", {})))
        if point not in table or cell[0] < table[point][0]:
            table[point] = cell
    return table


def panel_title(
    name: str, runs: list[Run], table: dict[tuple[float, float], Cell], x_key: str, y_key: str
) -> str:
    """'<data, rule>' over '<n> configurations, <p> pruned', or '<r> runs in <n> cells, ...' where
    some cells hold the best of several runs."""
    placed = sum(grid_point(run, x_key, y_key) is not None for run in runs)
    pruned = sum(state == "pruned" for _, state, _ in table.values())
    n_cells = len(table)
    counted = (
        f"{n_cells} configurations" if placed == n_cells else f"{placed} runs in {n_cells} cells"
    )
    return f"{name}\n{counted}, {pruned} pruned"


def _draw_panel(ax, table: dict, xs: list, ys: list, norm: LogNorm) -> matplotlib.image.AxesImage:
    grid = np.full((len(ys), len(xs)), np.nan)
    for (x, y), (error, state, epochs) in table.items():
        i, j = ys.index(y), xs.index(x)
        if state == "failed" or not math.isfinite(error):
            ax.text(j, i, "×", ha="center", va="center", color="0.4", fontsize=12)
            continue
        grid[i, j] = error
        dark = norm(error) > 0.55
        shown = f"{error:.1f}" if state == "complete" or error < 10 else f"{error:.0f}"
        label = shown if state == "complete" else f"{shown}\n{epochs}ep"
        ax.text(j, i, label, ha="center", va="center", fontsize=6.5, color="w" if dark else "k")
        if state == "pruned":
            hatch = {"fill": False, "hatch": "//", "lw": 0, "ec": (0.6, 0.6, 0.6, 0.6)}
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, **hatch))
    image = ax.imshow(grid, norm=norm, cmap="viridis_r", origin="lower", aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys], fontsize=8)
    return image


def plot_grid(runs: list[Run], x_key: str, y_key: str, path: Path, chance: float = 90.0) -> None:
    """One panel per (data, rule) with runs on the grid; raises InputError when none has both."""
    panels: dict[str, list[Run]] = defaultdict(list)
    for run in sorted(runs, key=lambda run: (run.data, label_order(run.label))):
        panels[f"{run.data}, {run.label}"].append(run)
    tables = {name: cells(group, x_key, y_key) for name, group in panels.items()}
    tables = {name: table for name, table in tables.items() if table}
    if not tables:
        raise InputError(f"No finished run under the report's directory sets {x_key} and {y_key}.")
    xs = sorted({x for table in tables.values() for x, _ in table})
    ys = sorted({y for table in tables.values() for _, y in table})
    errors = [e for t in tables.values() for e, s, _ in t.values() if s != "failed" and e > 0]
    norm = LogNorm(vmin=min(errors, default=1.0), vmax=max(chance, max(errors, default=chance)))
    fig, axes = plt.subplots(
        1, len(tables), figsize=(0.55 * len(xs) * len(tables) + 2.2, 0.45 * len(ys) + 2.2),
        sharey=True, squeeze=False, layout="constrained",
    )  # fmt: skip
    for ax, (name, table) in zip(axes[0], tables.items()):
        image = _draw_panel(ax, table, xs, ys, norm)
        ax.set_title(panel_title(name, panels[name], table, x_key, y_key), fontsize=9)
        ax.set_xlabel(x_key, fontsize=8)
    axes[0, 0].set_ylabel(y_key, fontsize=8)
    bar = fig.colorbar(image, ax=axes[0, -1], label="best validation error (%)", shrink=0.9)
    ticks = [norm.vmin, *(t for t in (2, 3, 5, 10, 20, 30, 50, 90) if norm.vmin * 1.3 < t)]
    bar.set_ticks(ticks, labels=[f"{t:.3g}" for t in ticks], minor=False)
    bar.ax.minorticks_off()
    fig.suptitle(
        "Sensitivity to two hyper-parameters\n"
        "(a cell: the best of its runs; hatched: pruned, with its epochs)",
        fontsize=10,
    )
    save_figure(fig, path, dpi=130)
