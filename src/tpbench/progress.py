"""The progress bar of a run: training loss and validation error in %, at little cost per step.

Lightning's RichProgressBar renders the bar and collects every metric after each training step
and redraws 100 times a second from a second thread; on a small net (MNIST FC, ~5 ms a step) that
costs a third of the step time. `ProgressBar` only moves the bar's counter after a step (rich's
thread draws it `refresh_per_second` times a second) and collects the shown values every
`trainer.log_every_n_steps` steps and after each validation: the training loss (the last logged
`train/loss_step`, else the previous epoch's mean) and the validation error and its best so far
in %. Epochs are counted from 1 (`Epoch 5/5` is the last of 5; Lightning shows `Epoch 4/4`).
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    def __init__(
        self,
        refresh_per_second: int = 4,
        leave: bool = False,
        console_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            refresh_rate=refresh_per_second, leave=leave, console_kwargs=console_kwargs
        )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if self.is_disabled or self.progress is None:
            return
        if self.train_progress_bar_id is None:  # a restart in the middle of an epoch
            self._initialize_train_progress_bar_id()
        self.progress.update(self.train_progress_bar_id, completed=batch_idx + 1)
        if (batch_idx + 1) % max(trainer.log_every_n_steps, 1) == 0:
            self._update_metrics(trainer, pl_module)

    def _get_train_description(self, current_epoch: int) -> str:
        """`Epoch 1/5` ... `Epoch 5/5`: counted from 1, as the user gave trainer.max_epochs."""
        description = f"Epoch {current_epoch + 1}"
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            description += f"/{self.trainer.max_epochs}"
        return f"{description:{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, str]:
        metrics = trainer.callback_metrics
        shown = {}
        loss = metrics.get("train/loss_step", metrics.get("train/loss_epoch"))
        if loss is not None:
            shown["loss"] = f"{float(loss):.4g}"
        for key, label in (("val/err", "val err"), ("val/err_best", "best")):
            if key in metrics:
                shown[label] = f"{100 * float(metrics[key]):.2f} %"
        return shown
