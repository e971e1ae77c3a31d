"""A callback that interrupts its own Slurm job the way a cluster does, at a chosen batch.

Used by the Slurm tests as `+callbacks.interrupt._target_=tests.interrupter.InterruptOnce`:
- `how=requeue`: `scontrol requeue <job>`, as an administrator or a preempting job does (Slurm
  sends SIGTERM, then requeues the job);
- `how=timeout`: SIGUSR2 to the job's steps (`scancel --signal=USR2`), the signal Slurm sends
  `signal_delay_s` before the time limit (submitit's `--signal=USR2@<s>`).
Then it waits (at most a minute) until the signal has arrived. It acts `times` times in all,
counted in `marker` (a file), so a requeued job runs through the second time.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import lightning as L


def job_id() -> str:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]


class InterruptOnce(L.Callback):
    def __init__(self, how: str, marker: str, epoch: int = 1, batch: int = 1, times: int = 1):
        self.how, self.marker = how, Path(marker)
        self.epoch, self.batch, self.times = epoch, batch, times

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        done = int(self.marker.read_text()) if self.marker.exists() else 0
        if done >= self.times:
            return
        self.marker.write_text(str(done + 1))
        if self.how == "requeue":
            command = ["scontrol", "requeue", job_id()]
        else:
            command = ["scancel", "--signal=USR2", job_id()]
        subprocess.run(command, check=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # submitit's USR2 handler exits from within the sleep
            if trainer.received_sigterm:  # SIGTERM: Lightning stops after this batch
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.how} of job {job_id()} did not stop it within a minute")
