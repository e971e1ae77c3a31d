"""The figures of `tpbench report`, made to be shown in a talk.

- `plot_sensitivity` (Bartunov Fig. 5): per (data, net), a panel per rule (four to a row, shared
  axes) with the histogram of the best accuracy of each configuration; a panel's title gives the
  rule, its complete, pruned (stopped early by the sweep's pruner, not in the histogram) and
  failed runs, and says when the values are validation accuracies (runs
  without a test metric).
- `plot_curves` (Figs. 2, 8): per (data, net), the train (dashed) and validation (solid) error of
  each rule's best run (chosen on validation) per epoch, with markers (a 1-epoch run is a point),
  the legend outside the axes.
Counts and epochs get integer ticks.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tpbench.runs.reader import Run  # noqa: E402

COLUMNS = 4  # sensitivity panels per row
Groups = dict[tuple[str, str], dict[str, list[Run]]]


def _finished(rules: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """Rules with at least one complete, pruned or failed run."""
    return {
        rule: runs
        for rule, runs in rules.items()
        if any(r.state in ("complete", "pruned", "failed") for r in runs)
    }


def plot_sensitivity(groups: Groups, colors: dict, path: Path) -> None:
    shown = {key: _finished(rules) for key, rules in groups.items()}
    rows = [max(1, math.ceil(len(rules) / COLUMNS)) for rules in shown.values()]
    columns = min(COLUMNS, max([len(rules) for rules in shown.values()] + [1]))
    fig = plt.figure(figsize=(3.3 * columns, 2.7 * sum(rows) + 0.9), layout="constrained")
    subfigs = fig.subfigures(len(shown), 1, height_ratios=rows, squeeze=False)[:, 0]
    for subfig, n_rows, ((data, net), rules) in zip(subfigs, rows, shown.items()):
        subfig.suptitle(f"{data}, {net}", fontweight="bold")
        axes = subfig.subplots(n_rows, columns, sharex=True, sharey=True, squeeze=False)
        if not rules:
            axes[0, 0].text(0.5, 0.5, "no finished runs yet", ha="center", va="center")
        accs = [r.best_acc[0] for runs in rules.values() for r in runs if r.state == "complete"]
        low, high = min(accs, default=0.0), max(accs, default=100.0)
        bins = np.linspace(low - 0.5, high + 0.5, 16)  # shared by the panels of this row
        for ax, (rule, runs) in zip(axes.flat, rules.items()):
            done = [r.best_acc for r in runs if r.state == "complete"]
            ended = Counter(r.state for r in runs)
            ax.hist([acc for acc, _ in done], bins=bins, color=colors[rule], edgecolor="white")
            kind = "" if all(is_test for _, is_test in done) else ", best val acc"
            pruned = f", {ended['pruned']} pruned" if ended["pruned"] else ""
            title = f"{rule}\n{len(done)} runs{pruned}, {ended['failed']} failed{kind}"
            ax.set_title(title, fontsize=9)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        for ax in axes.flat[len(rules) if rules else 1 :]:
            ax.set_axis_off()
        for ax in axes[-1]:
            ax.set_xlabel("best accuracy (%)")
        for ax in axes[:, 0]:
            ax.set_ylabel("configurations")
    fig.suptitle("Sensitivity to hyper-parameters (Bartunov et al. 2018, Fig. 5)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(groups: Groups, colors: dict, path: Path) -> None:
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(9, 3.6 * len(groups)), squeeze=False, layout="constrained"
    )
    for ax, ((data, net), rules) in zip(axes[:, 0], groups.items()):
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
                        marker="o",
                        markersize=3,
                        color=colors[rule],
                        label=rule if metric == "val/err" else None,
                    )
        ax.set(
            title=f"{data}, {net}: train (dashed), validation (solid)",
            xlabel="epoch",
            ylabel="error (%)",
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            styles = [Line2D([], [], color="grey", linestyle=s) for s in ("--", "-")]
            ax.legend(
                [*handles, *styles],
                [*(h.get_label() for h in handles), "train", "validation"],
                fontsize=8,
                loc="upper left",
                bbox_to_anchor=(1.01, 1),
                frameon=False,
            )
    fig.savefig(path, dpi=120)
    plt.close(fig)
