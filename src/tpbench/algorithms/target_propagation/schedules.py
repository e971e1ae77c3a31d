"""Schedule parts: which epochs train the feedback and the forward weights, and K_l feedback steps
per batch for each learned inverse (bottom-up list or one value).

- `Parallel`: every batch trains the inverses (K_l steps), then the forward weights once.
- `Alternating` (Bartunov et al. 2018): a whole epoch of inverse training, then a whole epoch of
  forward training, and so on.
Both may start with `warmup_epochs` feedback-only epochs (`warmup_feedback_iterations` steps per
batch there, K_l by default). How a batch's feedback training runs, where the papers differ:
- `sequential`: false: all layers' inverse losses in one joint step (exact for every loss that
  depends only on its own G; DRL's references then come from the start-of-batch G's); true: layer
  by layer top-down, each layer's step before the layer below draws its noise and reference (the
  FW-DTP authors' code, code/models/tp_net.py:122-155).
- `targets_before_feedback`: the targets come from the G's before this batch's feedback steps
  (Bartunov Alg. 1; Meulemans' code, lib/train.py:349-406) or after them (false: Ernoult's and
  the FW-DTP authors' code).
"""

from __future__ import annotations

from tpbench.algorithms.target_propagation.checks import per_layer
from tpbench.errors import ConfigError


class Schedule:
    name = "schedule"

    def __init__(
        self,
        feedback_iterations: int | list[int] = 1,
        warmup_epochs: int = 0,
        warmup_feedback_iterations: int | list[int] | None = None,
        sequential: bool = False,
        targets_before_feedback: bool = False,
    ):
        if warmup_epochs < 0:
            raise ConfigError(f"algo.schedule.warmup_epochs={warmup_epochs} must be ≥ 0.")
        self.feedback_iterations = feedback_iterations
        self.warmup_epochs = warmup_epochs
        self.warmup_feedback_iterations = warmup_feedback_iterations
        self.sequential, self.targets_before_feedback = sequential, targets_before_feedback
        self.training_iterations: list[int] = []  # K_l per learned inverse, set by `bind`
        self.warmup_iterations: list[int] = []

    def bind(self, n_inverses: int) -> None:
        name = "schedule.feedback_iterations"
        self.training_iterations = per_layer(name, self.feedback_iterations, n_inverses, int, 1)
        warmup = self.warmup_feedback_iterations
        self.warmup_iterations = (
            self.training_iterations
            if warmup is None
            else per_layer("schedule.warmup_feedback_iterations", warmup, n_inverses, int, 1)
        )

    def iterations(self, epoch: int) -> list[int]:
        """K_l of every learned inverse in this epoch (0-based)."""
        return self.warmup_iterations if epoch < self.warmup_epochs else self.training_iterations

    def phase(self, epoch: int, learned_feedback: bool) -> tuple[bool, bool]:
        """(train feedback, train forward weights) in this epoch (0-based)."""
        raise NotImplementedError

    def first_forward_epoch(self) -> int:
        """The first epoch (0-based) that trains forward weights."""
        return self.warmup_epochs

    def check(self, rule, max_epochs: int | None = None) -> None:
        """Fixed feedback has nothing to warm up; a run must reach a forward epoch."""
        if not rule.feedback_map.learned and self.warmup_epochs:
            raise ConfigError(
                f"algo '{rule.rule_name}' has fixed feedback, so schedule.warmup_epochs="
                f"{self.warmup_epochs} means nothing; use 0."
            )
        first = self.first_forward_epoch()
        if max_epochs is not None and 0 <= max_epochs <= first:
            raise ConfigError(
                f"algo '{rule.rule_name}' with schedule={self.name} and warmup_epochs="
                f"{self.warmup_epochs} first trains its forward weights in epoch {first + 1}, so "
                f"trainer.max_epochs={max_epochs} would end at chance; use trainer.max_epochs ≥ "
                f"{first + 1}."
            )


class Parallel(Schedule):
    """Feedback and forward training on every batch (after the warm-up); with
    `extra_feedback_epochs` E, every training epoch is followed by E feedback-only epochs
    (Meulemans' code: `extra_fb_epochs`, lib/train.py:173-177)."""

    name = "parallel"

    def __init__(self, *args, extra_feedback_epochs: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if extra_feedback_epochs < 0:
            raise ConfigError(
                f"algo.schedule.extra_feedback_epochs={extra_feedback_epochs} must be ≥ 0."
            )
        self.extra_feedback_epochs = extra_feedback_epochs

    def phase(self, epoch, learned_feedback) -> tuple[bool, bool]:
        epoch -= self.warmup_epochs
        if epoch < 0 or epoch % (1 + self.extra_feedback_epochs):
            return True, False
        return learned_feedback, True


class Alternating(Schedule):
    """An epoch of feedback training, then an epoch of forward training (after the warm-up)."""

    name = "alternating"

    def phase(self, epoch, learned_feedback) -> tuple[bool, bool]:
        epoch -= self.warmup_epochs
        if epoch < 0:
            return True, False
        return epoch % 2 == 0, epoch % 2 == 1

    def first_forward_epoch(self) -> int:
        return self.warmup_epochs + 1

    def check(self, rule, max_epochs=None) -> None:
        if not rule.feedback_map.learned:
            raise ConfigError(
                f"algo '{rule.rule_name}' has fixed feedback, so schedule=alternating means "
                "nothing; use algo/schedule=parallel."
            )
        super().check(rule, max_epochs)
