"""Spatial layers: locally-connected (unshared weights) and convolutional (shared weights).

Both see k x k receptive fields with stride s and zero padding p, by default p = k // 2 (k odd), so
stride 1 keeps the spatial shape and stride s gives ceil(H / s) x ceil(W / s), as in Bartunov et
al. (2018); `padding=0` gives LeNet's "valid" convolutions, H' = floor((H − k) / s) + 1.
`linear_transpose` is the exact vector-Jacobian product of `linear` w.r.t. its input: F.fold of
the transposed per-position product (locally-connected) or conv_transpose2d (conv). A block may
end with max-pooling (see pooling.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tpbench.errors import ConfigError
from tpbench.nets.layers import Layer
from tpbench.nets.norms import make_norm
from tpbench.nets.pooling import MaxPool


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous, so that the batched
    matmul's backward sees plain matrices instead of copying one position at a time."""

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:
        return t.view_as(t)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


class Spatial2d(Layer):
    """Shared geometry of the spatial layers: x (N, C, H, W) -> (N, C_out, H', W') [-> pool]."""

    def __init__(
        self,
        in_shape: Sequence[int],
        out_channels: int,
        kernel_size: int,
        stride: int,
        activation: str,
        bias: bool,
        pool: int | Sequence[int] | None,
        pool_ceil: bool,
        unpool: str,
        padding: int | None = None,
    ):
        if len(in_shape) != 3:
            raise ConfigError(
                f"{type(self).__name__} needs an image input (C, H, W), not shape "
                f"{tuple(in_shape)}."
            )
        if kernel_size < 1 or kernel_size % 2 == 0 or stride < 1:
            raise ConfigError(
                f"Spatial layer kernel {kernel_size}, stride {stride} is invalid; the kernel "
                "size must be odd and both must be positive."
            )
        channels, height, width = in_shape
        padding = kernel_size // 2 if padding is None else padding
        # H' = floor((H + 2p - k) / s) + 1, = ceil(H / s) for p = k // 2
        size = [(n + 2 * padding - kernel_size) // stride + 1 for n in (height, width)]
        if min(size) < 1:
            raise ConfigError(
                f"A {kernel_size}x{kernel_size} {type(self).__name__} with padding {padding} does "
                f"not fit a {height}x{width} input; use larger images (e.g. data.resize=32)."
            )
        conv_shape = (out_channels, *size)
        pooling = None
        if pool is not None:
            kernel, pool_stride = (pool, pool) if isinstance(pool, int) else tuple(pool)
            pooling = MaxPool(conv_shape, kernel, pool_stride, pool_ceil, unpool)
        super().__init__(in_shape, pooling.out_shape if pooling else conv_shape, activation, bias)
        self.pool = pooling
        self.conv_shape = conv_shape  # (C_out, H', W') before pooling
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.in_features = channels * kernel_size**2  # inputs of one receptive field

    @property
    def fan_in_out(self) -> tuple[int, int]:
        return self.in_features, self.conv_shape[0] * self.kernel_size**2

    def extra_repr(self) -> str:
        return (
            f"{self.in_shape} -> {self.conv_shape}, kernel={self.kernel_size}, "
            f"stride={self.stride}, activation={self.activation_name}"
        )


class LocallyConnected2d(Spatial2d):
    """Unshared weights W: (L positions, C_out, C_in·k·k); bias per output unit (C_out, H', W')."""

    def __init__(
        self,
        in_shape: Sequence[int],
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: str = "tanh",
        bias: bool = True,
        init: str = "glorot",
        pool: int | Sequence[int] | None = None,
        pool_ceil: bool = False,
        unpool: str = "nearest",
        padding: int | None = None,
        norm: str | None = None,
    ):
        super().__init__(
            in_shape, out_channels, kernel_size, stride, activation, bias, pool, pool_ceil, unpool,
            padding,
        )  # fmt: skip
        self.norm = make_norm(norm, self.conv_shape)
        positions = math.prod(self.conv_shape[1:])
        self.weight = nn.Parameter(torch.empty(positions, out_channels, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.conv_shape)) if bias else None
        self.reset_parameters(init)

    def weight_matrices(self) -> Tensor:
        return self.weight  # one (O, I) matrix per position

    def linear(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        w = self.weight if weight is None else weight  # (L, O, I)
        x_t = F.pad(x, (self.padding,) * 4).permute(2, 3, 1, 0).contiguous()  # (Hp, Wp, C, N)
        k, s = self.kernel_size, self.stride
        windows = x_t.unfold(0, k, s).unfold(1, k, s)  # (H', W', C, N, k, k), a view
        # receptive fields with the batch innermost, so each position's fields form one matrix
        cols = windows.permute(0, 1, 2, 4, 5, 3).reshape(w.shape[0], w.shape[2], -1)  # (L, I, N)
        y = _ContiguousGrad.apply(torch.bmm(w, cols))  # y_l = W_l x_l at every l: (L, O, N)
        return y.permute(2, 1, 0).reshape(x.shape[0], *self.conv_shape)  # (N, O, H', W')

    def linear_transpose(self, y: Tensor, weight: Tensor | None = None, input_shape=None) -> Tensor:
        w = self.weight if weight is None else weight  # (L, O, I)
        # the batch as rows, (L, N, O) @ (L, O, I): 1.6x faster forward + backward on CPU than
        # (L, I, O) @ (L, O, N), whose (N, I, L) transposition for F.fold copies far more slowly
        y = y.reshape(y.shape[0], self.conv_shape[0], -1).permute(2, 0, 1).contiguous()
        cols = torch.bmm(y, w).permute(1, 2, 0).contiguous()  # (Wᵀ_l y_l)ᵀ rows: (N, I, L)
        return F.fold(  # sum the receptive fields back onto the input map: (N, C, H, W)
            cols, self.in_shape[1:], self.kernel_size, padding=self.padding, stride=self.stride
        )


class Conv2d(Spatial2d):
    """Shared weights W: (C_out, C_in, k, k); bias per channel, held as (C_out, 1, 1)."""

    def __init__(
        self,
        in_shape: Sequence[int],
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: str = "tanh",
        bias: bool = True,
        init: str = "glorot",
        pool: int | Sequence[int] | None = None,
        pool_ceil: bool = False,
        unpool: str = "nearest",
        padding: int | None = None,
        norm: str | None = None,
    ):
        super().__init__(
            in_shape, out_channels, kernel_size, stride, activation, bias, pool, pool_ceil, unpool,
            padding,
        )  # fmt: skip
        self.norm = make_norm(norm, self.conv_shape)
        k = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, self.in_shape[0], k, k))
        self.bias = nn.Parameter(torch.empty(out_channels, 1, 1)) if bias else None
        # conv_transpose2d gives (H' − 1)s − 2p + k rows; output_padding adds the rest back
        height, width = self.in_shape[1:]
        self.output_padding = tuple(
            size + 2 * self.padding - k - (out - 1) * stride
            for size, out in zip((height, width), self.conv_shape[1:])
        )
        self.reset_parameters(init)

    @property
    def inverse_bias_shape(self) -> tuple[int, ...]:
        return (self.in_shape[0], 1, 1)  # per input channel

    def linear(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        w = self.weight if weight is None else weight
        return F.conv2d(x, w, stride=self.stride, padding=self.padding)  # (N, O, H', W')

    def linear_transpose(self, y: Tensor, weight: Tensor | None = None, input_shape=None) -> Tensor:
        w = self.weight if weight is None else weight
        return F.conv_transpose2d(  # (N, O, H', W') -> (N, C, H, W)
            y, w, stride=self.stride, padding=self.padding, output_padding=self.output_padding
        )
