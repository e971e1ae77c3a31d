"""One PNG per diagnostic: a panel per quantity, a curve per layer over training steps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from tpbench.atomic import atomic_path  # noqa: E402

TITLES = {
    "update_angle": "∠(update, BP gradient) [degrees]",
    "update_norm_ratio": "‖update‖ / ‖BP gradient‖",
    "weight_angle": "∠(W, feedback weights) [degrees]",
    "weight_rel_dist": "‖B − W‖ / ‖W‖",
    "reconstruction": "‖G(F(h)) − h‖ / ‖h‖",
    "jacobian_pos_eig": "eigenvalues of J_F·J_G with Re > 0 [fraction]",
    "jacobian_trace": "tr(J_F·J_G)",
}
LOG_SCALE = {"update_norm_ratio"}  # positive, spans orders of magnitude across rules and layers


def group_by_quantity(history: dict[str, list[tuple[int, float]]]) -> dict[str, dict]:
    """{"diag/update_angle/L1": [...]} -> {"update_angle": {"L1": [...]}} in layer order."""
    panels: dict[str, dict] = {}
    for key in sorted(history, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/L", 1)[-1]))):
        quantity, layer = key.removeprefix("diag/").rsplit("/", 1)
        panels.setdefault(quantity, {})[layer] = history[key]
    return panels


def plot_history(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    """Write `path` (PNG): one panel per quantity, one curve per layer, x = training step."""
    panels = group_by_quantity(history)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (quantity, curves) in zip(axes[0], panels.items()):
        colors = plt.cm.viridis([i / max(len(curves) - 1, 1) for i in range(len(curves))])
        for color, (layer, points) in zip(colors, curves.items()):
            steps, values = zip(*points)
            ax.plot(steps, values, color=color, label=layer, marker="." if len(steps) < 30 else "")
        ax.set_title(TITLES.get(quantity, quantity), fontsize="medium")
        ax.set_xlabel("training step")
        if quantity in LOG_SCALE:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as partial:
        fig.savefig(partial, dpi=110)
    plt.close(fig)
