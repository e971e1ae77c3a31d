"""Feedback-map parts: G_l ≈ F_l⁻¹ for every layer that gets a target from above, and how a target
step goes down through it.

G_l(h) = σ_g(Vᵀ·h + c) maps layer l's output space to its input space, with V of W_l's shape
applied with the layer's own transposed structure (dense, locally-connected, conv).
- `LearnedInverse`: V and c trained by an inverse loss (DTP, SDTP, DRL, L-DRL, ...).
- `FixedRandom` (FW-DTP, Shibuya et al. 2023): V = B_l fixed random, no c, never trained.
A target step Δ_l = t_l − h_l goes down as
- difference (DTP, Lee 2015): Δ_{l-1} = G_l(h_l + Δ_l) − G_l(h_l);
- vanilla (TP, `difference: false`): t_{l-1} = G_l(t_l), i.e. Δ_{l-1} = G_l(h_l + Δ_l) − h_{l-1};
- hybrid (Bartunov §5.6, `hybrid: λ`): the difference through G = λ·g_bp + (1 − λ)·G_l, where
  g_bp(t) − g_bp(h) = J_{F_l}ᵀ·Δ_l is the exact linearisation; λ = 1 gives backprop's targets.
- `standardize_targets` (the FW-DTP authors' BN rows, `linear-BN` difference function):
  t_{l-1} = BN(h_{l-1} + G_l(t_l) − G_l(h_l)), BN the parameter-free batch standardisation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tpbench.algorithms.targets import hybrid_difference, linearized_difference
from tpbench.errors import ConfigError
from tpbench.nets.feedback import random_tensor
from tpbench.nets.standardize import batch_standardize


class FeedbackMap:
    """Base: difference targets through G_l, optionally mixed with the exact linearisation."""

    learned = True  # trained by an inverse loss and the feedback optimizer
    difference = True

    def __init__(self, hybrid: float, activation: str | None, standardize_targets: bool):
        if not 0.0 <= hybrid <= 1.0:
            raise ConfigError(f"algo.feedback.hybrid={hybrid} must lie in [0, 1].")
        self.hybrid = hybrid  # λ
        self.activation = activation  # σ_g; None: the activation of the layer below
        self.standardize_targets = standardize_targets

    def activation_of(self, rule, i: int) -> str:
        """σ_g of G_i: as configured, else the activation of the layer below (G_i's range)."""
        return self.activation or rule.net[i - 1].activation_name

    def build(self, rule) -> None:
        """Build G_i on every layer i in `rule.inverse_ids` (in `layer.feedback["inverse"]`)."""
        raise NotImplementedError

    def propagate(self, rule, i: int, h_in: Tensor, h_out: Tensor, step: Tensor) -> Tensor:
        """Δ_{l-1} from Δ_l through layer i's G: (1 − λ)(G(h_l + Δ_l) − G(h_l)) + λ J_Fᵀ Δ_l
        (then BN(h_{l-1} + Δ_{l-1}) − h_{l-1} with `standardize_targets`)."""
        lam = self.hybrid
        g_tp = rule.inverse_difference(i, h_out, step) if lam < 1 else None
        g_bp = linearized_difference(rule.forward_map(i), h_in, step) if lam > 0 else None
        step_below = hybrid_difference(g_tp, g_bp, lam)
        if self.standardize_targets:
            return batch_standardize(h_in + step_below) - h_in
        return step_below


class LearnedInverse(FeedbackMap):
    """G_l(h) = σ_g(Vᵀ·h + c), V ~ U(−s, s) (s = `init_scale`, else Glorot like W) or, with
    `init: glorot_normal`, N(0, 2/(fan_in + fan_out)) (Meulemans' code); c = 0 first. With
    `mirrored`, G_l(h) = Vᵀ·σ_l(unpool(h)) + c: the block's own σ_l before Vᵀ, a linear output
    (Ernoult et al.'s ConvT(ELU(MaxUnpool(h))) + c)."""

    def __init__(
        self,
        difference: bool = True,
        hybrid: float = 0.0,
        activation: str | None = None,
        init_scale: float | None = None,
        standardize_targets: bool = False,
        init: str = "glorot",
        mirrored: bool = False,
    ):
        super().__init__(hybrid, activation, standardize_targets)
        if init not in ("glorot", "glorot_normal"):
            raise ConfigError(
                f"algo.feedback.init={init!r} is not an inverse init; valid: glorot, glorot_normal."
            )
        if hybrid > 0 and not difference:
            raise ConfigError(
                "algo.feedback.hybrid > 0 mixes difference targets; use feedback.difference=true."
            )
        self.difference = difference
        self.init_scale, self.init = init_scale, init
        self.mirrored = mirrored  # G(h) = Vᵀ·σ_l(unpool(h)) + c, linear output (Ernoult)

    def build(self, rule) -> None:
        for i in rule.inverse_ids:
            layer = rule.net[i]
            layer.build_inverse(
                self.activation_of(rule, i), self.init_scale, self.init, self.mirrored
            )

    def propagate(self, rule, i, h_in, h_out, step) -> Tensor:
        if self.difference:
            return super().propagate(rule, i, h_in, h_out, step)
        return rule.inverse(i, h_out + step) - h_in  # vanilla: t_{l-1} = G_l(t_l)


class FixedRandom(FeedbackMap):
    """G_l(h) = σ_g(B_lᵀ·h), B_l ~ U(−scale, scale) or N(0, scale²) drawn from `seed`, no bias,
    frozen and in no optimizer (FW-DTP, Shibuya et al. 2023)."""

    learned = False

    def __init__(
        self,
        distribution: str = "uniform",
        scale: float = 0.01,
        seed: int | None = None,
        hybrid: float = 0.0,
        activation: str | None = None,
        standardize_targets: bool = False,
    ):
        super().__init__(hybrid, activation, standardize_targets)
        self.distribution, self.scale, self.seed = distribution, scale, seed

    def build(self, rule) -> None:
        generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)
        for i in rule.inverse_ids:
            g = rule.net[i].build_inverse(self.activation_of(rule, i))
            with torch.no_grad():
                shape = tuple(g.weight.shape)
                g.weight.copy_(random_tensor(shape, self.distribution, self.scale, generator))
            g.bias = None
            g.requires_grad_(False)
