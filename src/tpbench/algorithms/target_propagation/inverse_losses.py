"""Inverse-loss parts: how a learned G_l ≈ F_l⁻¹ is trained (one part per paper).

Each part draws its noise for inverse j (layer i = rule.inverse_ids[j], σ_j its noise scale) and
evaluates its loss with that noise; the formulas are the pure functions of feedback_losses.py,
which a test evaluates by hand. Every loss trains G_l only and is a sum over units averaged over
the batch. h = h_{l-1}, ε ~ N(0, σ_j²) in h_{l-1}'s space, η ~ N(0, σ_j²) in h_l's space.

- `NoisePreserving` (DTP, Lee 2015):        ‖G_l(F_l(h + ε)) − (h + ε)‖²
- `Denoising` (SDTP, Bartunov Alg. 1):      ‖h − G_l(F_l(h + ε))‖²
- `LDRL` (Ernoult et al. 2022):             −2 εᵀ(G(F(h+ε)) − G(F(h))) + ‖G(F(h)+η) − G(F(h))‖²
- `DRL` (Meulemans et al. 2020):            (1/σ²)‖h + ε − r_{l-1}‖², r_{l-1} = h_{l-1} +
  G_l(r_l) − G_l(h_l), r_l = h + ε sent to the output and difference-propagated back down to l
  with the current G's.
- `CleanTargetDRL` (the FW-DTP authors' "DRL"): ‖h − (G_l(r_l) + sg[h − G_l(h_l)])‖², the clean h
  as target, no 1/σ².
Every part also takes `scale` (a factor on its loss: ½ for the FW-DTP authors' L-DRL) and
`average_units` (divide by the units of h_{l-1}: Meulemans' code averages over units too).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from tpbench.algorithms.feedback_losses import (
    clean_target_drl_loss,
    denoising_loss,
    drl_loss,
    ldrl_loss,
    noise_preserving_loss,
)
from tpbench.algorithms.target_propagation.checks import per_layer
from tpbench.errors import ConfigError


class InverseLoss:
    name = "inverse loss"
    references_first = False  # DRL: every step's references from the start-of-batch G's

    def __init__(
        self, sigma: float | list[float] = 0.1, scale: float = 1.0, average_units: bool = False
    ):
        self.sigma = sigma
        self.sigmas: list[float] = []  # σ_j per learned inverse, set by `bind`
        self.scale, self.average_units = scale, average_units

    def bind(self, n_inverses: int) -> None:
        self.sigmas = per_layer("inverse_loss.sigma", self.sigma, n_inverses, float, 0.0)

    def check(self, rule) -> None:
        """One ConfigError sentence when the loss cannot train this rule's inverses."""

    def draw(self, rule, j: int, ins: list[Tensor], outs: list[Tensor]) -> dict[str, Tensor]:
        """ε ~ N(0, σ_j²) on h_{l-1}."""
        i = rule.inverse_ids[j]
        return {"eps": self.sigmas[j] * torch.randn_like(ins[i])}

    def loss(self, rule, j: int, h_in: Tensor, h_out: Tensor, noise: dict[str, Tensor]) -> Tensor:
        """The formula: summed over units, averaged over the batch."""
        raise NotImplementedError

    def __call__(self, rule, j: int, h_in: Tensor, h_out: Tensor, noise: dict[str, Tensor]):
        """scale · loss, divided by h_{l-1}'s units with `average_units`."""
        units = h_in[0].numel() if self.average_units else 1
        return self.loss(rule, j, h_in, h_out, noise) * (self.scale / units)  # × 1.0 is exact

    @staticmethod
    def maps(rule, j: int):
        """(F_l, G_l) of inverse j."""
        i = rule.inverse_ids[j]
        return rule.forward_map(i), partial(rule.inverse, i)


class NoisePreserving(InverseLoss):
    name = "noise_preserving"

    def loss(self, rule, j, h_in, h_out, noise) -> Tensor:
        return noise_preserving_loss(*self.maps(rule, j), h_in, noise["eps"])


