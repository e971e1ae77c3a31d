"""Checks shared by the parts of the target-propagation family: per-layer values and the net."""

from __future__ import annotations

from tpbench.errors import ConfigError
from tpbench.nets.torch_net import TorchNet


def per_layer(name: str, value, n: int, kind: type, minimum: float) -> list:
    """A scalar broadcast to n inverses, or a list that must have exactly n entries."""
    values = [value] * n if isinstance(value, int | float) else list(value)
    if len(values) != n:
        raise ConfigError(
            f"algo.{name} has {len(values)} entries; expected {n} (one per learned inverse "
            f"G_2..G_{n + 1}, bottom-up) or a single value."
        )
    values = [kind(v) for v in values]
    if any(v < minimum for v in values):
        raise ConfigError(f"algo.{name}={values} must be ≥ {minimum} everywhere.")
    return values


def check_net(rule: str, net, top_target) -> None:
    """The net has enough layers, and every layer has weights (and so an inverse)."""
    if isinstance(net, TorchNet):
        raise ConfigError(
            f"algo '{rule}' cannot train net=torch: target propagation learns an inverse of "
            "each layer of a tpbench net, and a wrapped torch model has none; use net=torch "
            "with bp, fa, usf, frsf, brsf or dfa, or a tpbench net (e.g. net=fc) with this rule."
        )
    need = top_target.min_layers
    if len(net) < need:
        raise ConfigError(
            f"algo '{rule}' with top_target={top_target.name} needs a net of at least {need} "
            f"layers (it learns inverses of the upper layers); this net has {len(net)}."
        )
    for i, layer in enumerate(net):
        if getattr(layer, "weight", None) is None:
            raise ConfigError(
                f"algo '{rule}' cannot train this net: layer {i + 1} ({type(layer).__name__}) "
                "has no weights and so no inverse G; use blocks that own their weights "
                "(e.g. pooled conv blocks)."
            )
