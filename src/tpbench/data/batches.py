"""Mini-batches sliced from tensors that already live on the training device.

No DataLoader and no workers: the whole split is one tensor; an epoch is a permutation drawn from a
generator seeded by (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
Each batch is augmented (training only) and then transformed (normalised) on the device.

Under DDP (world_size > 1) every rank builds the same batches and takes every world_size-th one,
so the ranks see disjoint data and the same number of batches:
- training: batches of `batch_size`; the last few are dropped so each rank gets as many;
- evaluation: every sample exactly once, in world_size * k batches of near-equal size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class TensorBatches:
    """Iterable of (x, y) batches: x = transform(augment(x[index], generator)), y = y[index]."""

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, epoch
        self.augment, self.transform = augment, transform
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last

    def _num_batches_total(self) -> int:
        n, size, ws = len(self.x), self.batch_size, self.world_size
        if not self.shuffle and ws > 1:  # evaluation: every sample once, ws * k batches
            return ws * -(-n // (ws * size))
        total = n // size if self.drop_last else -(-n // size)
        return total - total % ws

    def __len__(self) -> int:
        return self._num_batches_total() // self.world_size

    def _chunks(self, order: Tensor) -> tuple[Tensor, ...]:
        """The indices of every batch of the epoch, all ranks included."""
        if not self.shuffle and self.world_size > 1:
            return order.tensor_split(self._num_batches_total())
        return order.split(self.batch_size)[: self._num_batches_total()]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        device = self.x.device
        generator = torch.Generator(device="cpu").manual_seed(self.seed * 100_003 + self.epoch())
        order = (
            torch.randperm(len(self.x), generator=generator).to(device)
            if self.shuffle
            else torch.arange(len(self.x), device=device)
        )  # (N,)
        aug_generator = torch.Generator(device=device).manual_seed(
            self.seed * 100_003 + self.epoch() + 7919 * (self.rank + 1)
        )
        for index in self._chunks(order)[self.rank :: self.world_size]:
            x = self.x[index]  # (B, *shape)
            if self.augment is not None:
                x = self.augment(x, aug_generator)
            if self.transform is not None:
                x = self.transform(x)
            yield x, self.y[index]