class Denoising(InverseLoss):
    name = "denoising"

    def loss(self, rule, j, h_in, h_out, noise) -> Tensor:
        return denoising_loss(*self.maps(rule, j), h_in, noise["eps"])


class LDRL(InverseLoss):
    name = "ldrl"

    def __init__(self, sigma=0.1, scale=1.0, average_units=False, stop_reference: bool = False):
        super().__init__(sigma, scale, average_units)
        self.stop_reference = stop_reference  # sg on G(F(h)) (the FW-DTP authors' code)

    def draw(self, rule, j, ins, outs) -> dict[str, Tensor]:
        """ε on h_{l-1}, then η ~ N(0, σ_j²) on h_l."""
        noise = super().draw(rule, j, ins, outs)
        noise["eta"] = self.sigmas[j] * torch.randn_like(outs[rule.inverse_ids[j]])
        return noise

    def loss(self, rule, j, h_in, h_out, noise) -> Tensor:
        f, g = self.maps(rule, j)
        pool = rule.net[rule.inverse_ids[j]].pool
        if pool is not None:  # max-un-pooling: G(F(h+ε)) with its own switches, the rest pinned
            g = pool.latest_then_pinned(g, pinned_copies=2)
        eps, eta = noise["eps"], noise["eta"]
        return ldrl_loss(f, g, h_in, eps, eta, h_out, self.stop_reference)


class DRL(InverseLoss):
    name = "drl"
    references_first = True

    def check(self, rule) -> None:
        if min(self.sigmas) <= 0:
            raise ConfigError(
                f"algo '{rule.rule_name}': inverse_loss=drl divides by σ², so "
                "inverse_loss.sigma must be > 0."
            )
        self.check_top_target(rule)

    def check_top_target(self, rule) -> None:
        """Its references run through G_L: the top target must learn it."""
        if not rule.top_target.learns_last_inverse:
            raise ConfigError(
                f"algo '{rule.rule_name}': inverse_loss={self.name} propagates through the last "
                "layer's "
                f"inverse, which top_target={rule.top_target.name} does not learn (use "
                "output_step, label or aux_label)."
            )

    def draw(self, rule, j, ins, outs) -> dict[str, Tensor]:
        """ε, then the reference r_l for G_l computed with the current G's."""
        noise = super().draw(rule, j, ins, outs)
        i = rule.inverse_ids[j]
        noise["r"] = self.reference(rule, i, ins[i] + noise["eps"], ins, outs)
        return noise

    @staticmethod
    @torch.no_grad()
    def reference(rule, i: int, h_noisy: Tensor, ins: list[Tensor], outs: list[Tensor]) -> Tensor:
        """r_l for G_l (layer i): h̃_{l-1} sent forward to the output space, then
        r_{k-1} = h_{k-1} + G_k(r_k) − G_k(h_k) for k = L, ..., l+1 with the current G's."""
        r = h_noisy
        for k in range(i, len(rule.net)):
            r = rule.forward_map(k)(r)
        for k in range(len(rule.net) - 1, i, -1):
            r = ins[k] + rule.inverse_difference(k, outs[k], r - outs[k])
        return r

    def loss(self, rule, j, h_in, h_out, noise) -> Tensor:
        g = partial(rule.inverse, rule.inverse_ids[j])
        return drl_loss(g, noise["eps"], noise["r"], h_out, self.sigmas[j])


class CleanTargetDRL(DRL):
    """The FW-DTP authors' "DRL" (code/models/tp_net.py:129-139): h̃ = h_{l-1} + ε sent to the
    output and back down to l with the current G's and their difference corrections, then
    ‖h_{l-1} − (G_l(r_l) + sg[h_{l-1} − G_l(h_l)])‖²: the clean h_{l-1} as target, no 1/σ²."""

    name = "drl_clean"

    def check(self, rule) -> None:
        self.check_top_target(rule)  # no 1/σ²: σ = 0 is allowed

    def loss(self, rule, j, h_in, h_out, noise) -> Tensor:
        g = partial(rule.inverse, rule.inverse_ids[j])
        return clean_target_drl_loss(g, noise["r"], h_out)
