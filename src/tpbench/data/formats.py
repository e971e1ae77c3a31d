"""Readers of the standard dataset files: IDX (.gz) for MNIST-style data."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import torch
from torch import Tensor

from tpbench.errors import DataError

_IDX_DTYPES = {0x08: torch.uint8}


def read_idx(path: Path) -> Tensor:
    """An IDX file (optionally gzipped) as a tensor of its stored shape."""
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
    except (OSError, ValueError, RuntimeError, struct.error) as e:
        raise DataError(f"{path} is not a readable IDX file ({e}); delete it and retry.") from e
