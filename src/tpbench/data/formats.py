"""Readers of the standard dataset files, without torchvision.

- IDX (optionally .gz): MNIST and Fashion-MNIST images and labels.
- CIFAR python batches: a pickled dict with 'data' (N, 3072) uint8 — the 1024 red, then green,
  then blue values of a 32x32 image, rows top to bottom — and 'labels' (CIFAR-10) or
  'fine_labels' (CIFAR-100).
- ImageNet32 batches (Chrabaszcz et al. 2017): the same layout as CIFAR with 1-based 'labels',
  as a pickle or as an .npz archive.

Pickles are read with an unpickler that only rebuilds numpy arrays, so a tampered file cannot run
code. Every failure to read a file is a DataError naming the file.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tpbench.errors import DataError

_IDX_DTYPES = {0x08: torch.uint8}

# The only globals a CIFAR / ImageNet32 pickle needs: numpy array reconstruction.
_PICKLE_SAFE = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
}

_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    RuntimeError,
    struct.error,
    pickle.UnpicklingError,
)


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_SAFE:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which is not numpy data")
        return super().find_class(module, name)


def _unreadable(path: Path, kind: str, error: Exception) -> DataError:
    return DataError(f"{path} is not a readable {kind} ({error}); delete it and retry.")


def read_idx(path: Path) -> Tensor:
    """An IDX file (optionally gzipped) as a uint8 tensor of its stored shape."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code not in _IDX_DTYPES:
            raise ValueError("bad magic number")
        dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        flat = torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=_IDX_DTYPES[dtype_code])
        return flat.view(*dims)
    except _READ_ERRORS as e:
        raise _unreadable(path, "IDX file", e) from e


def _load_batch_dict(path: Path) -> dict[str, object]:
    """A pickled (Python 2 or 3) or .npz batch as a dict with str keys."""
    raw = path.read_bytes()
    if raw[:2] == b"PK":  # a zip archive: numpy .npz
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    entry = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    if not isinstance(entry, dict):
        raise ValueError(f"expected a dict, found {type(entry).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def read_image_batch(
    path: Path, label_key: str, num_classes: int, label_offset: int = 0
) -> tuple[Tensor, Tensor]:
    """A CIFAR / ImageNet32 batch: images (N, 3, 32, 32) uint8, labels (N,) int64 in [0, K).

    label = stored label - label_offset (ImageNet32 stores 1-based labels: offset 1).
    """
    kind = f"{'ImageNet32' if label_offset else 'CIFAR'} batch"
    try:
        entry = _load_batch_dict(path)
        if missing := {"data", label_key} - entry.keys():
            raise ValueError(f"no {sorted(missing)} entry")
        data = np.asarray(entry["data"])
        labels = np.asarray(entry[label_key], dtype=np.int64) - label_offset  # (N,)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
        if labels.shape != (len(data),):
            raise ValueError(f"{labels.shape[0]} labels for {len(data)} images")
        if len(labels) and not (0 <= labels.min() and labels.max() < num_classes):
            low, high = label_offset, num_classes - 1 + label_offset
            raise ValueError(f"'{label_key}' outside [{low}, {high}]")
    except _READ_ERRORS as e:
        raise _unreadable(path, kind, e) from e
    images = torch.from_numpy(np.ascontiguousarray(data)).view(-1, 3, 32, 32)  # (N, 3, 32, 32)
    return images, torch.from_numpy(labels)


def read_image_batches(
    paths: list[Path], label_key: str, num_classes: int, label_offset: int = 0
) -> tuple[Tensor, Tensor]:
    """Several batches (`read_image_batch`) concatenated: (N, 3, 32, 32) uint8, (N,) int64."""
    xs, ys = zip(*(read_image_batch(p, label_key, num_classes, label_offset) for p in paths))
    return torch.cat(xs), torch.cat(ys)
