"""LeNet-5 as biotorch benchmarks it on MNIST and Fashion-MNIST (32x32 inputs).

Read from jsalbert/biotorch at commit 74fad0d, biotorch/models/le_net.py (class LeNetMNIST), and
written here with tpbench's layers: three 5x5 "valid" convolutions (no padding, stride 1) with
6, 16 and 120 channels, ReLU, the first two followed by 2x2 max-pooling, then Dense 84 (ReLU) and
the linear output. On a 32x32 image: 32 -> 28 -> 14 -> 10 -> 5 -> 1 (61,706 parameters for ten
classes); a 28x28 image does not fit the third convolution (set data.resize=32).
"""

from __future__ import annotations

from collections.abc import Sequence

from tpbench.nets.layers import Dense
from tpbench.nets.network import Network
from tpbench.nets.spatial import Conv2d


def lenet(
    in_shape: Sequence[int],
    num_classes: int,
    channels: Sequence[int] = (6, 16, 120),
    hidden: int = 84,
    activation: str = "relu",
    init: str = "glorot",
) -> Network:
    """conv5(6)-pool2-conv5(16)-pool2-conv5(120)-fc(84)-fc(num_classes), ReLU, Glorot (Xavier)
    uniform weights and zero biases (biotorch's `init: xavier`)."""
    layers = []
    shape = tuple(in_shape)
    for i, width in enumerate(channels):
        pool = 2 if i < len(channels) - 1 else None
        layers.append(Conv2d(shape, width, 5, 1, activation, True, init, pool=pool, padding=0))
        shape = layers[-1].out_shape
    layers.append(Dense(shape, hidden, activation, True, init))
    layers.append(Dense(layers[-1].out_shape, num_classes, "identity", True, init))
    return Network(layers)
