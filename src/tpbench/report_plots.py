"""The figures of `tpbench report`, made to be shown in a talk; only what the runs hold is drawn.

- `plot_sensitivity` (Bartunov Fig. 5): per (data, net), a panel per rule (four to a row, shared
  axes) with the histogram of the best accuracy of each configuration; a panel's title gives the
  rule, its complete, pruned (stopped early by the sweep's pruner, not in the histogram) and
  failed runs, and says when the values are validation accuracies (runs without a test metric).
  Rules without a finished run that logged an accuracy (only failed
  runs, or logger=none) get no panel, data/net pairs without such a rule no row; the accuracy
  axis stays within 0-100 % with a few ticks.
- `plot_curves` (Figs. 2, 8): per (data, net), the train (dashed, open squares) and validation
  (solid, dots) error of each rule's best run (chosen on validation) per epoch, counted from 1
  as the progress bar counts them (a 1-epoch run is two markers at epoch 1), the legend outside
  the axes.
Each returns False, and writes nothing, when there is nothing to draw.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tpbench.atomic import atomic_path  # noqa: E402
from tpbench.runs.reader import Run  # noqa: E402

COLUMNS = 4  # sensitivity panels per row
PANEL_WIDTH, MIN_WIDTH = 3.3, 6.4  # inches: a one-panel figure still fits its title
Groups = dict[tuple[str, str], dict[str, list[Run]]]
TITLE = "Sensitivity to hyper-parameters (Bartunov et al. 2018, Fig. 5)"
STYLES = {"train/err": ("--", "s", "train"), "val/err": ("-", "o", "validation")}


def _accuracies(runs: list[Run]) -> list[tuple[float, bool]]:
    """(accuracy %, is test) of the complete runs that logged one."""
    return [acc for r in runs if r.state == "complete" and (acc := r.best_acc) is not None]


def _drawable(groups: Groups) -> Groups:
    """Per (data, net), the rules with at least one accuracy to draw; pairs with none go."""
    shown = {}
    for key, rules in groups.items():
        kept = {rule: runs for rule, runs in rules.items() if _accuracies(runs)}
        if kept:
            shown[key] = kept
    return shown


def _bins(accuracies: list[float]) -> np.ndarray:
    """15 bins around the values, within [0, 100] %, at least 1 % wide in all."""
    low, high = min(accuracies), max(accuracies)
    pad = max(0.5, 0.05 * (high - low))
    low, high = max(0.0, low - pad), min(100.0, high + pad)
    if high - low < 1.0:
        low, high = (max(0.0, high - 1.0), high) if high >= 100.0 else (low, low + 1.0)
    return np.linspace(low, high, 16)


def plot_sensitivity(groups: Groups, colors: dict, path: Path) -> bool:
    shown = _drawable(groups)
    if not shown:
        return False
    rows = [math.ceil(len(rules) / COLUMNS) for rules in shown.values()]
    columns = min(COLUMNS, max(len(rules) for rules in shown.values()))
    width = max(PANEL_WIDTH * columns, MIN_WIDTH)
    fig = plt.figure(figsize=(width, 2.8 * sum(rows) + 1.0), layout="constrained")
    subfigs = fig.subfigures(len(shown), 1, height_ratios=rows, squeeze=False)[:, 0]
    for subfig, n_rows, ((data, net), rules) in zip(subfigs, rows, shown.items()):
        subfig.suptitle(f"{data}, {net}", fontweight="bold")
        axes = subfig.subplots(n_rows, columns, sharex=True, sharey=True, squeeze=False)
        values = [acc for runs in rules.values() for acc, _ in _accuracies(runs)]
        bins = _bins(values)  # shared by the panels of this row
        for ax, (rule, runs) in zip(axes.flat, rules.items()):
            _histogram(ax, rule, runs, bins, colors[rule])
        for ax in axes.flat[len(rules) :]:
            ax.set_axis_off()
        for ax in axes[-1]:
            ax.set_xlabel("best accuracy (%)")
        for ax in axes[:, 0]:
            ax.set_ylabel("configurations")
    fig.suptitle("\n".join(textwrap.wrap(TITLE, width=int(11 * width))))
    save_figure(fig, path)
    return True


def _histogram(ax: plt.Axes, rule: str, runs: list[Run], bins: np.ndarray, color) -> None:
    done = _accuracies(runs)
    ended = Counter(r.state for r in runs)
    ax.hist([acc for acc, _ in done], bins=bins, color=color, edgecolor="white")
    kind = "" if all(is_test for _, is_test in done) else ", best val acc"
    runs_word = "run" if len(done) == 1 else "runs"
    pruned = f", {ended['pruned']} pruned" if ended["pruned"] else ""
    title = f"{rule}\n{len(done)} {runs_word}{pruned}, {ended['failed']} failed{kind}"
    ax.set_title(title, fontsize=9)
    ax.set_xlim(bins[0], bins[-1])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _best_with_curves(groups: Groups) -> dict[tuple[str, str], dict[str, Run]]:
    """Per (data, net), each rule's best run (on validation) among those with a curve."""
    shown = {}
    for key, rules in groups.items():
        best = {}
        for rule, runs in rules.items():
            with_curves = [r for r in runs if any(r.curves.get(m) for m in STYLES)]
            if with_curves:
                best[rule] = min(with_curves, key=lambda r: r.val_err)
        if best:
            shown[key] = best
    return shown


def plot_curves(groups: Groups, colors: dict, path: Path) -> bool:
    shown = _best_with_curves(groups)
    if not shown:
        return False
    fig, axes = plt.subplots(
        len(shown), 1, figsize=(9, 3.6 * len(shown)), squeeze=False, layout="constrained"
    )
    for ax, ((data, net), best) in zip(axes[:, 0], shown.items()):
        last = 1
        for rule, run in best.items():
            for metric, (line, marker, _) in STYLES.items():
                points = sorted(run.curves.get(metric, {}).items())
                if not points:
                    continue
                epochs = [epoch + 1 for epoch, _ in points]  # counted from 1
                last = max(last, epochs[-1])
                face = "white" if metric == "train/err" else colors[rule]
                ax.plot(epochs, [100 * e for _, e in points], line, marker=marker,
                        markersize=5, markerfacecolor=face, color=colors[rule],
                        label=rule if metric == "val/err" else None)  # fmt: skip
        ax.set(title=f"{data}, {net}: best run of each rule", xlabel="epoch", ylabel="error (%)")
        ax.set_xlim(0.5, last + 0.5)
        if last <= 12:  # every epoch a tick (a 1-epoch run: one tick, 1)
            ax.set_xticks(range(1, last + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, min(ax.get_ylim()[1], 100) * 1.04)  # markers at 100 % stay whole
        ax.grid(alpha=0.3)
        _legend(ax)
    save_figure(fig, path)
    return True


def _legend(ax: plt.Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    styles = [
        Line2D([], [], color="grey", linestyle=line, marker=marker, markerfacecolor=face)
        for (line, marker, _), face in zip(STYLES.values(), ("white", "grey"))
    ]
    names = [name for _, _, name in STYLES.values()]
    ax.legend([*handles, *styles], [*labels, *names], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1), frameon=False)  # fmt: skip


def save_figure(fig: plt.Figure, path: Path, dpi: int = 120) -> None:
    """Write the figure whole (tpbench.atomic) and close it."""
    with atomic_path(path) as partial:
        fig.savefig(partial, dpi=dpi)
    plt.close(fig)
