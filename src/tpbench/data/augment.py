"""Batched tensor ops on the device: augmentation (random crop with padding, flips), normalisation.

Both run per mini-batch on the stored (uint8) images: augmentation first, so crop padding is black
as in the usual image pipelines, then normalisation to float.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from tpbench.errors import ConfigError


class Augmentation:
    """x: (N, C, H, W) -> same shape. Each op is drawn per sample from `generator`."""

    def __init__(self, crop_padding: int = 0, hflip: bool = False, vflip: bool = False):
        if not isinstance(crop_padding, int) or crop_padding < 0:
            raise ConfigError(f"data.augment.crop_padding={crop_padding!r} must be an int >= 0.")
        self.crop_padding, self.hflip, self.vflip = crop_padding, bool(hflip), bool(vflip)

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip or self.vflip

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if self.crop_padding > 0:
            x = random_crop(x, self.crop_padding, generator)
        if self.hflip:
            x = random_flip(x, dim=3, generator=generator)
        if self.vflip:
            x = random_flip(x, dim=2, generator=generator)
        return x


def random_flip(x: Tensor, dim: int, generator: torch.Generator) -> Tensor:
    """Flip each sample along `dim` with probability 1/2."""
    flip = torch.rand(len(x), device=x.device, generator=generator) < 0.5  # (N,)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(dim), x)


def random_crop(x: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Zero-pad by `padding` and crop back to H x W at a random offset per sample."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)  # (N, C, H + 2p, W + 2p)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device, generator=generator)
    rows = dy.view(n, 1, 1, 1) + torch.arange(h, device=x.device).view(1, 1, h, 1)  # (N,1,H,1)
    cols = dx.view(n, 1, 1, 1) + torch.arange(w, device=x.device).view(1, 1, 1, w)  # (N,1,1,W)
    padded = padded.gather(2, rows.expand(n, c, h, padded.shape[3]))  # (N, C, H, W + 2p)
    return padded.gather(3, cols.expand(n, c, h, w))  # (N, C, H, W)


class Normalize:
    """x: (N, C, H, W) uint8 or float -> float; uint8 is scaled to [0, 1] first.

    x_c <- (x_c - mean_c) / std_c per channel c; mean=None only converts to float. With `size`
    (H', W') the batch is first resized bilinearly (half-pixel centres, as PIL's and torchvision's
    Resize for upsampling): (N, C, H, W) -> (N, C, H', W').
    """

    def __init__(
        self,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
        size: tuple[int, int] | None = None,
    ):
        self.mean = None if mean is None else torch.tensor(mean).view(1, -1, 1, 1)  # (1,C,1,1)
        self.std = None if std is None else torch.tensor(std).view(1, -1, 1, 1)  # (1,C,1,1)
        self.size = size

    def to(self, device: torch.device) -> Normalize:
        if self.mean is not None:
            self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def __call__(self, x: Tensor) -> Tensor:
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if self.size is not None and tuple(x.shape[2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x if self.mean is None else (x - self.mean) / self.std
