"""One process at a time in a run directory: `<run dir>/.lock`, held with flock.

The lock is taken atomically (flock on the file, non-blocking) before the run writes anything of
its own, and held until the run ends; the kernel releases it when the process dies however it
dies (SIGKILL, a lost job), so a stale lock never blocks a resume. A second process is refused at
once with one sentence.

`tpbench resume` takes the lock itself before it starts train.py, so that two resumes started
within a second of each other cannot both pass its checks; it hands the locked file to train.py
(file descriptor `TPBENCH_RUN_LOCK_FD`), whose own `locked()` then holds the same lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tpbench.errors import InputError

FILE = ".lock"
INHERITED = "TPBENCH_RUN_LOCK_FD"  # the locked file, opened by the parent (tpbench resume)


def acquire(run_dir: str | Path) -> int:
    """Lock run_dir and return the open file descriptor that holds the lock (close it to let go)."""
    path = Path(run_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _inherited(path)
    if fd is None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(
            f"{run_dir} is in use by another tpbench process (it holds {path}); wait for it to "
            "end, or resume another run."
        ) from None
    return fd


def _inherited(path: Path) -> int | None:
    """The parent's descriptor of `path` when this process was handed it, else None."""
    fd = os.environ.get(INHERITED)
    if fd is None or not path.exists():
        return None
    try:
        same = os.path.samestat(os.fstat(int(fd)), os.stat(path))
    except (OSError, ValueError):
        return None
    return os.dup(int(fd)) if same else None


@contextmanager
def locked(run_dir: str | Path) -> Iterator[None]:
    """Hold run_dir's lock for the duration."""
    fd = acquire(run_dir)
    try:
        yield
    finally:
        os.close(fd)
