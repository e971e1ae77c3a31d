"""`last.ckpt` at the end of every epoch, whatever the best-checkpoint policy does.

Lightning's `ModelCheckpoint(save_last=True, monitor=...)` rewrites last.ckpt only when it saves a
monitored checkpoint, i.e. when the monitored metric improves: a run that plateaus keeps an old
last.ckpt and a resume redoes every epoch since. `LastCheckpoint` writes `<dirpath>/last.ckpt`
after each epoch's validation and the rule's own epoch-end hook (LR scheduler step), so a resume
from it redoes at most the epoch that was running. The file is replaced atomically (written
next to it, then renamed): a kill while it is written leaves the previous epoch's file intact.

On SIGTERM (Slurm preemption or time limit) Lightning stops at the next batch; SIGUSR1 (Slurm's
warning before the time limit, where submitit requeues the job) is handled the same way here. The
run then ends as *interrupted* with last.ckpt at the last complete epoch: a mid-epoch state would
not resume exactly (the epoch's batch order and metric states), so none is written.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

log = logging.getLogger(__name__)

LAST = "last.ckpt"


class LastCheckpoint(Checkpoint):
    """Write `dirpath/last.ckpt` at every epoch end; a diverged run keeps its last finite one."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)
        self._previous_usr1 = None

    @property
    def state_key(self) -> str:
        return f"LastCheckpoint[{self.dirpath.name}]"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (
            signal.SIG_DFL,
            None,
        ):
            # no one (submitit, Lightning's SLURM requeue) handles it: stop like on SIGTERM
            self._previous_usr1 = signal.signal(signal.SIGUSR1, _stop_at_next_batch(trainer))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_usr1()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_usr1()

    def _restore_usr1(self) -> None:
        if self._previous_usr1 is not None:
            signal.signal(signal.SIGUSR1, self._previous_usr1)
            self._previous_usr1 = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or getattr(pl_module, "diverged", None):
            return
        path = self.dirpath / LAST
        partial = path.with_name(f".{LAST}.partial")
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(partial)  # rank 0 writes, every rank waits
        if trainer.is_global_zero:
            os.replace(partial, path)


def _stop_at_next_batch(trainer: L.Trainer):
    def handler(signum, frame) -> None:
        log.warning("Received signal %d: stopping at the next batch (last.ckpt is kept)", signum)
        trainer._signal_connector.received_sigterm = True

    return handler
