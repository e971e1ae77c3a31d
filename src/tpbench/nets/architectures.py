"""Net builders named by conf/net/*.yaml; the paper nets are configs of these few builders.

Every builder takes the data's `in_shape` and `num_classes` (train.py passes them), so no config
hard-codes an input size. Hidden layers use `activation` (one name, or one per hidden layer) and
the last layer is linear (logits). Defaults follow Bartunov et al. (2018): tanh, Glorot init.

- `fc`: Dense layers (the first flattens the image), then the output layer.
- `autoencoder`: an `fc` whose output has as many units as the input has pixels (flat).
- `lc` / `conv`: spatial blocks from (kernel, channels, stride) specs, each optionally ending in
  max-pooling, then Dense `hidden` layers and the output layer. `lc` uses locally-connected
  blocks (unshared weights), `conv` the same shapes with shared weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tpbench.errors import ConfigError
from tpbench.nets.layers import Dense, Layer
from tpbench.nets.network import Network
from tpbench.nets.spatial import Conv2d, LocallyConnected2d

Activation = str | Sequence[str]


def _per_layer(activation: Activation, count: int) -> list[str]:
    """One activation name per hidden layer, from a single name or a list of `count` names."""
    if isinstance(activation, str):
        return [activation] * count
    names = list(activation)
    if len(names) != count:
        raise ConfigError(
            f"activation lists {len(names)} names ({names}) for {count} hidden layers; give one "
            "name or one per hidden layer."
        )
    return names


def _dense_stack(
    layers: list[Layer],
    shape: tuple[int, ...],
    hidden: Sequence[int],
    activations: list[str],
    out_features: int,
    output_activation: str,
    init: str,
    bias: bool,
) -> Network:
    """Append Dense hidden layers and the output layer to `layers`; return the network."""
    for width, activation in zip(hidden, activations, strict=True):
        layers.append(Dense(shape, int(width), activation, bias, init))
        shape = layers[-1].out_shape
    layers.append(Dense(shape, out_features, output_activation, bias, init))
    return Network(layers)


def fc(
    in_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int] = (256,) * 6,
    activation: Activation = "tanh",
    init: str = "glorot",
    bias: bool = True,
    output_activation: str = "identity",
) -> Network:
    """Fully-connected net: hidden Dense layers with σ, then a linear output (logits)."""
    activations = _per_layer(activation, len(hidden))
    return _dense_stack(
        [], tuple(in_shape), hidden, activations, num_classes, output_activation, init, bias
    )


def autoencoder(
    in_shape: Sequence[int],
    num_classes: int | None = None,
    hidden: Sequence[int] = (512, 64, 512),
    activation: Activation = "tanh",
    init: str = "glorot",
    bias: bool = True,
    output_activation: str = "identity",
) -> Network:
    """Fully-connected autoencoder (Bartunov §5.5: 784-512-64-512-784); the output is the flat
    reconstruction, (N, prod(in_shape)). `num_classes` is accepted and ignored."""
    out_features = math.prod(in_shape)
    return fc(in_shape, out_features, hidden, activation, init, bias, output_activation)


def _block_spec(block: Sequence[int]) -> tuple[int, int, int]:
    """(kernel, channels[, stride=1]) as in Bartunov's Table 3."""
    spec = [int(v) for v in block]
    if len(spec) not in (2, 3):
        raise ConfigError(
            f"Block spec {list(block)} is invalid; give [kernel, channels] or "
            "[kernel, channels, stride]."
        )
    kernel, channels, stride = (*spec, 1)[:3]
    return kernel, channels, stride


def _spatial_net(
    block_type: type[LocallyConnected2d] | type[Conv2d],
    in_shape: Sequence[int],
    num_classes: int,
    blocks: Sequence[Sequence[int]],
    hidden: Sequence[int],
    activation: Activation,
    init: str,
    bias: bool,
    pool: int | Sequence[int] | None,
    pool_ceil: bool,
    unpool: str,
) -> Network:
    activations = _per_layer(activation, len(blocks) + len(hidden))
    layers: list[Layer] = []
    shape = tuple(in_shape)
    for spec, act in zip(blocks, activations[: len(blocks)], strict=True):
        kernel, channels, stride = _block_spec(spec)
        layers.append(
            block_type(shape, channels, kernel, stride, act, bias, init, pool, pool_ceil, unpool)
        )
        shape = layers[-1].out_shape
    dense_activations = activations[len(blocks) :]
    return _dense_stack(
        layers, shape, hidden, dense_activations, num_classes, "identity", init, bias
    )


def lc(
    in_shape: Sequence[int],
    num_classes: int,
    blocks: Sequence[Sequence[int]] = ((3, 32, 2), (3, 64, 2)),
    hidden: Sequence[int] = (1024,),
    activation: Activation = "tanh",
    init: str = "glorot",
    bias: bool = True,
    pool: int | Sequence[int] | None = None,
    pool_ceil: bool = False,
    unpool: str = "nearest",
) -> Network:
    """Locally-connected blocks (kernel, channels, stride), then Dense `hidden`, then logits.
    `pool`: None, k (k x k, stride k) or [k, stride] max-pooling at the end of every block."""
    return _spatial_net(
        LocallyConnected2d, in_shape, num_classes, blocks, hidden, activation, init, bias,
        pool, pool_ceil, unpool,
    )  # fmt: skip


def conv(
    in_shape: Sequence[int],
    num_classes: int,
    blocks: Sequence[Sequence[int]] = ((3, 32, 2), (3, 64, 2)),
    hidden: Sequence[int] = (1024,),
    activation: Activation = "tanh",
    init: str = "glorot",
    bias: bool = True,
    pool: int | Sequence[int] | None = None,
    pool_ceil: bool = False,
    unpool: str = "nearest",
) -> Network:
    """Like `lc` with shared weights (convolutions): Bartunov's "BP ConvNet", VGG, LeNet."""
    return _spatial_net(
        Conv2d, in_shape, num_classes, blocks, hidden, activation, init, bias,
        pool, pool_ceil, unpool,
    )  # fmt: skip
