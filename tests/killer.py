"""A callback that kills its own process without warning (SIGKILL, like a lost node) once.

Used by the resume tests as `+callbacks.killer._target_=tests.killer.KillOnce`: at the given
batch of the given epoch it writes `marker` and kills the process (or sends it `signum`, e.g. 2
for Ctrl-C); when `marker` exists (a re-run
of the same command) it does nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class KillOnce(L.Callback):
    def __init__(self, epoch: int, marker: str, batch: int = 1, signum: int = signal.SIGKILL):
        self.epoch, self.batch, self.marker = epoch, batch, Path(marker)
        self.signum = signum  # SIGINT: Ctrl-C

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            if not self.marker.exists():
                self.marker.write_text("killed")
                os.kill(os.getpid(), self.signum)
