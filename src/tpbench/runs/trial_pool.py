"""Up to `n_jobs` sweep trials at once, a new one started as soon as any ends.

Each trial is one launch of one job through the sweep's Hydra launcher. A launcher that runs jobs
in their own processes (hydra/launcher=local: submitit's local executor; slurm: one Slurm job per
trial) is called from a thread per running trial, so a trial that ends early (pruned, failed)
frees its slot at once instead of waiting for the slowest trial of a batch. Hydra's basic
launcher runs the job in this process, in its main thread (where signal handlers can be
installed), one trial at a time.

A launch that raises (an override that does not compose, a job that cannot be submitted) is that
trial's failure, returned as a failed JobReturn like any error inside the job. When the sweep
itself stops (Ctrl-C, a failure budget spent), the trials still running are stopped at their next
batch (SIGTERM) with last.ckpt at their last complete epoch, so a restarted sweep resumes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import Trial

from tpbench.runs.storage import RUN_DIR
from tpbench.runs.study import stop_leftover


class TrialPool:
    def __init__(self, launcher, n_jobs: int, in_processes: bool):
        self.launcher, self.n_jobs = launcher, n_jobs
        self.threads = ThreadPoolExecutor(n_jobs) if in_processes else None
        self.running: dict[Future, Trial] = {}

    def __enter__(self) -> TrialPool:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None:
            for trial in self.running.values():
                stop_leftover(Path(trial.user_attrs[RUN_DIR]), trial.number)
        if self.threads is not None:
            self.threads.shutdown(wait=True, cancel_futures=True)

    def has_room(self) -> bool:
        return len(self.running) < self.n_jobs

    def start(self, trial: Trial, overrides: list[str]) -> None:
        if self.threads is not None:
            future = self.threads.submit(self._launch, overrides, trial.number)
        else:
            future = Future()
            future.set_result(self._launch(overrides, trial.number))
        self.running[future] = trial

    def finished(self) -> Iterator[tuple[Trial, JobReturn]]:
        """(trial, its JobReturn) for each trial that ended, waiting for at least one."""
        done, _ = wait(self.running, return_when=FIRST_COMPLETED)
        for future in done:
            yield self.running.pop(future), future.result()

    def _launch(self, overrides: list[str], number: int) -> JobReturn:
        try:
            (ret,) = self.launcher.launch([overrides], initial_job_idx=number)
        except Exception as error:  # the trial's own failure, told like any job's error
            return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)
        return ret
