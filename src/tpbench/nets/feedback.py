"""Feedback pathways a layer builds on request; they live in `layer.feedback[name]`.

- `LearnedInverse`: G(h) = σ_g(Vᵀ·σ_in(h) + c), V of W's shape, applied with the layer's own
  transposed structure (so V = W gives G(h) = σ_g(Wᵀ·h + c)); σ_in is the identity, or the
  layer's own σ for a *mirrored* inverse (Ernoult et al.: ConvT(ELU(unpool(h))) + c, linear
  output). Trainable: these are feedback parameters.
- `FixedFeedback`: a fixed random tensor (a buffer, never trained, saved in checkpoints):
  B of W's shape (FA, sign-symmetry, FW-DTP) or D of shape (num_outputs, *in_shape) (DFA).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tpbench.errors import ConfigError
from tpbench.nets.activations import make_activation

DISTRIBUTIONS = ("uniform", "normal")


def random_tensor(
    shape: tuple[int, ...], distribution: str, scale: float, generator: torch.Generator | None
) -> Tensor:
    """U(−scale, scale) or N(0, scale²) of the given shape."""
    if distribution == "uniform":
        return (torch.rand(shape, generator=generator) * 2 - 1) * scale
    if distribution == "normal":
        return torch.randn(shape, generator=generator) * scale
    raise ConfigError(
        f"Unknown feedback distribution '{distribution}'; valid: {', '.join(DISTRIBUTIONS)}."
    )


def glorot_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def glorot_std(fan_in: int, fan_out: int) -> float:
    """Glorot (Xavier) normal's standard deviation √(2/(fan_in + fan_out))."""
    return math.sqrt(2.0 / (fan_in + fan_out))


class FixedFeedback(nn.Module):
    """A fixed random matrix held as a buffer (`weight`)."""

    def __init__(self, weight: Tensor):
        super().__init__()
        self.register_buffer("weight", weight)


class LearnedInverse(nn.Module):
    """Parameters, σ_g and σ_in of G(h) = σ_g(Vᵀ·σ_in(h) + c); the layer applies the transposed
    structure (and un-pools h first)."""

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None,
        activation: str,
        input_activation: str = "identity",
    ):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None
        self.activation = make_activation(activation)
        self.input_activation = make_activation(input_activation)

    def add_bias(self, a: Tensor) -> Tensor:
        """Vᵀ·h + c (FW-DTP's G has no c)."""
        return a if self.bias is None else a + self.bias
