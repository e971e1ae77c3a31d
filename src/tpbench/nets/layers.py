"""Layers: h = σ(W·x + b), where W· is a structured linear map (dense, locally-connected, conv).

Every layer exposes the structured map with any weight of W's shape (`linear`) and its transpose
(`linear_transpose`, the vector-Jacobian product of `linear` w.r.t. its input), so a feedback
pathway with its own weights of W's shape computes "Vᵀ·" with the same structure as the forward op.
Feedback pathways built on request live in `layer.feedback` and are never forward parameters.
A layer owns its forward pass under every rule: a rule that changes how the error flows back
through W·x (feedback alignment) passes a `route` to `forward` (see routes.py).
A layer may normalise its pre-activation (`layer.norm`, see norms.py): h = σ(N(W·x + b)).
A spatial layer may end with max-pooling (`layer.pool`, see pooling.py): h = pool(σ(W·x + b));
its learned inverse then un-pools first, so `inverse` always maps out_shape to in_shape.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tpbench.errors import ConfigError
from tpbench.nets.activations import activation_difference, make_activation
from tpbench.nets.feedback import (
    FixedFeedback,
    LearnedInverse,
    glorot_bound,
    glorot_std,
    random_tensor,
)
from tpbench.nets.norms import make_norm
from tpbench.nets.pooling import MaxPool

INITS = ("glorot", "glorot_normal", "kaiming", "lecun", "orthogonal", "pytorch")


def uniform_bound(init: str, fan_in: int, fan_out: int) -> float:
    """b of W ~ U(−b, b): Glorot √(6/(fan_in+fan_out)), Kaiming √(6/fan_in), LeCun √(3/fan_in),
    PyTorch's default √(1/fan_in)."""
    if init == "glorot":
        return math.sqrt(6.0 / (fan_in + fan_out))
    if init == "kaiming":
        return math.sqrt(6.0 / fan_in)
    if init == "lecun":
        return math.sqrt(3.0 / fan_in)
    if init == "pytorch":  # torch.nn's default (kaiming_uniform, a = √5), bias alike
        return math.sqrt(1.0 / fan_in)
    raise ConfigError(f"Unknown init '{init}'; valid: {', '.join(INITS)}.")


def orthogonal_(matrices: Tensor) -> None:
    """Fill each (out, in) matrix of a (B, out, in) batch with orthonormal rows or columns."""
    batch, rows, cols = matrices.shape
    q, r = torch.linalg.qr(torch.randn(batch, max(rows, cols), min(rows, cols)))
    q = q * torch.diagonal(r, dim1=-2, dim2=-1).sign().unsqueeze(-2)  # unique QR: diag(R) > 0
    matrices.copy_(q if rows >= cols else q.transpose(1, 2))


