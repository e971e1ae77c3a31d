"""Residual basic block (He et al. 2016): h = σ(N₂(W₂ ⊛ σ(N₁(W₁ ⊛ x))) + S(x)).

Two 3x3 convolutions without bias, each followed by batch norm (nets/norms.py), σ after the sum
with the shortcut S:
- `identity`: S(x) = x; where the block changes shape (stride 2, more channels) it subsamples
  x[:, :, ::s, ::s] and zero-pads the new channels (He et al.'s option A, the CIFAR ResNets; no
  weights);
- `projection`: S(x) = N(W_s ⊛ x), a 1x1 convolution with the block's stride and batch norm (He
  et al.'s option B, used by ResNet-18) where the shape changes, the identity elsewhere.
The block is one unit of a Network: `forward(x, route)` hands the route to each of its
convolutions, which are tpbench Conv2d layers, so every feedback-alignment rule finds them
(`routes.routed_layers`) and trains them, the skip path included. It has no `weight` of its own
and no learned inverse: the target-propagation rules refuse a net with such blocks at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from tpbench.errors import ConfigError
from tpbench.nets.activations import make_activation
from tpbench.nets.spatial import Conv2d

SHORTCUTS = ("identity", "projection")


class PaddedIdentity(nn.Module):
    """S(x) = x subsampled by `stride` with zero channels appended evenly on both sides:
    (N, C, H, W) -> (N, C_out, ceil(H/s), ceil(W/s))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        extra = out_channels - in_channels
        self.pad, self.stride = (extra // 2, extra - extra // 2), stride

    def forward(self, x: Tensor, route=None) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad)) if any(self.pad) else x


class BasicBlock(nn.Module):
    """The residual basic block of ResNet-18/20/56; in_shape (C, H, W) -> (channels, H/s, W/s)."""

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: int,
        stride: int = 1,
        shortcut: str = "identity",
        activation: str = "relu",
        init: str = "kaiming",
    ):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ConfigError(f"Unknown shortcut '{shortcut}'; valid: {', '.join(SHORTCUTS)}.")
        self.in_shape = tuple(in_shape)
        conv = {"bias": False, "init": init, "norm": "batch"}
        self.conv1 = Conv2d(self.in_shape, channels, 3, stride, activation, **conv)
        self.conv2 = Conv2d(self.conv1.out_shape, channels, 3, 1, "identity", **conv)
        self.out_shape = self.conv2.out_shape
        reshapes = stride != 1 or self.in_shape[0] != channels
        if reshapes and shortcut == "projection":
            self.shortcut = Conv2d(self.in_shape, channels, 1, stride, "identity", **conv)
        else:
            self.shortcut = PaddedIdentity(self.in_shape[0], channels, stride)
        self.activation = make_activation(activation)

    def forward(self, x: Tensor, route=None) -> Tensor:
        """h = σ(N₂(W₂ ⊛ σ(N₁(W₁ ⊛ x))) + S(x)); `route` goes to every convolution."""
        return self.activation(self.conv2(self.conv1(x, route), route) + self.shortcut(x, route))

    def forward_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())  # W₁, γ₁, β₁, W₂, γ₂, β₂ (and W_s, γ_s, β_s)

    def feedback_parameters(self) -> list[nn.Parameter]:
        return []  # fixed feedback only (buffers): no learned inverse of a block
