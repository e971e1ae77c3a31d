"""The thin base of every learning rule: a LightningModule with manual optimization.

A rule subclasses `LearningRule` and writes `train_step(x, y)`: it computes its updates, steps its
optimizers and returns (logits, task loss) for logging. The base builds the forward optimizer and
the optional feedback optimizer from `_partial_` configs, keeps accuracy/error metrics per phase,
steps an optional LR scheduler by hand each epoch, and stops a run whose loss becomes NaN/inf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, MinMetric
from torchmetrics.classification import MulticlassAccuracy

from tpbench.errors import DivergedError
from tpbench.nets import Network

log = logging.getLogger(__name__)

PHASES = ("train", "val", "test")
OptimizerFactory = Callable[..., torch.optim.Optimizer]


class LearningRule(L.LightningModule):
    """Base class; `feedback_optimizer` is None for rules without learned feedback weights."""

    def __init__(
        self,
        net: Network,
        optimizer: OptimizerFactory,
        feedback_optimizer: OptimizerFactory | None = None,
        scheduler: Callable | None = None,
        num_classes: int | None = None,
        nan_check_every: int = 50,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.net = net
        self.optimizer_factory, self.feedback_optimizer_factory = optimizer, feedback_optimizer
        self.scheduler_factory = scheduler
        self.nan_check_every = nan_check_every
        num_classes = num_classes or net.out_shape[-1]
        # keyed "<phase>_acc": ModuleDict keys may not shadow Module methods such as train()
        self.accuracy = nn.ModuleDict(
            {f"{p}_acc": MulticlassAccuracy(num_classes, average="micro") for p in PHASES}
        )
        self.val_acc_best, self.val_err_best = MaxMetric(), MinMetric()
        for best in (self.val_acc_best, self.val_err_best):
            best.persistent(True)  # in checkpoints: a resumed run keeps its best-so-far
        self.diverged: str | None = None

    # --- what a rule writes --------------------------------------------------------------------
    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Update the weights on one batch; return (logits, task loss)."""
        raise NotImplementedError

    def feedback_parameters(self) -> list[nn.Parameter]:
        """Parameters the feedback optimizer trains (learned inverses); none by default."""
        return self.net.feedback_parameters()

    def feedback_param_groups(self) -> list:
        """What the feedback optimizer gets: `feedback_parameters()`, or param groups (dicts with
        their own "lr", ...) for rules with per-layer feedback learning rates."""
        return self.feedback_parameters()

    # --- shared machinery ----------------------------------------------------------------------
    def task_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """ℓ = cross-entropy of softmax(logits) and the label, averaged over the batch."""
        return F.cross_entropy(logits, y)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def configure_optimizers(self):
        optimizers = [self.optimizer_factory(self.net.forward_parameters())]
        if self.feedback_optimizer_factory is not None:
            optimizers.append(self.feedback_optimizer_factory(self.feedback_param_groups()))
        if self.scheduler_factory is None:
            return optimizers
        return optimizers, [self.scheduler_factory(optimizers[0])]

    @property
    def forward_optimizer(self):
        return self._optimizers_list()[0]

    @property
    def feedback_optimizer(self):
        optimizers = self._optimizers_list()
        return optimizers[1] if len(optimizers) > 1 else None

    def _optimizers_list(self) -> list:
        optimizers = self.optimizers()
        return optimizers if isinstance(optimizers, list) else [optimizers]

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "to_device"):
            datamodule.to_device(self.device)

    on_test_start = on_fit_start

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits, loss = self.train_step(x, y)
        self.accuracy["train_acc"].update(logits.detach(), y)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True)
        if self.nan_check_every and batch_idx % self.nan_check_every == 0:
            self._check_finite(loss)

    def _check_finite(self, loss: Tensor) -> None:
        """Stop the run (keeping its checkpoints) when the loss is NaN/inf; one host sync."""
        if not torch.isfinite(loss).item():
            self.diverged = (
                f"training loss became {loss.item()} at epoch {self.current_epoch}, "
                f"step {self.global_step}"
            )
            log.error("Run diverged: %s; stopping.", self.diverged)
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        acc = self.accuracy["train_acc"].compute()
        self.log_dict({"train/acc": acc, "train/err": 1 - acc})
        self.accuracy["train_acc"].reset()
        for scheduler in [self.lr_schedulers()] if self.scheduler_factory else []:
            scheduler.step()

    def _eval_step(self, phase: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        logits = self(x)
        self.accuracy[f"{phase}_acc"].update(logits, y)
        self.log(f"{phase}/loss", self.task_loss(logits, y), on_epoch=True, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        acc = self.accuracy["val_acc"].compute()
        self.accuracy["val_acc"].reset()
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(acc)
        self.val_err_best(1 - acc)
        self.log_dict(
            {
                "val/acc": acc,
                "val/err": 1 - acc,
                "val/acc_best": self.val_acc_best.compute(),
                "val/err_best": self.val_err_best.compute(),
            },
            prog_bar=True,
        )

    def on_test_epoch_end(self) -> None:
        acc = self.accuracy["test_acc"].compute()
        self.accuracy["test_acc"].reset()
        self.log_dict({"test/acc": acc, "test/err": 1 - acc})

    def raise_if_diverged(self) -> None:
        if self.diverged:
            raise DivergedError(f"The run diverged: {self.diverged}.")
