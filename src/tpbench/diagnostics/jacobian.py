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

Rows of M come from vector-Jacobian products, e_sᵀM = (e_sᵀJ_F)·J_G, computed with plain
autograd on a batch of copies of the sample, so every layer type (dense, locally-connected, conv,
pooling) works.
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

from tpbench.diagnostics.base import DiagnosticCallback, layer_key
from tpbench.diagnostics.feedback import Map, feedback_pairs, hybrid_lambda

log = logging.getLogger(__name__)


def product_submatrix(
    forward: Map, inverse: Map, lam: float, h_prev: Tensor, units: Tensor
) -> Tensor:
    """M[S, S] for one sample h_prev (*in_shape), M = J_F·J_G with J_G = λ·J_Fᵀ + (1 − λ)·J_g.

    |S| copies of the sample go through F as one batch; one backward with the unit vectors e_s as
    output gradients gives the rows e_sᵀJ_F, a backward through G with those gives e_sᵀJ_F·J_g.
    Plain autograd, so any layer (custom autograd functions, stateful un-pooling) works."""
    k = len(units)
    with torch.enable_grad():
        x = h_prev.expand(k, *h_prev.shape).clone().requires_grad_()  # (|S|, *in_shape)
        out = forward(x)  # (|S|, *out_shape), every row the same
        basis = torch.zeros_like(out).flatten(1)  # (|S|, n_l)
        basis[torch.arange(k), units] = 1.0
        (rows_f,) = torch.autograd.grad(out, x, basis.view_as(out))  # e_sᵀ J_F: (|S|, *in)
        m = torch.zeros(k, k, device=out.device, dtype=out.dtype)
        if lam < 1:
            u = out.detach().requires_grad_()
            (rows,) = torch.autograd.grad(inverse(u), u, rows_f)  # e_sᵀ J_F J_g: (|S|, *out)
            m += (1 - lam) * rows.flatten(1)[:, units]
        if lam > 0:  # (J_F J_Fᵀ)[S, S] = J_F[S, :]·J_F[S, :]ᵀ
            m += lam * rows_f.flatten(1) @ rows_f.flatten(1).t()
    return m


class JacobianConditions(DiagnosticCallback):
    """Fraction of eigenvalues of J_F·J_G with positive real part, and its trace, per layer."""

    name = "jacobian"

    def __init__(
        self,
        every_n_steps: int = 200,
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
        pairs = feedback_pairs(rule)
        if not pairs:
            return {}  # no layer has a G (BP, FA, DFA)
        inputs = [x, *rule.net.forward_all(x)[:-1]]  # h_0 .. h_{L-1}
        metrics, lam = {}, hybrid_lambda(rule)
        for i, pair in pairs.items():
            h_prev = inputs[i]
            n = math.prod(pair[0](h_prev[:1]).shape[1:])  # n_l, in the space G_l inverts
            units = self.units(i, n, x.device)
            positive, trace = 0.0, 0.0
            for sample in h_prev:
                m = product_submatrix(*pair, lam, sample, units)  # M[S, S]
                positive += (torch.linalg.eigvals(m).real > 0).double().mean().item()
                trace += m.diagonal().sum().item() * n / len(units)
            metrics[layer_key("jacobian_pos_eig", i)] = positive / len(h_prev)
            metrics[layer_key("jacobian_trace", i)] = trace / len(h_prev)
        return metrics
