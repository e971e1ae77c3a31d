"""ImageNet32: ImageNet downsampled to 32x32 (Chrabaszcz et al. 2017), 1000 classes.

The official batches, as pickles or .npz (both read), in
`<data_dir>/Imagenet32_train/train_data_batch_{1..10}` (1,281,167 images) and
`<data_dir>/Imagenet32_val/val_data` (50,000 images, our test set); folders named `*_npz` are
accepted too. Each holds 'data' (N, 3072) uint8 in CIFAR's layout and 1-based 'labels'.
image-net.org needs a login, so the files cannot be downloaded for the user. In memory the
training set takes 3.9 GB as uint8 (about twice that while it is being read).
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from tpbench.data.base import TensorDataModule
from tpbench.data.formats import read_image_batches


class ImageNet32DataModule(TensorDataModule):
    name = "ImageNet32"
    shape = (3, 32, 32)
    num_classes = 1000
    # ImageNet's per-channel statistics (full resolution); override with data.mean / data.std
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    manual_download = (
        "image-net.org needs a login, so tpbench cannot download it: get Imagenet32_train.zip "
        "and Imagenet32_val.zip (or their _npz versions) from "
        "https://image-net.org/download-images.php and unzip them into {data_dir}"
    )

    def files(self, train: bool) -> list[Path]:
        folder = "Imagenet32_train" if train else "Imagenet32_val"
        names = [f"train_data_batch_{i}" for i in range(1, 11)] if train else ["val_data"]
        return [self._locate(folder, name) for name in names]

    def _locate(self, folder: str, name: str) -> Path:
        """First present: folder/name, folder/name.npz, folder_npz/name.npz; else folder/name."""
        for candidate in (
            Path(folder, name),
            Path(folder, f"{name}.npz"),
            Path(f"{folder}_npz", f"{name}.npz"),
        ):
            if (self.data_dir / candidate).is_file():
                return candidate
        return Path(folder, name)

    def load_split(self, train: bool) -> tuple[Tensor, Tensor]:
        paths = [self.data_dir / f for f in self.files(train)]
        return read_image_batches(paths, "labels", self.num_classes, label_offset=1)