class Layer(nn.Module):
    """Base of every layer: owns W (`weight`), b (`bias`), σ (`activation`) and its feedback."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def __init__(self, in_shape, out_shape, activation: str, bias: bool):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(out_shape)
        self.activation_name = activation
        self.activation = make_activation(activation)
        self.has_bias = bias
        self.pool: MaxPool | None = None  # spatial layers may pool their output
        self.norm: nn.Module | None = None  # h = σ(N(W·x + b)) with a normalisation N
        self.feedback = nn.ModuleDict()

    # --- the structured linear map; subclasses implement both --------------------------------
    @property
    def linear_shape(self) -> tuple[int, ...]:
        """Shape of W·x and b: out_shape, or the shape before pooling for a pooling layer."""
        return self.out_shape if self.pool is None else self.pool.in_shape

    def linear(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """W·x with this layer's structure; x: (N, *in_shape) -> (N, *linear_shape)."""
        raise NotImplementedError

    def linear_transpose(self, y: Tensor, weight: Tensor | None = None, input_shape=None) -> Tensor:
        """Wᵀ·y, the VJP of `linear` w.r.t. x; y: (N, *linear_shape) -> (N, *in_shape)."""
        raise NotImplementedError

    # --- forward pathway ----------------------------------------------------------------------
    def preactivation(self, x: Tensor, route=None) -> Tensor:
        """a = W·x + b; a feedback `route` (tpbench.nets.routes) computes W·x and decides what
        W·x sends back to x (backprop's Wᵀ·δ when None)."""
        a = self.linear(x) if route is None else route(self, x)
        return a if self.bias is None else a + self.bias

    def forward(self, x: Tensor, route=None) -> Tensor:
        """h = σ(W·x + b), σ(N(W·x + b)) with a norm, then pool(h) for a pooling layer; `route`
        as in preactivation."""
        a = self.preactivation(x, route)
        h = self.activation(a if self.norm is None else self.norm(a))
        return h if self.pool is None else self.pool(h)

    def forward_parameters(self) -> list[nn.Parameter]:
        norm = [] if self.norm is None else list(self.norm.parameters())
        return [p for p in (self.weight, self.bias) if p is not None] + norm

    def feedback_parameters(self) -> list[nn.Parameter]:
        return list(self.feedback.parameters())

    @property
    def fan_in_out(self) -> tuple[int, int]:
        raise NotImplementedError

    def weight_matrices(self) -> Tensor:
        """W as a batch of (out, in) matrices, a view: (1, out, in); per position for LC."""
        return self.weight.view(1, self.weight.shape[0], -1)

    def reset_parameters(self, init: str = "glorot") -> None:
        """Glorot (Xavier) uniform by default, as in Bartunov et al.; `glorot_normal`
        N(0, 2/(fan_in + fan_out)) as in Meulemans et al.'s code; `orthogonal` as in FW-DTP's code
        (per position for LC); bias zero, except `pytorch` (torch.nn's default, Ernoult's code)."""
        with torch.no_grad():
            if init == "orthogonal":
                orthogonal_(self.weight_matrices())
            elif init == "glorot_normal":
                self.weight.normal_(0, glorot_std(*self.fan_in_out))
            else:
                bound = uniform_bound(init, *self.fan_in_out)
                self.weight.uniform_(-bound, bound)
            if self.bias is not None and init == "pytorch":  # b ~ U(±1/√fan_in) too
                bound = uniform_bound(init, *self.fan_in_out)
                self.bias.uniform_(-bound, bound)
            elif self.bias is not None:
                self.bias.zero_()

    # --- feedback pathways, built on request ----------------------------------------------------
    @property
    def inverse_bias_shape(self) -> tuple[int, ...]:
        """Shape of the inverse's bias c (per input unit for dense, per channel for conv)."""
        return self.in_shape

    def build_inverse(
        self,
        activation: str | None = None,
        init_scale: float | None = None,
        init="glorot",
        mirrored: bool = False,
    ):
        """Learned inverse G_l: out space -> in space; V ~ U(−s, s) with s = `init_scale` or
        Glorot's bound, or (`init=glorot_normal`) N(0, 2/(fan_in + fan_out)); σ_g defaults to the
        layer's own σ. `mirrored`: G(h) = Vᵀ·σ(unpool(h)) + c, the layer's own σ first and a
        linear output, the block inverted step by step (Ernoult et al. 2022)."""
        if init == "glorot_normal":
            weight = torch.randn_like(self.weight) * glorot_std(*self.fan_in_out)
        else:
            bound = init_scale if init_scale is not None else glorot_bound(*self.fan_in_out)
            weight = (torch.rand_like(self.weight) * 2 - 1) * bound
        bias = torch.zeros(self.inverse_bias_shape) if self.has_bias else None
        if mirrored:
            activation, input_activation = "identity", self.activation_name
        else:
            activation, input_activation = activation or self.activation_name, "identity"
        self.feedback["inverse"] = LearnedInverse(weight, bias, activation, input_activation).to(
            self.weight.device
        )
        return self.feedback["inverse"]

    def inverse(self, h: Tensor, weight: Tensor | None = None) -> Tensor:
        """G_l(h) = σ_g(Vᵀ·h + c), h: (N, *out_shape) -> (N, *in_shape). `weight` overrides V."""
        g = self.feedback["inverse"]
        return g.activation(g.add_bias(self.inverse_linear(h, weight)))

    def inverse_linear(self, h: Tensor, weight: Tensor | None = None) -> Tensor:
        """Vᵀ·σ_in(h), G_l's inner part; a pooling layer un-pools h first: Vᵀ·σ_in(unpool(h))."""
        g = self.feedback["inverse"]
        h = g.input_activation(h if self.pool is None else self.pool.unpool(h))
        return self.linear_transpose(h, g.weight if weight is None else weight)

    def inverse_linear_difference(self, h: Tensor, step: Tensor) -> Tensor:
        """Vᵀ·(σ_in(u(h + Δ)) − σ_in(u(h))) = inverse_linear(h + Δ) − inverse_linear(h), u the
        un-pooling (linear), without subtracting nearly equal values (`activation_difference`);
        Vᵀ·u(Δ) when σ_in is the identity."""
        g = self.feedback["inverse"]
        u = (lambda t: t) if self.pool is None else self.pool.unpool
        d = activation_difference(g.input_activation, u(h), u(step))
        return self.linear_transpose(d, g.weight)

    def build_fixed_feedback(
        self,
        name: str = "B",
        distribution: str = "uniform",
        scale: float | None = None,
        shape: tuple[int, ...] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """A fixed random tensor in `feedback[name]`: W's shape by default (FW-DTP's B);
        `scale` None means like W's Glorot init. Returns the tensor."""
        scale = glorot_bound(*self.fan_in_out) if scale is None else scale
        weight = random_tensor(shape or tuple(self.weight.shape), distribution, scale, generator)
        self.feedback[name] = FixedFeedback(weight.to(self.weight.device))
        return self.feedback[name].weight


class Dense(Layer):
    """Fully-connected layer; flattens its input. W: (out_features, in_features)."""

    def __init__(
        self, in_shape, out_features: int, activation="tanh", bias=True, init="glorot", norm=None
    ):
        super().__init__(in_shape, (out_features,), activation, bias)
        self.norm = make_norm(norm, self.out_shape)
        in_features = math.prod(self.in_shape)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters(init)

    @property
    def fan_in_out(self) -> tuple[int, int]:
        return self.weight.shape[1], self.weight.shape[0]

    def linear(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        w = self.weight if weight is None else weight
        return x.flatten(1) @ w.t()  # (N, in) -> (N, out)

    def linear_transpose(self, y: Tensor, weight: Tensor | None = None, input_shape=None) -> Tensor:
        w = self.weight if weight is None else weight
        return (y @ w).view(-1, *self.in_shape)  # (N, out) -> (N, *in_shape)
