"""ResNets as Networks of residual blocks: ResNet-20/56 for CIFAR (He et al. 2016, §4.2) and
ResNet-18 (He et al. 2016, Table 1) with a 3x3 stem for 32x32 images.

- `resnet(depth=6n+2)`: a 3x3 conv stem (16 channels, batch norm, ReLU), three stages of n basic
  blocks with 16, 32, 64 channels (the 2nd and 3rd stage start with stride 2), global average
  pooling and a linear head; identity shortcuts that zero-pad (option A). ResNet-20 (n = 3) has
  0.27M parameters, ResNet-56 (n = 9) 0.85M, as published (and as biotorch's small_resnet.py).
- `resnet18`: a 3x3 stem (64 channels), four stages of two basic blocks with 64, 128, 256, 512
  channels, projection shortcuts (option B), average pooling, linear head: 11.2M parameters for
  ten classes. The ImageNet stem (7x7 stride 2 and max-pooling) would leave a 32x32 image 1x1
  after the third stage, so tpbench uses the 3x3 stem on every dataset here (28, 32 or 64 pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from tpbench.errors import ConfigError
from tpbench.nets.blocks import BasicBlock
from tpbench.nets.layers import Dense
from tpbench.nets.network import Network
from tpbench.nets.spatial import Conv2d


class PooledDense(Dense):
    """The head: global average pooling of a (C, H, W) map, then a Dense layer on the C means;
    in_shape is (C,), the shape the weights see."""

    def forward(self, x: Tensor, route=None) -> Tensor:
        return super().forward(x.mean((2, 3)) if x.dim() == 4 else x, route)  # (N, C)


def residual_net(
    in_shape: Sequence[int],
    num_classes: int,
    stem: int,
    stages: Sequence[Sequence[int]],
    shortcut: str,
    activation: str,
    init: str,
) -> Network:
    """stem conv -> for each stage (channels, blocks, stride) its basic blocks -> pooled head."""
    if len(in_shape) != 3:
        raise ConfigError(f"A ResNet needs an image input (C, H, W), not shape {tuple(in_shape)}.")
    layers = [Conv2d(in_shape, stem, 3, 1, activation, bias=False, init=init, norm="batch")]
    for channels, blocks, stride in stages:
        for i in range(blocks):
            shape = layers[-1].out_shape
            step = stride if i == 0 else 1
            layers.append(BasicBlock(shape, channels, step, shortcut, activation, init))
    channels = layers[-1].out_shape[0]
    layers.append(PooledDense((channels,), num_classes, "identity", True, init))
    return Network(layers)


def resnet(
    in_shape: Sequence[int],
    num_classes: int,
    depth: int = 20,
    width: int = 16,
    shortcut: str = "identity",
    activation: str = "relu",
    init: str = "kaiming",
) -> Network:
    """CIFAR ResNet of depth 6n + 2 (20, 32, 44, 56, 110): stages of n blocks, width·(1, 2, 4)
    channels."""
    if depth < 8 or (depth - 2) % 6:
        raise ConfigError(f"net.depth={depth} is not a CIFAR ResNet depth; use 6n + 2 (20, 56).")
    n = (depth - 2) // 6
    stages = [(width, n, 1), (2 * width, n, 2), (4 * width, n, 2)]
    return residual_net(in_shape, num_classes, width, stages, shortcut, activation, init)


def resnet18(
    in_shape: Sequence[int],
    num_classes: int,
    width: int = 64,
    shortcut: str = "projection",
    activation: str = "relu",
    init: str = "kaiming",
) -> Network:
    """ResNet-18: stages of 2 blocks with width·(1, 2, 4, 8) channels, strides 1, 2, 2, 2."""
    stages = [(width * 2**i, 2, 1 if i == 0 else 2) for i in range(4)]
    return residual_net(in_shape, num_classes, width, stages, shortcut, activation, init)
