"""Feedback (inverse) losses of the target-propagation family, as pure functions.

Each trains G_l ≈ F_l⁻¹ only: F_l is evaluated without gradient, and the caller passes the noise
explicitly (so a test can evaluate the same formula by hand). `f` and `g` are layer l's forward
map F_l and feedback map G_l; `h` is h_{l-1} (N, *in_shape); `f_h` = F_l(h) = h_l when known.
Every loss is a sum over units averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Map = Callable[[Tensor], Tensor]


def sq_norm(x: Tensor) -> Tensor:
    """(1/N) Σ_n ‖x_n‖²."""
    return x.pow(2).sum() / x.shape[0]


def noise_preserving_loss(f: Map, g: Map, h: Tensor, eps: Tensor) -> Tensor:
    """DTP (Lee 2015): ‖G_l(F_l(h̃)) − h̃‖², h̃ = h_{l-1} + ε."""
    h_noisy = h + eps
    with torch.no_grad():
        y = f(h_noisy)  # (N, *out_shape)
    return sq_norm(g(y) - h_noisy)


def denoising_loss(f: Map, g: Map, h: Tensor, eps: Tensor) -> Tensor:
    """SDTP, AO-SDTP (Bartunov Alg. 1-2): ‖h_{l-1} − G_l(F_l(h̃))‖², h̃ = h_{l-1} + ε."""
    with torch.no_grad():
        y = f(h + eps)
    return sq_norm(h - g(y))


def ldrl_loss(
    f: Map, g: Map, h: Tensor, eps: Tensor, eta: Tensor, f_h: Tensor, stop_reference: bool = False
) -> Tensor:
    """L-DRL (Ernoult 2022): −2 εᵀ(G(F(h+ε)) − G(F(h))) + ‖G(F(h)+η) − G(F(h))‖²,
    ε ~ N(0, σ²) in h_{l-1}'s space, η ~ N(0, σ²) in h_l's space; with `stop_reference` the
    reference G(F(h)) carries no gradient (the FW-DTP authors' code)."""
    with torch.no_grad():
        y_eps = f(h + eps)
    n = h.shape[0]
    # one call of G on the stacked batch [F(h+ε); F(h); F(h)+η]: (3N, *in_shape)
    g_eps, g_0, g_eta = g(torch.cat([y_eps, f_h, f_h + eta])).split(n)
    g_0 = g_0.detach() if stop_reference else g_0
    return (-2 * (eps * (g_eps - g_0)).sum() / n) + sq_norm(g_eta - g_0)


def clean_target_drl_loss(g: Map, r: Tensor, f_h: Tensor) -> Tensor:
    """The FW-DTP authors' "DRL": ‖h_{l-1} − (G_l(r_l) + sg[h_{l-1} − G_l(h_l)])‖² =
    ‖G_l(r_l) − sg[G_l(h_l)]‖², the clean h_{l-1} as target, r_l as in `drl_loss`, no 1/σ²."""
    n = r.shape[0]
    g_r, g_h = g(torch.cat([r, f_h])).split(n)
    return sq_norm(g_r - g_h.detach())


def drl_loss(g: Map, eps: Tensor, r: Tensor, f_h: Tensor, sigma: float) -> Tensor:
    """DRL (Meulemans 2020): (1/σ²)‖h̃_{l-1} − r_{l-1}‖², h̃_{l-1} = h_{l-1} + ε, where
    r_{l-1} = h_{l-1} + G_l(r_l) − G_l(h_l) and r_l is h̃_{l-1} sent forward to the output and
    difference-propagated back down to layer l by the upper G's (the caller computes r_l without
    gradient, so only G_l learns). h_{l-1} cancels: ‖ε − G_l(r_l) + G_l(h_l)‖² / σ²."""
    n = r.shape[0]
    g_r, g_h = g(torch.cat([r, f_h])).split(n)
    return sq_norm(eps - g_r + g_h) / sigma**2
