"""MNIST and Fashion-MNIST from their IDX .gz files in `<data_dir>/<Name>/raw/`."""

from __future__ import annotations

from torch import Tensor

from tpbench.data.base import TensorDataModule
from tpbench.data.formats import read_idx


class MNISTDataModule(TensorDataModule):
    shape = (1, 28, 28)
    num_classes = 10
    folder = "MNIST"
    mean, std = (0.1307,), (0.3081,)
    files = {
        True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        raw = self.data_dir / self.folder / "raw"
        images, labels = (read_idx(raw / name) for name in self.files[train])
        return images.unsqueeze(1), labels.long()  # (N, 1, 28, 28), (N,)


class FashionMNISTDataModule(MNISTDataModule):
    folder = "FashionMNIST"
    mean, std = (0.2860,), (0.3530,)
