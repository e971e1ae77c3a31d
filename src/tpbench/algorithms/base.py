"""The thin base of every learning rule: a LightningModule with manual optimization.

A rule subclasses `LearningRule` and writes `train_step(x, y)`: it computes its updates, steps its
optimizers and returns (logits, task loss) for logging. The base builds the forward optimizer and
the optional feedback optimizer from `_partial_` configs, keeps accuracy/error metrics per phase,
steps an optional LR scheduler by hand each epoch, and stops a run whose loss becomes NaN/inf.

Every optimizer step goes through Lightning (`self.forward_optimizer.step()`), which is where
`trainer=ddp` averages the optimizer's gradients over the ranks (tpbench.distributed). Nothing in
`training_step` reads a value back to the host (see loss_watch.py). `standalone_optimizers()`
lets a plain Python loop drive `train_step` without a Trainer (benchmarks, tests).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MaxMetric, MinMetric

from tpbench.algorithms.loss_watch import LossWatch
from tpbench.algorithms.sample_mean import SampleMean
from tpbench.algorithms.tasks import make_task
from tpbench.distributed import check_strategy, plain_backward, rank_reducer
from tpbench.errors import ConfigError, DivergedError
from tpbench.nets import Network
from tpbench.runs import random_state

log = logging.getLogger(__name__)

PHASES = ("train", "val", "test")
LOW_PRECISION = ("16", "bf16", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
OptimizerFactory = Callable[..., torch.optim.Optimizer]


class LearningRule(L.LightningModule):
    """Base class; `feedback_optimizer` is None for rules without learned feedback weights."""

    # May this rule train in bf16/fp16? Yes where updates are products of errors and activations,
    # like backprop's (BP, FA, sign-symmetry, DFA). Not for the target-propagation family: its
    # targets and feedback losses are small differences of nearly equal quantities
    # (h + G(t) − G(h), G(F(h+ε)) − G(F(h))), which 16-bit rounding (relative error ~4e-3) erases.
    low_precision_safe = False

    @property
    def display_name(self) -> str:
        """The rule's name in the console and logs (a variant names itself: frSF, not FA)."""
        return type(self).__name__

    def __init__(
        self,
        net: Network,
        optimizer: OptimizerFactory,
        feedback_optimizer: OptimizerFactory | None = None,
        scheduler: Callable | None = None,
        num_classes: int | None = None,
        nan_check_every: int = 50,
        task: str = "classification",
    ):
        super().__init__()
        self.automatic_optimization = False
        self.net = net
        self.optimizer_factory, self.feedback_optimizer_factory = optimizer, feedback_optimizer
        self.scheduler_factory = scheduler
        self.nan_check_every = nan_check_every
        self.num_classes = num_classes or net.out_shape[-1]
        self.task = make_task(task)  # classification | reconstruction (tpbench.algorithms.tasks)
        # per phase, the epoch's accuracy (classification) or mean reconstruction error
        self.sample_means = {phase: SampleMean() for phase in PHASES}
        self.val_acc_best, self.val_err_best = MaxMetric(), MinMetric()
        for best in (self.val_acc_best, self.val_err_best):
            best.persistent(True)  # in checkpoints: a resumed run keeps its best-so-far
        self.diverged: str | None = None
        self.warned_chance = False  # the at-chance warning is given once per process
        self.backward_is_plain = False  # set when fitting starts (manual_backward)
        self.loss_watch = LossWatch()
        self._standalone: list[torch.optim.Optimizer] | None = None

    # --- what a rule writes --------------------------------------------------------------------
    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Update the weights on one batch; return (logits, task loss). y is the task's target:
        the label (classification) or the flat input (reconstruction)."""
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
        """ℓ averaged over the batch: cross-entropy with the label, or ½‖h_L − x‖² (see tasks)."""
        return self.task.loss(logits, y)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def configure_optimizers(self):
        optimizers = [
            _build_optimizer(
                "algo.optimizer", self.optimizer_factory, self.net.forward_parameters()
            )
        ]
        if self.feedback_optimizer_factory is not None:
            optimizers.append(
                _build_optimizer(
                    "algo.feedback_optimizer",
                    self.feedback_optimizer_factory,
                    self.feedback_param_groups(),
                )
            )
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
        if self._trainer is None and self._standalone is not None:
            return self._standalone
        optimizers = self.optimizers()
        return optimizers if isinstance(optimizers, list) else [optimizers]

    def standalone_optimizers(self) -> list[torch.optim.Optimizer]:
        """Build the optimizers for driving `train_step` from a plain loop without a Trainer;
        `forward_optimizer`, `feedback_optimizer` and `manual_backward` then work bare."""
        configured = self.configure_optimizers()
        self._standalone = configured[0] if isinstance(configured, tuple) else configured
        return self._standalone

    def manual_backward(self, loss: Tensor, *args, **kwargs) -> None:
        """Plain autograd without a Trainer, and where Lightning's backward would add nothing but
        its hook dispatch (~0.2 ms a step, 3 % of BP's MNIST FC step: `plain_backward`)."""
        if self.backward_is_plain or (self._trainer is None and self._standalone is not None):
            loss.backward(*args, **kwargs)
            return
        super().manual_backward(loss, *args, **kwargs)

    def check_trainer(self, trainer: L.Trainer) -> None:
        """One ConfigError sentence when this rule cannot train with the trainer's strategy (only
        tpbench's GradientSyncDDP averages gradients correctly) or 16-bit precision."""
        check_strategy(trainer.strategy)
        self.check_precision(trainer.precision)

    def check_precision(self, precision: object) -> None:
        """Target propagation refuses 16-bit, checked on the value the user gave (Lightning
        turns 16-mixed into bf16-mixed on a CPU before the trainer exists)."""
        if str(precision) in LOW_PRECISION and not self.low_precision_safe:
            raise ConfigError(
                f"trainer.precision={precision} is not supported by {type(self).__name__}: its "
                "targets and feedback losses are small differences that 16-bit rounding erases; "
                "use trainer.precision=32-true (16-bit is allowed for BP, FA, sign-symmetry and "
                "DFA)."
            )

    def setup(self, stage: str) -> None:
        self.check_trainer(self.trainer)

    def on_fit_start(self) -> None:
        self.backward_is_plain = plain_backward(self.trainer, self)
        self.loss_watch = LossWatch(rank_reducer(self.trainer.strategy), self.trainer.world_size)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "to_device"):
            datamodule.to_device(self.device)

    on_test_start = on_fit_start

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        random_state.capture(checkpoint)  # the noise a resumed run goes on drawing

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        random_state.restore(checkpoint)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        y = self.task.target(x, y)
        logits, loss = self.train_step(x, y)
        self.sample_means["train"].add(self.task.sample_scores(logits.detach(), y))
        self.loss_watch.add(loss)  # the epoch's mean is logged at its end (no per-step self.log)
        if self.trainer._logger_connector.should_update_logs:  # a step the loggers write
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        if self.nan_check_every and batch_idx % self.nan_check_every == 0:
            self._stop_if_diverged(self.loss_watch.poll(self._where()))

    def _where(self) -> str:
        return f"at epoch {self.current_epoch}, by step {self.global_step}"

    def _stop_if_diverged(self, verdict: str | None) -> None:
        """Stop the run (keeping its checkpoints) once the loss was NaN/inf."""
        if verdict and not self.diverged:
            self.diverged = verdict
            log.error("Run diverged: %s; stopping.", self.diverged)
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        loss, verdict = self.loss_watch.epoch_end(self._where())
        if self.nan_check_every:
            self._stop_if_diverged(verdict)
        scores = self._scores("train")
        self._warn_if_at_chance(scores.get("train/acc"))
        epoch_loss = {} if loss is None else {"train/loss_epoch": loss}
        self.log_dict({**epoch_loss, **scores})
        for scheduler in [self.lr_schedulers()] if self.scheduler_factory else []:
            scheduler.step()

    def trains_forward_weights(self) -> bool:
        """Whether this epoch steps the forward weights (the target-propagation family has
        feedback-only epochs)."""
        return True

    def forward_epochs(self, epoch: int) -> int:
        """How many of the epochs 0..epoch trained the forward weights (a sweep's pruning step)."""
        return epoch + 1

    def _warn_if_at_chance(self, train_acc: Tensor | None) -> None:
        """One warning the first epoch that trained the forward weights and left a classifier's
        training accuracy at chance, acc ≤ 1.2/K: the run goes on (it may still start learning),
        but one that stays there has usually died."""
        if train_acc is None or self.warned_chance or not self.trains_forward_weights():
            return
        accuracy = float(train_acc)
        if accuracy <= 1.2 / self.num_classes:
            self.warned_chance = True
            if not self.trainer.is_global_zero:  # every rank has the same (synced) accuracy
                return
            log.warning(
                "Training accuracy %.1f %% at epoch %d is chance level (1/%d): the net has learned "
                "nothing yet; a ReLU net at a high learning rate often dies this way (dead units), "
                "so if it stays there, try a lower algo.optimizer.lr or another seed.",
                100 * accuracy,
                self.current_epoch,
                self.num_classes,
            )

    def _eval_step(self, phase: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        y = self.task.target(x, y)
        logits = self(x)
        self.sample_means[phase].add(self.task.sample_scores(logits, y))
        self.log(f"{phase}/loss", self.task_loss(logits, y), on_epoch=True, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def _scores(self, phase: str) -> dict[str, Tensor]:
        """{phase/acc, phase/err} (classification) or {phase/err} (reconstruction error) of the
        epoch, then the metric is reset."""
        value = self.sample_means[phase].pop(rank_reducer(self.trainer.strategy), self.device)
        return {f"{phase}/{k}": v for k, v in self.task.scores(value).items()}

    def on_validation_epoch_end(self) -> None:
        scores = self._scores("val")
        if self.trainer.sanity_checking:
            return
        self.val_err_best(scores["val/err"])
        best = {"val/err_best": self.val_err_best.compute()}
        if "val/acc" in scores:
            self.val_acc_best(scores["val/acc"])
            best["val/acc_best"] = self.val_acc_best.compute()
        self.log_dict({**scores, **best}, prog_bar=True)

    def best_scores(self) -> dict[str, float]:
        """{val/err_best, val/acc_best} so far, as kept in checkpoints; empty before validation.
        A run resumed from a checkpoint of its last epoch validates nothing and logs none."""
        bests = {"val/err_best": self.val_err_best, "val/acc_best": self.val_acc_best}
        with warnings.catch_warnings():  # restored from a checkpoint: no update() in this process
            warnings.simplefilter("ignore")
            values = {name: float(metric.compute()) for name, metric in bests.items()}
        return {name: v for name, v in values.items() if math.isfinite(v)}

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._scores("test"))

    def raise_if_diverged(self) -> None:
        if self.diverged:
            raise DivergedError(f"The run diverged: {self.diverged}.")


def _build_optimizer(key: str, factory: OptimizerFactory, params) -> torch.optim.Optimizer:
    """factory(params); an option the optimizer class does not take (e.g. `fused` for RMSprop) is
    one ConfigError sentence."""
    try:
        return factory(params)
    except TypeError as error:
        raise ConfigError(
            f"{key} cannot be built: {error} (drop an option with ~{key}.<name>)."
        ) from None
