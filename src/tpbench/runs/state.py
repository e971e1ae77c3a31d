"""A run's state on disk, `<run dir>/run.yaml`, for `tpbench report` and `tpbench resume`.

    state: running | finished | failed | interrupted | pruned
    reason: the error sentence (failed), what stopped it (interrupted), the pruner's verdict
    pid, host: the process, so a run killed without warning (kill -9, a lost node) reads as
               interrupted once that process is gone
    started, ended: ISO times

The entry point writes `running` when a run starts and the outcome when it ends; only the rank-0
process of a DDP run writes.
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

FILE = "run.yaml"
STATES = ("running", "finished", "failed", "interrupted", "pruned")


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


class RunState:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / FILE
        self.record: dict = {}

    def start(self) -> None:
        self.record = {"state": "running", "reason": "", "pid": os.getpid()}
        self.record |= {"host": socket.gethostname(), "started": _now(), "ended": None}
        self._write()

    def end(self, state: str, reason: str = "") -> None:
        self.record |= {"state": state, "reason": reason, "ended": _now()}
        self._write()

    def _write(self) -> None:
        if rank_zero_only.rank != 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{FILE}.partial")
        OmegaConf.save(OmegaConf.create(self.record), partial)
        os.replace(partial, self.path)


def read_state(run_dir: Path) -> tuple[str, str] | None:
    """(state, reason) from run.yaml, `running` turned `interrupted` when its process is gone;
    None when the run has no run.yaml (written by an older tpbench)."""
    path = run_dir / FILE
    if not path.is_file():
        return None
    record = OmegaConf.load(path)
    state, reason = str(record.get("state", "running")), str(record.get("reason") or "")
    if state == "running" and record.get("host") == socket.gethostname():
        if not _alive(int(record.get("pid") or 0)):
            return "interrupted", "its process ended without a word (killed)"
    return state, reason


def live_pid(run_dir: Path) -> int | None:
    """The process of a run that is still running on this host, else None."""
    path = run_dir / FILE
    record = OmegaConf.load(path) if path.is_file() else {}
    pid = int(record.get("pid") or 0)
    running = record.get("state") == "running" and record.get("host") == socket.gethostname()
    return pid if running and _alive(pid) else None


def _alive(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie waiting for its parent has)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: field 3 of /proc/<pid>/stat is the state, Z for a zombie
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc: trust kill(pid, 0)
