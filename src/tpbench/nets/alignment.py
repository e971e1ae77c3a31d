"""The fixed feedback of the feedback-alignment family, for any list of routed layers.

`build_aligned_feedback` puts each layer's B (fa), |R| (frsf, brsf) or 0-d s (usf) in
`layer.feedback["B"]`, like the init of its W by default; `redraw` is brSF's new draw of |R|.
Used by the FeedbackAlignment rule and by `tpbench.convert`; the route that applies them is
routes.AlignedFeedback.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tpbench.nets.feedback import FixedFeedback, random_tensor


def default_scale(weight: Tensor, feedback: str, distribution: str) -> float:
    """Feedback like W's init: the std σ_W of W as built; U(−√3·σ_W, √3·σ_W) or N(0, σ_W²) for
    B and R (so a uniform init is matched exactly), s = σ_W for uSF."""
    std = float(weight.detach().std())
    return std * math.sqrt(3.0) if distribution == "uniform" and feedback != "usf" else std


def build_aligned_feedback(
    layers: list, kind: str, distribution: str, scale: float | None, seed: int
) -> list[float]:
    """`layer.feedback["B"]` for every layer, from one generator seeded by `seed`; returns the
    scale of each: B or R ~ U(−s, s) / N(0, s²) (fa; |R| for frsf, brsf), or the 0-d s (usf)."""
    generator = torch.Generator().manual_seed(seed)
    scales = []
    for layer in layers:
        s = default_scale(layer.weight, kind, distribution) if scale is None else scale
        scales.append(s)
        if kind == "usf":  # only the scalar s is kept (0-d): B = s·sign(W)
            b = torch.tensor(s)
        else:
            b = random_tensor(tuple(layer.weight.shape), distribution, s, generator)
            b = b if kind == "fa" else b.abs_()  # frSF / brSF keep the magnitudes |R| only
        layer.feedback["B"] = FixedFeedback(b.to(layer.weight.device))
    return scales


def redraw(layers: list, scales: list[float], distribution: str, generator) -> None:
    """brSF's draw of new magnitudes |R_l| ~ |U(−s, s)| or |N(0, s²)| in place."""
    for layer, scale in zip(layers, scales, strict=True):
        magnitude = layer.feedback["B"].weight
        if distribution == "uniform":
            magnitude.uniform_(0, scale, generator=generator)  # |U(−s, s)|
        else:
            magnitude.normal_(0, scale, generator=generator).abs_()  # |N(0, s²)|
