"""Net builders named by conf/net/*.yaml. Each adapts to the data's shape and class count."""

from __future__ import annotations

from collections.abc import Sequence

from tpbench.nets.layers import Dense
from tpbench.nets.network import Network


def fc(
    in_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int] = (256,) * 6,
    activation: str = "tanh",
    init: str = "glorot",
    bias: bool = True,
) -> Network:
    """Fully-connected net: hidden Dense layers with σ, then a linear output (logits)."""
    layers, shape = [], tuple(in_shape)
    for width in hidden:
        layers.append(Dense(shape, width, activation, bias, init))
        shape = layers[-1].out_shape
    layers.append(Dense(shape, num_classes, "identity", bias, init))
    return Network(layers)
