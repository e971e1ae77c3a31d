"""The base datamodule: splits held as tensors, normalised once, moved to the device once.

Subclasses say what the data is (`shape`, `num_classes`, `load_split`); this class does the
seeded train/validation split, normalisation, device placement and batching. The test split is
read only when `setup("test")` asks for it, i.e. by the final test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from tpbench.data.augment import Augmentation
from tpbench.data.batches import TensorBatches
from tpbench.errors import ConfigError


class TensorDataModule(L.LightningDataModule):
    shape: tuple[int, ...]
    num_classes: int
    mean: Sequence[float] = (0.0,)
    std: Sequence[float] = (1.0,)

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 10_000,
        seed: int = 0,
        augment: dict | None = None,
        normalize: bool = True,
    ):
        super().__init__()
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.seed, self.normalize = val_size, seed, normalize
        self.augmentation = Augmentation(**(augment or {}))
        self.device = torch.device("cpu")
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    # --- what a subclass provides -------------------------------------------------------------
    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        """Images (N, *shape) uint8 or float in [0, 1], labels (N,) int64."""
        raise NotImplementedError

    # --- Lightning hooks ----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and "train" not in self.splits:
            x, y = self.load_split(train=True)
            if not 0 <= self.val_size < len(x):
                raise ConfigError(
                    f"data.val_size={self.val_size} must be in [0, {len(x)}) for this dataset."
                )
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
            val, train = perm[: self.val_size], perm[self.val_size :]
            self.splits["train"] = self._prepare(x[train], y[train])
            self.splits["val"] = self._prepare(x[val], y[val])
        if stage in ("test", None) and "test" not in self.splits:
            self.splits["test"] = self._prepare(*self.load_split(train=False))

    def _prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 -> float in [0, 1] -> per-channel (x - mean) / std, on the training device."""
        x = x.to(self.device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if self.normalize:
            mean = torch.tensor(self.mean, device=self.device).view(-1, 1, 1)
            std = torch.tensor(self.std, device=self.device).view(-1, 1, 1)
            x = (x - mean) / std
        return x, y.to(self.device, torch.long)

    def to_device(self, device: torch.device) -> None:
        """Move every loaded split to `device` once (called when training starts)."""
        self.device = torch.device(device)
        self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}

    def _batches(self, split: str, train: bool) -> TensorBatches:
        x, y = self.splits[split]
        trainer = self.trainer
        return TensorBatches(
            x,
            y,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            augment=self.augmentation if train and self.augmentation.active else None,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", train=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", train=False)
