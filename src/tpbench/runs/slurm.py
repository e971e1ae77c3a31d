"""What tpbench knows about Slurm: the job a run is in, and the jobs of a sweep in the queue.

Inside a job (a trial launched by `hydra/launcher=slurm`, or `srun python train.py ...`):
- `job_record()`: job id, array job and index, node, requeue count (SLURM_RESTART_COUNT) for the
  run's provenance.yaml;
- `cluster_plugins()`: Lightning's SLURMEnvironment with its own requeue off, so that the ranks
  come from Slurm and exactly one mechanism requeues: submitit (docs/scaling.md);
- `link_job_output(run_dir)`: the job's stdout/stderr files linked into the run directory.

On the sweep's side (the jobs are submitit job arrays, one folder per job under
`<sweep dir>/.submitit/`):
- `watch_queue(launcher, sweep_dir)`: while the sweep runs its trials, a thread that logs the
  sweep's jobs pending, running and requeued whenever these counts change; submitit's
  "Bypassing sacct error" warnings (a cluster without job accounting) are dropped;
- `cancel_sweep_jobs(sweep_dir)`: after the sweep process was killed, its jobs still in the queue
  are cancelled (their trials are re-run from their last checkpoint), with one line saying so.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

log = logging.getLogger("tpbench.sweep")

SUBMITIT = ".submitit"  # conf/hydra/launcher/slurm.yaml: submitit_folder under the sweep dir
ENV = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_index": "SLURM_ARRAY_TASK_ID",
    "node": "SLURMD_NODENAME",
    "requeue_count": "SLURM_RESTART_COUNT",
    "rank": "SLURM_PROCID",
    "tasks": "SLURM_NTASKS",
}


def in_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def job_record() -> dict[str, str | int] | None:
    """The Slurm job this process runs in, or None outside Slurm."""
    if not in_job():
        return None
    record: dict[str, str | int] = {k: os.environ[v] for k, v in ENV.items() if v in os.environ}
    record["requeue_count"] = int(record.get("requeue_count", 0))
    return record


def cluster_plugins() -> list:
    """[SLURMEnvironment(auto_requeue=False)] in a Slurm job step, else [].

    Lightning refuses `srun --ntasks=N` without --ntasks-per-node (on several nodes the tasks per
    node are ambiguous); on one node they are all N, which is said for it."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if not ("SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") != "interactive"):
        return []
    if os.environ.get("SLURM_NNODES") == "1":
        os.environ.setdefault("SLURM_NTASKS_PER_NODE", os.environ["SLURM_NTASKS"])
    return [SLURMEnvironment(auto_requeue=False)]


def link_job_output(run_dir: str | Path) -> None:
    """<run dir>/slurm-<job>.out and .err: links to the submitit Slurm job's stdout and stderr
    (a plain `sbatch`/`srun` job's output goes where its own --output says)."""
    if not (in_job() and os.environ.get("SUBMITIT_EXECUTOR") == "slurm"):
        return
    import submitit

    paths = submitit.JobEnvironment().paths
    job = os.environ.get("SLURM_ARRAY_JOB_ID", "")
    name = f"slurm-{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else f"slurm-{paths.job_id}"
    for target, suffix in ((paths.stdout, "out"), (paths.stderr, "err")):
        link = Path(run_dir) / f"{name}.{suffix}"
        if not link.is_symlink():
            link.symlink_to(Path(target).resolve())


def sweep_job_ids(sweep_dir: str | Path) -> list[str]:
    """The array job ids this sweep submitted (submitit's folder names `<array>_<index>`)."""
    folder = Path(sweep_dir) / SUBMITIT
    if not folder.is_dir():
        return []
    arrays = {p.name.split("_")[0] for p in folder.iterdir() if p.name[0].isdigit()}
    return sorted(a for a in arrays if _sbatch_script(folder / a / f"{a}_submission.sh"))


def _sbatch_script(path: Path) -> bool:
    """A Slurm job's script (submitit's local executor names its folders by process ids)."""
    return path.is_file() and "#SBATCH" in path.read_text()


def queued(job_ids: list[str]) -> list[tuple[str, str, int]]:
    """(job id, state, restarts) of each array task of these jobs still in Slurm's queue."""
    if not job_ids:
        return []
    fields = "JobArrayID:40,State:20,RestartCnt:10"
    command = ["squeue", "-h", "-r", "-j", ",".join(job_ids), "-O", fields]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = [line.split() for line in out.splitlines()]
    return [(r[0], r[1], int(r[2])) for r in rows if len(r) == 3 and r[2].isdigit()]


def summary(jobs: list[tuple[str, str, int]]) -> str:
    """`Slurm: 2 pending, 1 running, 1 requeued`."""
    states = Counter(state for _, state, _ in jobs)
    requeued = sum(restarts > 0 for *_, restarts in jobs)
    running = states["RUNNING"] + states["COMPLETING"]
    return f"Slurm: {states['PENDING']} pending, {running} running, {requeued} requeued"


class QueueWatch:
    """While entered, log `summary()` of the sweep's jobs each time it changes (polls every
    `every_s` seconds): the sweep's line of what Slurm does with its trials meanwhile."""

    def __init__(self, sweep_dir: str | Path, every_s: float = 5.0):
        self.sweep_dir, self.every_s = sweep_dir, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slurm-queue-watch", daemon=True)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        shown = None
        while not self._stop.wait(self.every_s):
            jobs = queued(sweep_job_ids(self.sweep_dir))
            line = summary(jobs) if jobs else None
            if line is not None and line != shown:
                log.info("%s", line)
                shown = line


def cancel_sweep_jobs(sweep_dir: str | Path, wait_s: float = 120.0) -> int:
    """scancel the jobs this sweep left in the queue (its process was killed), wait until they
    have left it (their trials' run directories are free again) and say so in one line; returns
    how many array tasks were cancelled."""
    jobs = queued(sweep_job_ids(sweep_dir))
    if not jobs:
        return 0
    ids = sorted({job_id for job_id, _, _ in jobs})
    subprocess.run(["scancel", *ids], capture_output=True, timeout=60)
    deadline = time.monotonic() + wait_s
    while queued([i.split("_")[0] for i in ids]) and time.monotonic() < deadline:
        time.sleep(1.0)
    log.warning(
        "Cancelled %d Slurm job(s) the killed sweep left in the queue (%s); their trials are "
        "re-run from their last checkpoint",
        len(ids),
        " ".join(ids),
    )
    return len(ids)


class NoSacctBypass(logging.Filter):
    """Drops submitit's "Bypassing sacct error ..., status may be inaccurate" (it then reads the
    jobs' states from their result files)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Bypassing sacct error" not in record.getMessage()


def watch_queue(launcher, sweep_dir: str | Path) -> AbstractContextManager:
    """A QueueWatch of the sweep's jobs when `launcher` submits to Slurm (hydra/launcher=slurm),
    with submitit's sacct warnings dropped; else nothing."""
    if type(launcher).__name__ != "SlurmLauncher":
        return nullcontext()
    import submitit  # noqa: F401  (configures its logger on import; the filter goes after)

    logging.getLogger("submitit").addFilter(NoSacctBypass())
    return QueueWatch(sweep_dir)
