"""Seeded random tensors of any shape and class count, for tests and smoke runs.

Each class has a fixed random prototype; a sample is 0.3 · prototype[y] + N(0, 1) noise. The data
is learnable from a few hundred samples: a rule that learns reaches well above chance, one that
does not stays near 1 / num_classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tpbench.data.base import TensorDataModule


class FakeDataModule(TensorDataModule):
    name = "fake data"

    def __init__(
        self,
        shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        train_size: int = 1200,
        test_size: int = 400,
        val_size: int | float = 200,
        **kwargs,
    ):
        super().__init__(val_size=val_size, normalize=False, **kwargs)
        self.shape, self.num_classes = tuple(shape), num_classes
        self.train_size, self.test_size = train_size, test_size

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        # Prototypes are shared by the splits; samples are drawn per split.
        prototypes = torch.randn(
            self.num_classes, *self.shape, generator=torch.Generator().manual_seed(0)
        )
        g = torch.Generator().manual_seed(self.seed + (1 if train else 2))
        n = self.train_size if train else self.test_size
        y = torch.randint(0, self.num_classes, (n,), generator=g)
        x = 0.3 * prototypes[y] + torch.randn(n, *self.shape, generator=g)  # (N, *shape)
        return x, y
