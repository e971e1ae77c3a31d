"""Targets of the target-propagation family and the layer-local forward loss, as pure functions.

Notation (Bartunov et al. 2018): h_l = F_l(h_{l-1}), G_l ≈ F_l⁻¹ the feedback map of layer l,
t_l the target of h_l, ℓ the task loss (tpbench.algorithms.tasks: cross-entropy with the label,
or the reconstruction error). Per-sample quantities: the output error e = ∂ℓ_n/∂h_L (`Task.error`)
is of one sample's loss, so a target step of size α is the same for every batch size.
Shapes: (N, *layer shape) throughout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def local_loss(h: Tensor, step: Tensor, scale: float = 0.5) -> Tensor:
    """L_l = (1/N) Σ_n c ‖h_l,n − t_l,n‖², summed over units, averaged over the batch, for the
    fixed target t_l = h_l + Δ_l given by its step Δ_l; c = ½ (tpbench, Ernoult) or 1 (Bartunov,
    Meulemans, Shibuya). Written c‖(h_l − h_l.detach()) − Δ_l‖²: same value, and the gradient
    −2cΔ_l is exact, where forming t_l would round a step ≪ h_l away."""
    return scale * ((h - h.detach()) - step).pow(2).sum() / h.shape[0]


def output_step_target(logits: Tensor, error: Tensor, beta: float) -> Tensor:
    """t_L = h_L − β e, e = ∂ℓ_n/∂h_L, for cross-entropy softmax(h_L) − onehot(y)
    (Ernoult et al. 2022, Meulemans et al. 2020)."""
    return logits - beta * error


def label_step_target(prediction: Tensor, best: Tensor, beta: float) -> Tensor:
    """t_L = o + β (argmin ℓ − o), o the prediction (softmax(h_L)): β = 1 is SDTP's t_L = onehot(y)
    (Bartunov Alg. 1), a smaller β a damped, still gradient-free target, β = 0 gives t_L = o."""
    return best if beta == 1 else prediction + beta * (best - prediction)


def gradient_step(grad: Tensor, alpha: float) -> Tensor:
    """Δ_{L-1} = −α ∂ℓ_n/∂h_{L-1}, i.e. t_{L-1} = h_{L-1} − α ∂ℓ_n/∂h_{L-1}  (Lee et al. 2015: the
    penultimate target)."""
    return -alpha * grad


def linearized_difference(f: Callable[[Tensor], Tensor], h_below: Tensor, delta: Tensor) -> Tensor:
    """g_bp(t_l) − g_bp(h_l) = J_F(h_{l-1})ᵀ (t_l − h_l), the exact linearisation of F_l at h_{l-1}
    applied to the difference δ = t_l − h_l (Bartunov §5.6): a vector-Jacobian product of F_l.
    With it, t_{l-1} = h_{l-1} + Jᵀδ is exactly BP's h_{l-1} − α ∂ℓ/∂h_{l-1} when δ = −α ∂ℓ/∂h_l."""
    with torch.enable_grad():
        h = h_below.detach().requires_grad_(True)
        (vjp,) = torch.autograd.grad(f(h), h, delta)
    return vjp


def hybrid_difference(g_tp: Tensor | None, g_bp: Tensor | None, lam: float) -> Tensor:
    """G(t) − G(h) with G = λ·g_bp + (1 − λ)·g_tp, 0 ≤ λ ≤ 1 (Bartunov §5.6 hybrid targets); the
    term with weight 0 may be None (not computed)."""
    if lam == 0:
        return g_tp
    if lam == 1:
        return g_bp
    return lam * g_bp + (1 - lam) * g_tp
