"""MNIST and Fashion-MNIST from their IDX .gz files in `<data_dir>/<Name>/raw/`.

Missing files are downloaded from the official locations and checked against the published MD5s
(the same ones torchvision uses); with `verify` the files already there are checked too.
"""

from __future__ import annotations

from torch import Tensor

from tpbench.data.base import TensorDataModule
from tpbench.data.download import Remote
from tpbench.data.formats import read_idx
from tpbench.errors import DataError


class MNISTDataModule(TensorDataModule):
    name = "MNIST"
    shape = (1, 28, 28)
    num_classes = 10
    folder = "MNIST/raw"
    train_files = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    test_files = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    mean, std = (0.1307,), (0.3081,)  # of the 60000 training images, in [0, 1]
    md5 = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )

    @property
    def remotes(self) -> tuple[Remote, ...]:
        return tuple(
            Remote(tuple(m + name for m in self.mirrors), md5, self.folder)
            for name, md5 in self.md5.items()
        )

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        image_file, label_file = (self.data_dir / f for f in self.files(train))
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
            raise DataError(
                f"{image_file} holds {tuple(images.shape)} images and {label_file} "
                f"{tuple(labels.shape)} labels, expected (N, 28, 28) and (N,); delete both, retry."
            )
        if len(labels) and labels.max() >= self.num_classes:
            raise DataError(
                f"{label_file} holds label {int(labels.max())}, expected labels in "
                f"[0, {self.num_classes}); delete it and retry."
            )
        return images.unsqueeze(1), labels.long()  # (N, 1, 28, 28), (N,)


class FashionMNISTDataModule(MNISTDataModule):
    name = "Fashion-MNIST"
    folder = "FashionMNIST/raw"
    mean, std = (0.2860,), (0.3530,)  # of the 60000 training images, in [0, 1]
    md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
