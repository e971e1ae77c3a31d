"""Feedback alignment (Lillicrap et al. 2016) and its sign-symmetry variants (Liao et al. 2016).

One forward and one backward pass, like backprop, except that each layer sends the error down
with a feedback tensor B_l of W_l's shape in place of W_l: ∂ℓ/∂h_{l-1} = B_lᵀ·δ_l, applied with
the layer's own transposed structure (`layer.linear_transpose`), so dense, locally-connected and
conv layers all work. The weight gradient ∂ℓ/∂W_l = δ_l·h_{l-1}ᵀ is the true one.

`feedback` picks B_l:
- `fa`:   B_l fixed random (distribution and scale configurable; default like W's init);
- `usf`:  B_l = s_l·sign(W_l), follows W's signs as W changes (s_l: W's std at init by default);
- `frsf`: B_l = |R_l| ⊙ sign(W_l), R_l fixed random;
- `brsf`: B_l = |R_l| ⊙ sign(W_l), R_l redrawn every training step.
Every random tensor comes from `feedback_seed`, so runs are reproducible and DDP ranks agree.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tpbench.algorithms.base import LearningRule
from tpbench.errors import ConfigError
from tpbench.nets import Layer, Network
from tpbench.nets.feedback import FixedFeedback

FEEDBACK_KINDS = ("fa", "usf", "frsf", "brsf")


class FeedbackRoute(torch.autograd.Function):
    """Identity on a = W·sg(x) whose backward also sends Bᵀ·δ to x.

    `a` is computed from the detached input, so autograd gives W its true gradient δ·xᵀ through
    the forward op itself; this node adds the one thing FA changes, ∂ℓ/∂x = Bᵀ·δ, applied with
    the layer's structure. No extra forward op, no nested backward. B is `feedback`, or, for
    sign-symmetry, |feedback| with the signs of `signs_of` (= W), built in the backward and only
    where it is used (not for the first layer, whose input is the data).
    """

    @staticmethod
    def forward(ctx, a, x, feedback, signs_of, layer):
        ctx.layer = layer
        ctx.save_for_backward(feedback, signs_of)
        return a.view_as(a)

    @staticmethod
    def backward(ctx, delta: Tensor):
        if not ctx.needs_input_grad[1]:
            return delta, None, None, None, None
        feedback, signs_of = ctx.saved_tensors
        if signs_of is not None:  # |R|·sign(W) (s·sign(W) for a 0-d s), in one op
            feedback = sign_symmetric(feedback, signs_of)
        grad_x = ctx.layer.linear_transpose(delta, feedback.to(delta.dtype))  # Bᵀ·δ: (N, *in)
        return delta, grad_x, None, None, None


def sign_symmetric(magnitude: Tensor, weight: Tensor) -> Tensor:
    """B = |magnitude| ⊙ sign(W), W's shape; copysign takes sign(0) as + (W is never exactly 0
    in practice)."""
    return torch.copysign(magnitude.expand_as(weight), weight)


def feedback_forward(
    layer: Layer, x: Tensor, feedback: Tensor, signs_of: Tensor | None = None
) -> Tensor:
    """h = σ(W·x + b) [then the layer's max-pool], with B in W's place on the way back."""
    a = FeedbackRoute.apply(layer.linear(x.detach()), x, feedback, signs_of, layer)
    h = layer.activation(a if layer.bias is None else a + layer.bias)  # (N, *out_shape)
    return h if layer.pool is None else layer.pool(h)


def default_scale(weight: Tensor, feedback: str, distribution: str) -> float:
    """Feedback like W's init: the std σ_W of W as built; U(−√3·σ_W, √3·σ_W) or N(0, σ_W²) for
    B and R (so a uniform init is matched exactly), s = σ_W for uSF."""
    std = float(weight.detach().std())
    return std * math.sqrt(3.0) if distribution == "uniform" and feedback != "usf" else std


class FeedbackAlignment(LearningRule):
    """FA and the sign-symmetry variants; see the module docstring for `feedback`."""

    def __init__(
        self,
        net: Network,
        optimizer,
        feedback: str = "fa",
        feedback_distribution: str = "uniform",
        feedback_scale: float | None = None,
        feedback_seed: int = 0,
        **kwargs,
    ):
        super().__init__(net, optimizer, **kwargs)
        if feedback not in FEEDBACK_KINDS:
            raise ConfigError(
                f"Unknown feedback '{feedback}' for FeedbackAlignment; valid: "
                f"{', '.join(FEEDBACK_KINDS)}."
            )
        self.feedback_kind, self.feedback_seed = feedback, feedback_seed
        self.feedback_distribution = feedback_distribution
        generator = torch.Generator().manual_seed(feedback_seed)
        self.scales: list[float] = []  # per layer: R's scale (fa, frsf, brsf) or s (usf)
        for layer in self.net:
            scale = default_scale(layer.weight, feedback, feedback_distribution)
            scale = scale if feedback_scale is None else feedback_scale
            self.scales.append(scale)
            if feedback == "usf":  # only the scalar s is kept (0-d): B = s·sign(W)
                layer.feedback["B"] = FixedFeedback(torch.tensor(scale))
                continue
            magnitude = layer.build_fixed_feedback(
                "B", feedback_distribution, scale, generator=generator
            )
            if feedback != "fa":  # frSF / brSF keep the magnitudes |R| only
                magnitude.abs_()

    def feedback_weight(self, layer: Layer) -> Tensor:
        """B_l for this step (W's shape): B, or s·sign(W) (uSF), or |R| ⊙ sign(W) (fr/brSF)."""
        stored = layer.feedback["B"].weight
        return (
            stored if self.feedback_kind == "fa" else sign_symmetric(stored, layer.weight.detach())
        )

    def redraw_magnitudes(self) -> None:
        """brSF: new |R_l| for every layer but the first (whose B is never used: its input is
        the data), from a generator seeded by (feedback_seed, step), so a resumed run and every
        DDP rank draw the same."""
        device = self.net[0].weight.device
        seed = self.feedback_seed * 1_000_003 + self.global_step
        generator = torch.Generator(device=device).manual_seed(seed)
        for layer, scale in list(zip(self.net, self.scales))[1:]:
            magnitude = layer.feedback["B"].weight
            if self.feedback_distribution == "uniform":
                magnitude.uniform_(0, scale, generator=generator)  # |U(−s, s)|
            else:
                magnitude.normal_(0, scale, generator=generator).abs_()  # |N(0, s²)|

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One forward, one backward with B_l in place of W_l, one optimizer step."""
        if self.feedback_kind == "brsf":
            self.redraw_magnitudes()
        optimizer = self.forward_optimizer
        h = x
        for layer in self.net:
            signs_of = None if self.feedback_kind == "fa" else layer.weight.detach()
            h = feedback_forward(layer, h, layer.feedback["B"].weight, signs_of)
        loss = self.task_loss(h, y)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return h, loss
