"""Normalisation of a layer's pre-activation by name: h = σ(N(W·x + b)).

`batch`: batch normalisation (Ioffe & Szegedy 2015) with a learned per-channel scale γ and shift β
and running statistics for evaluation: N(a) = γ·(a − μ_B)/√(σ²_B + ε) + β, μ_B and σ²_B over the
batch (and the spatial positions of a conv map) in training, their running averages in eval mode.
γ and β are forward parameters; every rule trains them with the error that reaches N's output.
"""

from __future__ import annotations

from torch import nn

from tpbench.errors import ConfigError

NORMS = ("batch",)


def make_norm(name: str | None, shape: tuple[int, ...]) -> nn.Module | None:
    """None, or the normalisation `name` of a (C,) or (C, H, W) pre-activation."""
    if name is None:
        return None
    if name != "batch":
        raise ConfigError(f"Unknown norm '{name}'; valid: null, {', '.join(NORMS)}.")
    return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])
