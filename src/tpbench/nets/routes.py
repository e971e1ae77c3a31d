"""Feedback routes: how a layer's linear map W·x sends the error back to its input.

A layer computes a = W·x with its own structure (dense, locally-connected, conv). Backprop sends
∂ℓ/∂x = Wᵀ·δ back; a *route* passed to the layer's forward changes only that. Everything else a
layer or block does in its forward pass (bias, activation, pooling, a skip connection, a
normalisation) stays the layer's own code, so it works under every rule. The weight gradient
∂ℓ/∂W = δ·xᵀ is always the true one.

- `AlignedFeedback(kind)`, the feedback-alignment family (Lillicrap et al. 2016; Liao et al. 2016):
  ∂ℓ/∂x = Bᵀ·δ with B of W's shape and the layer's transposed structure (`layer.linear_transpose`),
  B per layer in `layer.feedback["B"]`:
  `fa`: B fixed random; `usf`: B = s·sign(W) (the stored tensor is the scalar s);
  `frsf`, `brsf`: B = |R| ⊙ sign(W) (the stored tensor is |R|; brSF redraws it every step).
- `DirectFeedback`, direct feedback alignment (Nøkland 2016): ∂ℓ/∂x = e·D, e = ∂ℓ/∂h_L the output
  error, D of shape (num_outputs, *x's shape) fixed random in `layer.feedback["D"]` (a module
  applied to inputs of several shapes gets one D per shape, see `d_key`). The signal
  enters every weight layer's *input*; autograd carries it through the weight-free operations
  below (σ′, a pooling switch, a skip connection, a normalisation) to the previous weight layer,
  so in a chain δ_l = (e·D_{l+1}) ⊙ σ′(a_l) exactly as Nøkland writes it, and no Wᵀ is used
  anywhere (biotorch puts D at the same place).

A layer that runs a route exposes `weight`, `linear(x, weight=None)`, `linear_transpose(y,
weight=None, input_shape=None)` (input_shape: the size of the input at the call y came from;
layers of a fixed input shape ignore it) and a `feedback` ModuleDict: tpbench's own layers and
the modules `tpbench.convert` makes from nn.Linear / nn.Conv2d. `routed_layers(module)` lists
them in registration order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tpbench.nets.feedback import FixedFeedback, glorot_bound, random_tensor

ROUTE_KINDS = ("fa", "usf", "frsf", "brsf")


class _RoutedLinear(torch.autograd.Function):
    """Identity on a = W·sg(x) whose backward also sends `route.send(layer, δ, x.shape)` to x.

    `a` is computed from the detached input, so autograd gives W its true gradient δ·xᵀ through
    the forward op itself; this node adds the one thing the route changes, ∂ℓ/∂x. No extra
    forward op, no nested backward. Nothing is sent to an input that needs no gradient (the data).
    Each call keeps its own input's shape: a module applied twice per forward pass at different
    sizes (one conv at two resolutions) sends each error back at the size it came from.
    """

    @staticmethod
    def forward(ctx, a, x, route, layer):
        ctx.route, ctx.layer, ctx.input_shape = route, layer, x.shape
        return a.view_as(a)

    @staticmethod
    def backward(ctx, delta: Tensor):
        if not ctx.needs_input_grad[1]:
            return delta, None, None, None
        return delta, ctx.route.send(ctx.layer, delta, ctx.input_shape), None, None


class Route:
    """W·x forward; the subclass's `send(layer, δ)` is what goes back to x."""

    def __call__(self, layer, x: Tensor) -> Tensor:
        return _RoutedLinear.apply(layer.linear(x.detach()), x, self, layer)

    def send(self, layer, delta: Tensor, input_shape: torch.Size) -> Tensor:
        raise NotImplementedError


def sign_symmetric(magnitude: Tensor, weight: Tensor) -> Tensor:
    """B = |magnitude| ⊙ sign(W), W's shape; copysign takes sign(0) as + (W is never exactly 0
    in practice)."""
    return torch.copysign(magnitude.expand_as(weight), weight)


