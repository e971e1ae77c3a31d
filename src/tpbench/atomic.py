"""Files written whole or not at all, and a full disk or read-only directory as one sentence.

`atomic_path(path)` yields a temporary name in the same directory; when the block has written it,
the file is flushed to disk (fsync) and renamed over `path` (os.replace: atomic on POSIX), so a
reader, a kill or a full disk never leaves a truncated file under a valid name. On any error the
temporary file is removed. `write_text(path, text)` is the common case.

An OSError of storage (no space, quota, read-only, no permission) becomes a `StorageError`, one
sentence naming the file and what to do (`storage_error` turns any such OSError, e.g. from Hydra
creating a run directory, into the same sentence).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tpbench.errors import StorageError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write `path`'s content to; renamed to `path` when the block ends."""
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield partial
        _sync(partial)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise storage_error(error, path) or error from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_error(error: BaseException, path: str | Path | None = None) -> StorageError | None:
    """The one-sentence StorageError of a full disk or unwritable directory, else None."""
    if isinstance(error, StorageError):
        return error
    if not isinstance(error, OSError) or error.errno not in FULL + READ_ONLY:
        return None
    where = path or error.filename or "a file"
    if error.errno in FULL:
        return StorageError(
            f"Cannot write {where}: the disk is full ({error.strerror}); free space there or "
            "point paths.log_dir (or the command's directory) to a disk with room."
        )
    return StorageError(
        f"Cannot write {where}: its directory is not writable ({error.strerror}); point "
        "paths.log_dir (or the command's directory) to a writable place."
    )
