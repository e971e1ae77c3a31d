"""Jacobian conditions (Shibuya et al. 2023): does each layer's feedback map suit its forward map?

For layer l with a feedback map G_l, on each of a few samples of the fixed batch, with
J_F = ∂F_l/∂h_{l-1} at h_{l-1} (n_l x n_{l-1}) and J_G = ∂G_l/∂h_l at h_l = F_l(h_{l-1})
(n_{l-1} x n_l), the product M = J_F·J_G (n_l x n_l) maps a change of layer l's target to the
change of h_l it causes; difference targets move h_l towards its target when M's eigenvalues
have positive real parts. F_l and G_l are the maps the rule propagates targets with (the last
layer's F may end in the rule's output space, e.g. SDTP's softmax); with hybrid targets
J_G = λ·J_Fᵀ + (1 − λ)·J_g. Averaged over the samples:

    diag/jacobian_pos_eig/L<l>  fraction of the eigenvalues of M with positive real part
    diag/jacobian_trace/L<l>    tr(M)   (G = F⁻¹ gives M = I, trace n_l)

Rows of M come from vector-Jacobian products: e_sᵀM = vjp_G(vjp_F(e_s)), one per unit s,
vectorised with torch.func.vmap, so every layer type (dense, locally-connected, conv, pooling)
works.
Layers wider than `max_units` (conv maps) are measured on a fixed random subset S of
`max_units` of their units: the eigenvalues are those of the principal submatrix M[S, S] and the
trace is estimated as (n_l / |S|)·tr(M[S, S]); a message at the first measurement says which.
"""

from __future__ import annotations

import logging
import math

import lightning as L
import torch
from torch import Tensor
from torch.func import jvp, vjp, vmap

from tpbench.diagnostics.base import DiagnosticCallback, layer_key
from tpbench.diagnostics.feedback import Map, feedback_pair, hybrid_lambda

log = logging.getLogger(__name__)


def product_rows(forward: Map, inverse: Map, lam: float, h_prev: Tensor, units: Tensor) -> Tensor:
    """M[S, :] for one sample h_prev (*in_shape) -> (|S|, n_l), M = J_F·J_G with
    J_G = λ·J_Fᵀ + (1 − λ)·J_g (hybrid targets: g_bp(h) = J_Fᵀ·h is linear)."""
    h_in = h_prev.unsqueeze(0)  # (1, *in_shape)
    with torch.no_grad():
        out = forward(h_in)  # (1, *out): a plain pass, so stateful un-pooling sees this sample

    def flat_f(v: Tensor) -> Tensor:  # (n_{l-1},) -> (n_l,)
        return forward(v.view_as(h_in)).flatten()

    def flat_g(u: Tensor) -> Tensor:  # (n_l,) -> (n_{l-1},)
        return inverse(u.view_as(out)).flatten()

    h, vjp_f = vjp(flat_f, h_in.flatten())
    basis = torch.zeros(len(units), h.numel(), device=h.device, dtype=h.dtype)  # (|S|, n_l)
    basis[torch.arange(len(units)), units] = 1.0
    rows = torch.zeros_like(basis)
    if lam < 1:  # e_sᵀ J_F J_g = vjp_g(vjp_F(e_s))
        forward(h_in)  # vjp_f's pass left traced switches: reset them for G
        _, vjp_g = vjp(flat_g, out.flatten())
        rows += (1 - lam) * vmap(lambda e: vjp_g(vjp_f(e)[0])[0])(basis)
    if lam > 0:  # e_sᵀ J_F J_Fᵀ = (J_F (J_Fᵀ e_s))ᵀ = jvp_F(vjp_F(e_s))
        rows += lam * vmap(lambda e: jvp(flat_f, (h_in.flatten(),), vjp_f(e))[1])(basis)
    return rows


class JacobianConditions(DiagnosticCallback):
    """Fraction of eigenvalues of J_F·J_G with positive real part, and its trace, per layer."""

    name = "jacobian"

    def __init__(
        self,
        every_n_steps: int = 500,
        num_samples: int = 2,
        max_units: int = 256,
        plot: bool = True,
    ):
        super().__init__(every_n_steps, num_samples, plot)
        self.max_units = max_units
        self._units: dict[int, Tensor] = {}

    def units(self, index: int, n: int, device: torch.device) -> Tensor:
        """The units measured in layer `index` (all of them, or a fixed subset of max_units)."""
        if index not in self._units:
            if n <= self.max_units:
                self._units[index] = torch.arange(n)
            else:
                generator = torch.Generator().manual_seed(index)
                self._units[index] = torch.randperm(n, generator=generator)[: self.max_units]
                log.info(
                    "Jacobian conditions of layer %d: %d of its %d units (principal submatrix).",
                    index + 1,
                    self.max_units,
                    n,
                )
        return self._units[index].to(device)

    def measure(self, rule: L.LightningModule, x: Tensor, y: Tensor) -> dict[str, float]:
        inputs = [x, *rule.net.forward_all(x)[:-1]]  # h_0 .. h_{L-1}
        metrics = {}
        lam = hybrid_lambda(rule)
        for i, h_prev in enumerate(inputs):
            pair = feedback_pair(rule, i)
            if pair is None:
                continue
            n = math.prod(pair[0](h_prev[:1]).shape[1:])  # n_l, in the space G_l inverts
            units = self.units(i, n, x.device)
            positive, trace = 0.0, 0.0
            for sample in h_prev:
                m = product_rows(*pair, lam, sample, units)[:, units]  # M[S, S]
                positive += (torch.linalg.eigvals(m).real > 0).double().mean().item()
                trace += m.diagonal().sum().item() * n / len(units)
            metrics[layer_key("jacobian_pos_eig", i)] = positive / len(h_prev)
            metrics[layer_key("jacobian_trace", i)] = trace / len(h_prev)
        return metrics
