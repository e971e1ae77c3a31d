"""The base datamodule: files checked (downloaded) once, splits held as tensors on the device.

Subclasses say what the data is (`shape`, `num_classes`, `mean`/`std`, the files a split is read
from and the official `remotes` they come from, `load_split`). This class makes sure the files are
there (`prepare_data`: download with checksum when allowed, one clear DataError when not), does the
seeded train/validation split, holds the splits as stored (uint8 images stay uint8, 4x less
memory), moves them to the training device once, and serves batches that are augmented and
normalised there. The test split is read only when `setup("test")` asks for it (the final test).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from tpbench.data.augment import Augmentation, Normalize
from tpbench.data.batches import TensorBatches
from tpbench.data.download import (
    Downloader,
    DownloadFailed,
    Remote,
    check_checksum,
    describe,
    fetch,
    urllib_download,
)
from tpbench.errors import ConfigError, DataError

_HAND = "put the files there by hand, or set data.data_dir to the directory that holds them"
VAL_FROM = ("random", "last")  # data.val_from: which training images are held out


class TensorDataModule(L.LightningDataModule):
    name: str = "dataset"
    shape: tuple[int, ...]
    num_classes: int
    mean: Sequence[float] = (0.0,)
    std: Sequence[float] = (1.0,)
    folder: str = ""  # where the split files live, relative to data_dir
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    md5: dict[str, str] = {}  # file name -> published MD5, checked when verify=True
    remotes: tuple[Remote, ...] = ()  # official files `prepare_data` may download
    manual_download: str = _HAND  # what the missing-files error tells the user to do

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int | float = 10_000,
        val_from: str = "random",
        seed: int = 0,
        augment: dict | None = None,
        normalize: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        download: bool = True,
        verify: bool = True,
        mirror: str | None = None,
        downloader: Downloader = urllib_download,
        resize: int | Sequence[int] | None = None,
    ):
        super().__init__()
        self.resize = None  # (H, W): every batch is resized on the device (augment.Normalize)
        if resize is not None:
            self.resize = (resize, resize) if isinstance(resize, int) else tuple(resize)
            if len(self.resize) != 2 or min(self.resize) < 1:
                raise ConfigError(f"data.resize={resize} must be a size S or [H, W], positive.")
            self.shape = (self.shape[0], *self.resize)
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.seed = val_size, seed
        if val_from not in VAL_FROM:
            valid = ", ".join(VAL_FROM)
            raise ConfigError(f"data.val_from={val_from!r} is unknown; valid: {valid}.")
        self.val_from = val_from
        try:
            self.augmentation = Augmentation(**(augment or {}))
        except TypeError as e:
            raise ConfigError(
                f"data.augment={dict(augment or {})} is invalid ({e}); valid keys: "
                "crop_padding, hflip, vflip."
            ) from e
        self.mean, self.std = tuple(mean or self.mean), tuple(std or self.std)
        self.normalize = normalize
        self.download, self.verify = download, verify
        self.mirror, self.downloader = mirror, downloader
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}  # name -> (x as stored, y) on device
        self.device = torch.device("cpu")
        self._prepared = False

    # --- what a subclass provides -------------------------------------------------------------
    def files(self, train: bool) -> list[Path]:
        """The files (relative to data_dir) `load_split(train)` reads."""
        return [
            Path(self.folder, name) for name in (self.train_files if train else self.test_files)
        ]

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        """Images (N, *shape) uint8 (or float), labels (N,) int64, from `files(train)`."""
        raise NotImplementedError

    # --- files ------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Make sure every file is there (downloading when allowed) and, with verify, intact."""
        if self._prepared:
            return
        expected = self.files(True) + self.files(False)
        if any(not (self.data_dir / f).is_file() for f in expected):
            self._check_level(expected)
            self._fetch(expected)
        if self.verify:
            remedy = "it is corrupt or another version; delete it, or set data.verify=false"
            for f in expected:
                if f.name in self.md5:
                    check_checksum(self.data_dir / f, self.md5[f.name], remedy)
        self._prepared = True

    def _fetch(self, expected: list[Path]) -> None:
        """Get the missing files from `remotes`; one DataError naming dir and files if we can't."""
        if not self.remotes:
            raise self._missing(expected, self.manual_download.format(data_dir=self.data_dir))
        if not self.data_dir.is_dir():
            raise self._missing(
                expected,
                f"{self.data_dir} does not exist; create it to download the data there, or set "
                "data.data_dir to the directory that holds the files",
            )
        for remote in self.remotes:
            present = (self.data_dir / remote.subdir / remote.filename).exists()
            if present and not remote.archive:
                continue
            if not present and not self.download:
                raise self._missing(expected, f"downloads are off (data.download=false); {_HAND}")
            try:
                fetch(remote, self.data_dir, self.downloader, self.mirror)  # verified, unpacked
            except DownloadFailed as e:
                raise self._missing(expected, f"downloading failed ({e}); {_HAND}") from None
        if any(not (self.data_dir / f).is_file() for f in expected):
            raise self._missing(expected, f"the official archive does not hold them; {_HAND}")

    def _check_level(self, expected: list[Path]) -> None:
        """data.data_dir one level too deep (`.../MNIST`) or too high (`...` above `data/`):
        the files are in a neighbour of the expected place; say so rather than download."""
        if not self.data_dir.is_dir():
            return  # a directory that does not exist: the missing-files sentence says so
        candidates = [self.data_dir.parent, *(d for d in self.data_dir.glob("*") if d.is_dir())]
        for candidate in candidates:
            if all((candidate / f).is_file() for f in expected):
                raise ConfigError(
                    f"data.data_dir={self.data_dir} is not where the {self.name} files are "
                    f"({describe(expected)} relative to it); they are under {candidate}: pass "
                    f"data.data_dir={candidate}."
                )

    def _missing(self, expected: list[Path], remedy: str) -> DataError:
        absent = [f for f in expected if not (self.data_dir / f).is_file()]
        return DataError(
            f"{self.name} data not found in {self.data_dir} (missing {describe(absent)}): {remedy}."
        )

    # --- Lightning hooks ----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read the splits a stage needs straight onto the training device."""
        if self.trainer is None:
            self.prepare_data()  # a Trainer calls it itself, once per node (local rank 0)
        else:
            self.device = self.trainer.strategy.root_device
        if stage in ("fit", "validate", None) and "train" not in self.splits:
            x, y = self.load_split(train=True)
            val, train = self._val_train_indices(len(x))
            self.splits["train"] = x[train].to(self.device), y[train].to(self.device)
            self.splits["val"] = x[val].to(self.device), y[val].to(self.device)
        if stage in ("test", None) and "test" not in self.splits:
            x, y = self.load_split(train=False)
            self.splits["test"] = x.to(self.device), y.to(self.device)

    def _check_batch_size(self, n_train: int) -> None:
        if self.batch_size > n_train:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is larger than the {n_train} training "
                f"samples (after holding out data.val_size={self.val_size}); use "
                f"data.batch_size={n_train} or less."
            )

    def _val_train_indices(self, n: int) -> tuple[Tensor, Tensor]:
        """Indices of the validation and training images among the n of the training files:
        a random subset drawn with `seed` (val_from: random), or the last ones as stored
        (val_from: last, e.g. the FW-DTP authors' 55,000 / 5,000 MNIST split)."""
        n_val = self._val_count(n)
        if self.val_from == "last":
            order = torch.arange(n)
            return order[n - n_val :], order[: n - n_val]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return order[:n_val], order[n_val:]

    def _val_count(self, n: int) -> int:
        """data.val_size: a count in [0, n) or a fraction in [0, 1) of the training set."""
        size = self.val_size
        count = round(size * n) if isinstance(size, float) and 0 <= size < 1 else size
        if not isinstance(count, int) or not 0 <= count < n:
            raise ConfigError(
                f"data.val_size={size} must be a count in [0, {n}) or a fraction in [0, 1) "
                f"of the {n} training samples."
            )
        return count

    def to_device(self, device: torch.device) -> None:
        """Move every loaded split to `device` once (called when training starts)."""
        self.device = torch.device(device)
        self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}

    @property
    def normalizer(self) -> Normalize:
        """Per-batch uint8 -> float, resized to `shape` (data.resize), (x - mean) / std per
        channel."""
        if self.normalize and len(self.mean) != self.shape[0]:
            raise ConfigError(
                f"data.mean={list(self.mean)} and data.std={list(self.std)} need one value per "
                f"channel ({self.shape[0]})."
            )
        stats = (self.mean, self.std) if self.normalize else (None, None)
        return Normalize(*stats, size=self.resize)

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
            transform=self.normalizer.to(x.device),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def train_dataloader(self) -> TensorBatches:
        self._check_batch_size(len(self.splits["train"][0]))
        return self._batches("train", train=True)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", train=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", train=False)
