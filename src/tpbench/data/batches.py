"""Mini-batches sliced from tensors that already live on the training device.

No DataLoader and no workers: the whole split is one tensor; an epoch is a permutation drawn from a
generator seeded by (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
Under DDP each rank takes every world_size-th batch of the same permutation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class TensorBatches:
    """Iterable of (x, y) batches; `augment(x, generator)` is applied per batch when given."""

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, epoch
        self.augment, self.rank, self.world_size, self.drop_last = augment, rank, world_size, drop_last

    def _num_batches_total(self) -> int:
        n = len(self.x)
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return total - total % self.world_size if self.world_size > 1 else total

    def __len__(self) -> int:
        return self._num_batches_total() // self.world_size

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        device = self.x.device
        generator = torch.Generator(device="cpu").manual_seed(self.seed * 100_003 + self.epoch())
        order = (
            torch.randperm(len(self.x), generator=generator).to(device)
            if self.shuffle
            else torch.arange(len(self.x), device=device)
        )
        aug_generator = torch.Generator(device=device).manual_seed(
            self.seed * 100_003 + self.epoch() + 7919 * (self.rank + 1)
        )
        for b in range(self.rank, self._num_batches_total(), self.world_size):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.x[index]
            if self.augment is not None:
                x = self.augment(x, aug_generator)
            yield x, self.y[index]
