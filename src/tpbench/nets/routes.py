"""Feedback routes: how a layer's linear map W·x sends the error back to its input.

A layer computes a = W·x with its own structure (dense, locally-connected, conv). Backprop sends
∂ℓ/∂x = Wᵀ·δ back; a *route* passed to the layer's forward changes only that: the feedback-
alignment family sends Bᵀ·δ instead, with B of W's shape and the layer's transposed structure
(`layer.linear_transpose`). Everything else a layer or block does in its forward pass (bias,
activation, pooling, a skip connection, a normalisation) stays the layer's own code, so it works
under every rule. The weight gradient ∂ℓ/∂W = δ·xᵀ is always the true one.

Which B (Lillicrap et al. 2016; Liao et al. 2016), stored per layer in `layer.feedback["B"]`:
- `fa`:   B fixed random;
- `usf`:  B = s·sign(W) (the stored tensor is the scalar s);
- `frsf`, `brsf`: B = |R| ⊙ sign(W) (the stored tensor is |R|; brSF redraws it every step).
"""

from __future__ import annotations

import torch
from torch import Tensor

ROUTE_KINDS = ("fa", "usf", "frsf", "brsf")


class _RoutedLinear(torch.autograd.Function):
    """Identity on a = W·sg(x) whose backward also sends Bᵀ·δ to x.

    `a` is computed from the detached input, so autograd gives W its true gradient δ·xᵀ through
    the forward op itself; this node adds the one thing the route changes, ∂ℓ/∂x = Bᵀ·δ. No extra
    forward op, no nested backward. For sign-symmetry, B = |feedback| with the signs of
    `signs_of` (= W) is built in the backward, only where it is used (not for the first layer,
    whose input is the data).
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


class AlignedFeedback:
    """The route of the feedback-alignment family: W·x forward, Bᵀ·δ backward (module docstring).

    Called by a layer as `route(layer, x)` in place of `layer.linear(x)`; the layer must hold its
    B (or |R|, or s) in `layer.feedback["B"]` and offer `linear` and `linear_transpose`.
    """

    def __init__(self, kind: str = "fa"):
        self.kind = kind
        self.uses_signs = kind != "fa"

    def __call__(self, layer, x: Tensor) -> Tensor:
        signs_of = layer.weight.detach() if self.uses_signs else None
        return _RoutedLinear.apply(
            layer.linear(x.detach()), x, layer.feedback["B"].weight, signs_of, layer
        )

    def feedback_weight(self, layer) -> Tensor:
        """B_l as this route applies it now (W's shape)."""
        stored = layer.feedback["B"].weight
        return sign_symmetric(stored, layer.weight.detach()) if self.uses_signs else stored
