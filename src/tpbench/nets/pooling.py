"""Max-pooling as the last step of a spatial block, with the un-pooling its learned inverse uses.

Pooling is not a block of its own (a block without weights has no target to learn from): a conv or
locally-connected block with pooling computes h = pool(σ(W·x + b)), and its learned inverse first
un-pools, G(h) = σ_g(Vᵀ·unpool(h) + c), so G still maps the block's output space to its input.
Two ways to un-pool, chosen per net (`unpool`):

- "nearest": upsample each pooled value over the pre-pool map (nearest neighbour). Stateless:
  G(h) depends on h alone.
- "max": put each value back at the position its window's maximum came from in the layer's most
  recent forward pass (summed where windows overlap), i.e. the transpose of the max selection,
  the vector-Jacobian product of max-pooling at that forward pass. This is how Ernoult et al.
  (2022) invert their VGG blocks. Stateful: run the layer forward on the input whose positions
  you want before calling its inverse, with the same batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tpbench.errors import ConfigError

UNPOOL_MODES = ("nearest", "max")


class MaxPool(nn.Module):
    """h (N, C, H, W) -> max over kernel x kernel windows with `stride` (no padding)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        kernel: int,
        stride: int | None = None,
        ceil_mode: bool = False,
        unpool: str = "nearest",
    ):
        super().__init__()
        if unpool not in UNPOOL_MODES:
            raise ConfigError(f"Unknown unpool '{unpool}'; valid: {', '.join(UNPOOL_MODES)}.")
        self.in_shape = tuple(in_shape)
        self.kernel, self.stride, self.ceil_mode = kernel, stride or kernel, ceil_mode
        self.unpool_mode = unpool
        self.indices: Tensor | None = None  # argmax positions of the latest forward ("max")
        self.pinned: Tensor | None = None  # those of a pass to come back to (`pin`, `restore`)
        try:
            probe = F.max_pool2d(torch.zeros(1, *self.in_shape), *self._args())
        except RuntimeError:
            raise ConfigError(
                f"Max-pooling {kernel}x{kernel} (stride {self.stride}) does not fit a "
                f"{self.in_shape[1]}x{self.in_shape[2]} map; use fewer pooled blocks or "
                "pool_ceil=true."
            ) from None
        self.out_shape = tuple(probe.shape[1:])

    def _args(self) -> tuple:
        return self.kernel, self.stride, 0, 1, self.ceil_mode

    def extra_repr(self) -> str:
        return (
            f"kernel={self.kernel}, stride={self.stride}, ceil={self.ceil_mode}, "
            f"unpool={self.unpool_mode}"
        )

    def forward(self, h: Tensor) -> Tensor:
        pooled, indices = F.max_pool2d(h, *self._args(), return_indices=True)  # (N, C, H', W')
        if self.unpool_mode == "max":
            self.indices = indices.detach()
        return pooled

    def pin(self) -> None:
        """Remember the latest forward pass's switches (the clean pass of a training step)."""
        self.pinned = self.indices

    def restore(self) -> None:
        self.indices = self.pinned

    def latest_then_pinned(self, g, pinned_copies: int):
        """g, for a batch stacked as [input of the latest pass; `pinned_copies` x the pinned
        pass's input]: un-pools each part with its own pass's switches (L-DRL's [F(h+ε); F(h);
        F(h)+η], Ernoult et al.), then returns to the pinned ones. Stateless un-pooling: g."""
        if self.unpool_mode != "max":
            return g

        def stacked(y: Tensor) -> Tensor:
            self.indices = torch.cat([self.indices, *[self.pinned] * pinned_copies])
            try:
                return g(y)
            finally:
                self.indices = self.pinned

        return stacked

    def unpool(self, h: Tensor) -> Tensor:
        """(N, C, H', W') -> (N, C, H, W), the pre-pool shape."""
        if self.unpool_mode == "nearest":
            return F.interpolate(h, size=self.in_shape[1:], mode="nearest")
        if self.indices is None or self.indices.shape != h.shape:
            raise RuntimeError(
                f"unpool='max' needs a forward pass on a batch of shape {tuple(h.shape)} first "
                f"(last indices: {None if self.indices is None else tuple(self.indices.shape)})."
            )
        n, c, height, width = h.shape[0], *self.in_shape
        # Sᵀh: scatter each value to its window's argmax, summing where windows overlap
        out = h.new_zeros(n, c, height * width)
        out.scatter_add_(2, self.indices.flatten(2), h.flatten(2))
        return out.view(n, c, height, width)
