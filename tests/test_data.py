"""Datamodules read small files written here in the real formats: shapes, labels, splits, scaling.

The writers below (IDX .gz, CIFAR pickles, ImageNet32 pickle/.npz) are shared with the other
tests/test_data_*.py files.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import compose_config
from tpbench.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from tpbench.data.imagenet32 import ImageNet32DataModule
from tpbench.data.mnist import FashionMNISTDataModule, MNISTDataModule
from tpbench.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# --- writers of the real formats --------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: 0x0000, dtype 0x08 (uint8), ndim, big-endian dims, then the bytes; gzipped."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20) -> None:
    """Image i of a split has every pixel = i % 256 (so splits can be traced); label i % 10."""
    raw = root / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        ids = np.arange(n)
        write_idx(
            raw / f"{prefix}-images-idx3-ubyte.gz", np.repeat(ids % 256, 784).reshape(n, 28, 28)
        )
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", ids % 10)


def cifar_rows(ids: np.ndarray) -> np.ndarray:
    """(N, 3072) uint8: R plane = id, G plane = 100, B plane = 200 (+ the pixel's row in B)."""
    rows = np.zeros((len(ids), 3, 32, 32), np.uint8)
    rows[:, 0] = (ids % 256)[:, None, None]
    rows[:, 1] = 100
    rows[:, 2] = 200 + np.arange(32)[:, None]
    return rows.reshape(len(ids), 3072)


def write_pickle(path: Path, entry: dict, bytes_keys: bool = False) -> None:
    """A batch as the Python 2 era files store it (protocol 2; bytes keys when asked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if bytes_keys:
        entry = {k.encode(): v for k, v in entry.items()}
    path.write_bytes(pickle.dumps(entry, protocol=2))


def write_cifar10(root: Path, per_batch: int = 12, n_test: int = 10) -> None:
    folder = root / "cifar-10-batches-py"
    for b in range(1, 6):
        ids = np.arange((b - 1) * per_batch, b * per_batch)
        entry = {"data": cifar_rows(ids), "labels": [int(i % 10) for i in ids]}
        write_pickle(folder / f"data_batch_{b}", entry, bytes_keys=b == 1)
    ids = np.arange(n_test)
    write_pickle(folder / "test_batch", {"data": cifar_rows(ids), "labels": list(ids % 10)})


def write_cifar100(root: Path, n_train: int = 50, n_test: int = 10) -> None:
    for name, n in (("train", n_train), ("test", n_test)):
        ids = np.arange(n)
        entry = {"data": cifar_rows(ids), "fine_labels": list(ids % 100), "coarse_labels": [0] * n}
        write_pickle(root / "cifar-100-python" / name, entry)


def write_imagenet32(root: Path, per_batch: int = 6, n_val: int = 8, npz: bool = False) -> None:
    """10 training batches and val_data, labels 1-based (1..1000)."""

    def write(path: Path, ids: np.ndarray) -> None:
        entry = {"data": cifar_rows(ids), "labels": list(ids % 1000 + 1), "mean": np.zeros(3072)}
        if npz:
            np.savez(path.with_name(path.name + ".npz"), **entry)
        else:
            write_pickle(path, entry)

    (root / "Imagenet32_train").mkdir(parents=True, exist_ok=True)
    (root / "Imagenet32_val").mkdir(parents=True, exist_ok=True)
    for b in range(1, 11):
        write(root / "Imagenet32_train" / f"train_data_batch_{b}", np.arange(per_batch) + 995)
    write(root / "Imagenet32_val" / "val_data", np.arange(n_val) + 990)


# --- MNIST-style --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_mnist_reads_idx_shapes_labels_splits(tmp_path, cls):
    write_mnist(tmp_path, folder=cls.folder.split("/")[0])
    dm = cls(data_dir=str(tmp_path), val_size=15, seed=3, verify=False)
    dm.setup()
    (xt, yt), (xv, yv), (xs, ys) = dm.splits["train"], dm.splits["val"], dm.splits["test"]
    assert (
        xt.shape == (45, 1, 28, 28) and xv.shape == (15, 1, 28, 28) and xs.shape == (20, 1, 28, 28)
    )
    assert xt.dtype == torch.uint8 and yt.dtype == torch.int64
    ids_train, ids_val = xt[:, 0, 0, 0].long(), xv[:, 0, 0, 0].long()
    assert set(ids_train.tolist()).isdisjoint(ids_val.tolist())
    assert sorted(ids_train.tolist() + ids_val.tolist()) == list(range(60))
    assert torch.equal(yt, ids_train % 10) and torch.equal(yv, ids_val % 10)
    assert torch.equal(ys, torch.arange(20) % 10)
    # the same seed gives the same split, another seed another one
    again = cls(data_dir=str(tmp_path), val_size=15, seed=3, verify=False)
    again.setup("fit")
    assert torch.equal(again.splits["val"][0], xv)
    other = cls(data_dir=str(tmp_path), val_size=15, seed=4, verify=False)
    other.setup("fit")
    assert not torch.equal(other.splits["val"][0], xv)


def test_mnist_batches_are_normalised_with_the_formula(tmp_path):
    write_mnist(tmp_path)
    dm = MNISTDataModule(data_dir=str(tmp_path), val_size=0.25, eval_batch_size=7, verify=False)
    dm.setup("test")
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (7, 1, 28, 28) and x.dtype == torch.float32
    expected = (torch.arange(7).float().view(7, 1, 1, 1) / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(x, expected.expand(7, 1, 28, 28))
    dm.setup("fit")
    assert len(dm.splits["val"][0]) == 15  # 0.25 of 60


def test_val_from_last_holds_out_the_last_images_as_stored(tmp_path):
    """The FW-DTP authors' split: train_x[:N-k] for training, train_x[N-k:] for validation, in
    file order, whatever the seed."""
    write_mnist(tmp_path)
    for seed in (3, 4):
        dm = MNISTDataModule(
            data_dir=str(tmp_path), val_size=15, val_from="last", seed=seed, verify=False
        )
        dm.setup("fit")
        ids_train, ids_val = (dm.splits[k][0][:, 0, 0, 0].long() for k in ("train", "val"))
        assert ids_train.tolist() == list(range(45)) and ids_val.tolist() == list(range(45, 60))
    with pytest.raises(ConfigError, match="data.val_from='first' is unknown; valid: random, last"):
        MNISTDataModule(data_dir=str(tmp_path), val_from="first", verify=False)


def test_val_size_out_of_range_is_a_config_error(tmp_path):
    write_mnist(tmp_path)
    for bad in (60, -1, 1.5):
        with pytest.raises(ConfigError, match="data.val_size"):
            MNISTDataModule(data_dir=str(tmp_path), val_size=bad, verify=False).setup("fit")


@pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="real MNIST not present")
def test_real_mnist_loads_and_verifies(tmp_path):
    dm = MNISTDataModule(data_dir=str(SHARED), val_size=10_000, verify=True)
    dm.setup()
    assert len(dm.splits["train"][0]) + len(dm.splits["val"][0]) == 60_000
    assert dm.splits["test"][0].shape == (10_000, 1, 28, 28)
    x = dm.splits["train"][0].float() / 255  # the stated statistics are the data's own
    assert abs(x.mean().item() - 0.1307) < 2e-3 and abs(x.std().item() - 0.3081) < 2e-3


# --- CIFAR and ImageNet32 -----------------------------------------------------------------------
def _check_image_layout(x: torch.Tensor, ids: torch.Tensor) -> None:
    """Channel planes land in (N, 3, 32, 32) as written by `cifar_rows`."""
    assert torch.equal(x[:, 0, 5, 7].long(), ids % 256)
    assert (x[:, 1] == 100).all()
    assert torch.equal(x[0, 2, :, 0].long(), 200 + torch.arange(32))


def test_cifar10_reads_pickles(tmp_path):
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), val_size=10, verify=False)
    dm.setup()
    (xt, yt), (xv, _), (xs, ys) = dm.splits["train"], dm.splits["val"], dm.splits["test"]
    assert dm.shape == (3, 32, 32) and dm.num_classes == 10
    assert (
        xt.shape == (50, 3, 32, 32) and xv.shape == (10, 3, 32, 32) and xs.shape == (10, 3, 32, 32)
    )
    ids = xt[:, 0, 0, 0].long()
    _check_image_layout(xt, ids)
    assert torch.equal(yt, ids % 10) and torch.equal(ys, torch.arange(10))


def test_cifar_batches_use_cifars_own_statistics(tmp_path):
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), eval_batch_size=4, verify=False)
    dm.setup("test")
    x, _ = next(iter(dm.test_dataloader()))
    raw = dm.splits["test"][0][:4].float() / 255
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (raw - mean) / std)
    # data with exactly these statistics comes out with mean 0 and std 1 per channel
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 3, 4, 4, generator=g)
    z = (z - z.mean((0, 2, 3), keepdim=True)) / z.std((0, 2, 3), keepdim=True)
    out = dm.normalizer(z * std + mean)
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)


def test_cifar100_uses_fine_labels(tmp_path):
    write_cifar100(tmp_path)
    dm = CIFAR100DataModule(data_dir=str(tmp_path), val_size=5, verify=False)
    dm.setup()
    x, y = dm.splits["train"]
    assert dm.num_classes == 100 and x.shape == (45, 3, 32, 32)
    assert torch.equal(y, x[:, 0, 0, 0].long() % 100)
    assert torch.equal(dm.splits["test"][1], torch.arange(10))


@pytest.mark.parametrize("npz", [False, True])
def test_imagenet32_reads_batches_with_1_based_labels(tmp_path, npz):
    write_imagenet32(tmp_path, npz=npz)
    dm = ImageNet32DataModule(data_dir=str(tmp_path), val_size=12)
    dm.setup()
    (xt, yt), (xs, ys) = dm.splits["train"], dm.splits["test"]
    assert dm.num_classes == 1000 and xt.shape == (48, 3, 32, 32) and xs.shape == (8, 3, 32, 32)
    ids = xt[:, 0, 0, 0].long()  # written ids 995..1000 (mod 256 in the pixels)
    _check_image_layout(xt, ids)
    assert yt.min() >= 0 and yt.max() <= 999
    assert torch.equal(ys, (torch.arange(8) + 990) % 1000)  # stored 991..998 -> 990..997


def test_imagenet32_rejects_0_based_labels(tmp_path):
    write_imagenet32(tmp_path)
    write_pickle(
        tmp_path / "Imagenet32_val" / "val_data",
        {"data": cifar_rows(np.arange(3)), "labels": [0, 1, 2]},
    )
    with pytest.raises(
        DataError, match=r"val_data is not a readable ImageNet32 batch.*\[1, 1000\]"
    ):
        ImageNet32DataModule(data_dir=str(tmp_path)).setup("test")


# --- configs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls, augment",
    [
        ("mnist", MNISTDataModule, (0, False, False)),
        ("fmnist", FashionMNISTDataModule, (0, False, False)),
        ("cifar10", CIFAR10DataModule, (4, False, True)),
        ("cifar100", CIFAR100DataModule, (4, False, True)),
        ("imagenet32", ImageNet32DataModule, (0, False, False)),
    ],
)
def test_data_configs_instantiate(tmp_path, name, cls, augment):
    from hydra.utils import instantiate

    cfg = compose_config([f"data={name}", "data.val_size=0.1", "seed=7"], tmp_path)
    dm = instantiate(cfg.data)
    assert type(dm) is cls and dm.seed == 7 and dm.val_size == 0.1
    assert Path(dm.data_dir) == Path(cfg.paths.data_dir)
    aug = dm.augmentation
    assert (aug.crop_padding, aug.hflip, aug.vflip) == augment


def test_train_on_cifar_files_end_to_end(tmp_path):
    """Through train(): Lightning's prepare_data/setup, augmentation and normalisation on device."""
    from tpbench.train import train

    write_cifar10(tmp_path / "data")
    overrides = [
        "data=cifar10", f"data.data_dir={tmp_path / 'data'}", "data.verify=false",
        "data.val_size=10", "data.batch_size=16", "trainer=cpu", "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false", "logger=csv", "callbacks=none",
        "net.hidden=[32]", "optimized_metric=test/err",
    ]  # fmt: skip
    test_err = train(compose_config(overrides, tmp_path, fast=False))
    assert 0.0 <= test_err <= 1.0
