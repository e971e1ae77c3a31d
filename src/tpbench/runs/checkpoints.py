"""`last.ckpt` at the end of every epoch, whatever the best-checkpoint policy does.

Lightning's `ModelCheckpoint(save_last=True, monitor=...)` rewrites last.ckpt only when it saves a
monitored checkpoint, i.e. when the monitored metric improves: a run that plateaus keeps an old
last.ckpt and a resume redoes every epoch since. `LastCheckpoint` writes `<dirpath>/last.ckpt`
after each epoch's validation and the rule's own epoch-end hook (LR scheduler step), so a resume
from it redoes at most the epoch that was running. The file is replaced atomically (written
next to it, then renamed, by `AtomicCheckpointIO`, which writes every checkpoint of the trainer):
a kill or a full disk while it is written leaves the previous epoch's file intact.

On SIGTERM (Slurm preemption or time limit) Lightning stops at the next batch; SIGUSR1 (Slurm's
warning before the time limit, where submitit requeues the job) is handled the same way here. The
run then ends as *interrupted* with last.ckpt at the last complete epoch: a mid-epoch state would
not resume exactly (the epoch's batch order and metric states), so none is written.
"""

from __future__ import annotations

import io
import logging
import signal
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from tpbench.atomic import write_bytes

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
        trainer.save_checkpoint(self.dirpath / LAST)  # rank 0 writes (AtomicCheckpointIO)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Every checkpoint of the trainer (last.ckpt, ModelCheckpoint's best) written whole: a
    kill or a full disk keeps the previous file, never a truncated one (tpbench.atomic)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's way
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()  # (torch.save to a file turns a full disk into a RuntimeError)
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getbuffer())


def _stop_at_next_batch(trainer: L.Trainer):
    def handler(signum, frame) -> None:
        log.warning("Received signal %d: stopping at the next batch (last.ckpt is kept)", signum)
        trainer._signal_connector.received_sigterm = True

    return handler