class AlignedFeedback(Route):
    """The route of the feedback-alignment family: W·x forward, Bᵀ·δ backward (module docstring).

    The layer must hold its B (or |R|, or s) in `layer.feedback["B"]`. For sign-symmetry B is
    built from the signs of W at backward time (W is stepped only after the backward), only where
    it is used (not for the first layer, whose input is the data).
    """

    def __init__(self, kind: str = "fa"):
        self.kind = kind
        self.uses_signs = kind != "fa"

    def send(self, layer, delta: Tensor, input_shape: torch.Size) -> Tensor:
        feedback = self.feedback_weight(layer).to(delta.dtype)
        return layer.linear_transpose(delta, feedback, input_shape)  # Bᵀ·δ: (N, *in_shape)

    def feedback_weight(self, layer) -> Tensor:
        """B_l as this route applies it now (W's shape)."""
        stored = layer.feedback["B"].weight
        return sign_symmetric(stored, layer.weight.detach()) if self.uses_signs else stored


class DirectFeedback(Route):
    """DFA's route: e·D back to each weight layer's input (module docstring).

    `receive(e)` must be called with e = ∂ℓ/∂h_L before the backward reaches the net: a tensor hook
    on the output does it (`watch(output)`), since autograd computes the output's gradient first.
    D_l ~ U(−s, s) or N(0, s²), s the Glorot bound of (num_outputs, |x|) unless `scale` is given,
    is drawn from `generator` the first time the layer runs with an input that needs a gradient;
    rules run a probe pass when they are built, so every D exists before training (checkpoints).
    """

    def __init__(
        self,
        num_outputs: int,
        distribution: str = "uniform",
        scale: float | None = None,
        generator: torch.Generator | None = None,
    ):
        self.num_outputs = num_outputs
        self.distribution, self.scale = distribution, scale
        self.generator = generator or torch.Generator().manual_seed(0)
        self.error: Tensor | None = None

    def __call__(self, layer, x: Tensor) -> Tensor:
        if x.requires_grad and d_key(layer, x.shape) not in layer.feedback:
            self.build(layer, tuple(x.shape[1:]), x.device)
        return super().__call__(layer, x)

    def build(self, layer, in_shape: tuple[int, ...], device: torch.device) -> None:
        """D of shape (num_outputs, *in_shape), in `layer.feedback[d_key(...)]`."""
        fan = math.prod(in_shape)
        scale = glorot_bound(self.num_outputs, fan) if self.scale is None else self.scale
        d = random_tensor((self.num_outputs, *in_shape), self.distribution, scale, self.generator)
        layer.feedback[d_key(layer, (0, *in_shape))] = FixedFeedback(d.to(device))

    def watch(self, output: Tensor) -> Tensor:
        """Register the hook that hands ∂ℓ/∂output to `receive`; returns `output`."""
        if output.requires_grad:
            output.register_hook(self.receive)
        return output

    def receive(self, e: Tensor) -> None:
        self.error = e.detach().flatten(1)  # (N, num_outputs)

    def send(self, layer, delta: Tensor, input_shape: torch.Size) -> Tensor:
        d = layer.feedback[d_key(layer, input_shape)].weight  # (num_outputs, *in_shape)
        signal = self.error.to(delta.dtype) @ d.flatten(1).to(delta.dtype)  # e·D: (N, |x|)
        return signal.view(delta.shape[0], *d.shape[1:])


def d_key(layer, input_shape: Sequence[int]) -> str:
    """Where a layer keeps the D of inputs of this shape (batch first): `D` for the shape it
    first ran at, `D_<C>x<H>x<W>` for each further one (a module applied at several sizes)."""
    first = layer.feedback["D"] if "D" in layer.feedback else None
    in_shape = tuple(input_shape[1:])
    if first is None or tuple(first.weight.shape[1:]) == in_shape:
        return "D"
    return "D_" + "x".join(map(str, in_shape))


def routed_layers(module: nn.Module) -> list[nn.Module]:
    """Every submodule (itself included) that runs a route: it has a `weight`, `linear_transpose`
    and a `feedback` dict; in registration order."""
    return [
        m
        for m in module.modules()
        if isinstance(getattr(m, "weight", None), Tensor)
        and hasattr(m, "linear_transpose")
        and isinstance(getattr(m, "feedback", None), nn.ModuleDict)
    ]
