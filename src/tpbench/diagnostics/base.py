"""The base of every diagnostic callback: when to measure, what to measure on, where results go.

A diagnostic measures a rule every `every_n_steps` training batches (batch index across epochs,
the same step axis as the loggers' `step`), on rank 0 only. Measurements on a fixed batch use the
first `num_samples` samples of the first training batch, captured once when fitting starts. Each
value is logged to every active logger as `diag/<quantity>/L<l>` (l = 1..L, layer l maps h_{l-1}
to h_l) and kept in a history that survives checkpoints; when fitting ends the history is drawn as
one PNG per diagnostic in `<run dir>/diagnostics/` (`plot=False`: none) and, with a WandbLogger,
logged to the W&B run.

Diagnostics never change the training trajectory: they run with gradients off (or through
`torch.autograd.grad`, which leaves every `.grad` alone), touch no parameter or optimizer state
and restore the RNG state and other layer state afterwards (`measuring`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from tpbench.errors import ConfigError
from tpbench.nets import MaxPool

log = logging.getLogger(__name__)

History = dict[str, list[tuple[int, float]]]


@contextmanager
def measuring(rule: L.LightningModule) -> Iterator[None]:
    """Run a measurement that leaves no trace: the CPU (and CUDA) RNG state and the switches of
    stateful max-un-pooling (set by every forward pass) are restored afterwards."""
    pools = [module for module in rule.modules() if isinstance(module, MaxPool)]
    switches = [pool.indices for pool in pools]
    devices = [rule.device] if rule.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        for pool, indices in zip(pools, switches):
            pool.indices = indices


def layer_key(quantity: str, index: int) -> str:
    """Metric name of a per-layer value; `index` is 0-based, names are 1-based (L1 = first)."""
    return f"diag/{quantity}/L{index + 1}"


class DiagnosticCallback(L.Callback):
    """Subclasses set `name` and write `measure(rule, x, y)` (on the fixed batch) or override the
    batch hooks themselves (update alignment measures on the training batch)."""

    name = "diagnostic"

    def __init__(self, every_n_steps: int = 50, num_samples: int = 64, plot: bool = True):
        if every_n_steps < 1 or num_samples < 1:
            raise ConfigError(
                f"{type(self).__name__}: every_n_steps={every_n_steps} and "
                f"num_samples={num_samples} must both be positive integers."
            )
        self.every_n_steps, self.num_samples, self.plot = every_n_steps, num_samples, plot
        self.fixed_batch: tuple[Tensor, Tensor] | None = None
        self.history: History = {}

    # --- what a diagnostic writes -------------------------------------------------------------
    def measure(self, rule: L.LightningModule, x: Tensor, y: Tensor) -> dict[str, float]:
        """Metric name -> value on the fixed batch (x: (n, *in_shape), y: (n,))."""
        raise NotImplementedError

    # --- schedule, recording, logging -----------------------------------------------------------
    @staticmethod
    def step(trainer: L.Trainer) -> int:
        """Index of the current training batch, counted across epochs (resumes with the run)."""
        return trainer.fit_loop.epoch_loop.total_batch_idx

    def due(self, trainer: L.Trainer) -> bool:
        return trainer.is_global_zero and self.step(trainer) % self.every_n_steps == 0

    def record(self, trainer: L.Trainer, metrics: dict[str, float]) -> None:
        """Keep the values for the figure and send them to every active logger."""
        if not metrics:
            return
        step = self.step(trainer)
        for key, value in metrics.items():
            self.history.setdefault(key, []).append((step, value))
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # --- Lightning hooks ------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.fixed_batch is None:
            x, y = batch
            self.fixed_batch = (x[: self.num_samples].detach().clone(), y[: self.num_samples])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not self.due(trainer) or self.fixed_batch is None:
            return
        x, y = (t.to(pl_module.device) for t in self.fixed_batch)  # from a checkpoint: on CPU
        with measuring(pl_module), torch.no_grad():
            self.record(trainer, self.measure(pl_module, x, y))

    def on_fit_end(self, trainer, pl_module) -> None:
        if not (self.plot and trainer.is_global_zero and self.history):
            return
        from tpbench.diagnostics.plotting import plot_history  # matplotlib only when drawing

        path = Path(trainer.default_root_dir) / "diagnostics" / f"{self.name}.png"
        plot_history(self.history, path, title=f"{self.name} ({type(pl_module).__name__})")
        log.info("Diagnostic figure written: %s", path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"diag/{self.name}", images=[str(path)])

    # --- history and fixed batch travel with checkpoints: a resumed run continues the curves ----
    def state_dict(self) -> dict:
        return {"history": {k: list(v) for k, v in self.history.items()}, "batch": self.fixed_batch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: list(v) for k, v in state_dict.get("history", {}).items()}
        self.fixed_batch = state_dict.get("batch")
