"""CIFAR-10 and CIFAR-100 from the python pickle batches of the official archives.

`<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch}` and
`<data_dir>/cifar-100-python/{train, test}` (the 100 fine labels). Missing files: the official
tar.gz is downloaded (or taken from data_dir if it is there), checked against its published MD5
and unpacked. Normalisation uses each dataset's own per-channel training-set statistics.
"""

from __future__ import annotations

from torch import Tensor

from tpbench.data.base import TensorDataModule
from tpbench.data.download import Remote
from tpbench.data.formats import read_image_batches

_URL = "https://www.cs.toronto.edu/~kriz/"


class CIFAR10DataModule(TensorDataModule):
    name = "CIFAR-10"
    shape = (3, 32, 32)
    num_classes = 10
    folder = "cifar-10-batches-py"
    label_key = "labels"
    # per-channel (R, G, B) mean and std of the 50000 training images, in [0, 1]
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    remotes = (
        Remote(
            (_URL + "cifar-10-python.tar.gz",), "c58f30108f718f92721af3b95e74349a", archive=True
        ),
    )
    md5 = {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    }
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        paths = [self.data_dir / f for f in self.files(train)]
        return read_image_batches(paths, self.label_key, self.num_classes)  # (N,3,32,32), (N,)


class CIFAR100DataModule(CIFAR10DataModule):
    name = "CIFAR-100"
    num_classes = 100
    folder = "cifar-100-python"
    label_key = "fine_labels"
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    remotes = (
        Remote(
            (_URL + "cifar-100-python.tar.gz",), "eb9058c3a382ffc7106e4002c42a8d85", archive=True
        ),
    )
    md5 = {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"}
    train_files, test_files = ("train",), ("test",)
