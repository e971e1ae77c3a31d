"""A sweep's Optuna study on disk: where it lives (a SQLite or journal file in the sweep dir, or
an RDB URL) and the names of what tpbench keeps in it beside Optuna's own records.

The sweeper opens it to run the study, every trial to report its epochs, `tpbench report` to read
the trials' states.
"""

from __future__ import annotations

from pathlib import Path

import optuna

INTERRUPTED = "interrupted"  # user attr: left RUNNING by a killed sweep, re-run, not counted
FAIL_REASON = "fail_reason"  # user attr: why a trial failed or was pruned
RUN_DIR = "run_dir"  # user attr: the trial's run directory (.hydra/, csv/, checkpoints/)
RESUMES = "resumes"  # user attr: the number of the interrupted trial this one continues
COMMAND = "command"  # study user attr: the task overrides the sweep was started with


def storage_url(storage: str | None, sweep_dir: str) -> str:
    """`sqlite` (default) or `journal`: a file in the sweep dir; anything else is used as is."""
    if storage in (None, "sqlite"):
        return f"sqlite:///{sweep_dir}/optuna.db"
    if storage == "journal":
        return f"journal:///{sweep_dir}/optuna.journal"
    return storage


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """`sqlite:///file.db`, `journal:///file` (a plain file, NFS-friendly) or any RDB URL."""
    if url.startswith("journal:///"):
        path = Path(url.removeprefix("journal:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # a reader (report, a trial reporting its epoch) may hold the file: wait, do not fail
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url)
