"""Schedule parts: which epochs train the feedback and the forward weights, and K_l feedback steps
per batch for each learned inverse (bottom-up list or one value).

- `Parallel`: every batch trains the inverses (K_l steps), then the forward weights once.
- `Alternating` (Bartunov et al. 2018): a whole epoch of inverse training, then a whole epoch of
  forward training, and so on.
Both may start with `warmup_epochs` feedback-only epochs.
"""

from __future__ import annotations

from tpbench.algorithms.target_propagation.checks import per_layer
from tpbench.errors import ConfigError


class Schedule:
    name = "schedule"

    def __init__(self, feedback_iterations: int | list[int] = 1, warmup_epochs: int = 0):
        if warmup_epochs < 0:
            raise ConfigError(f"algo.schedule.warmup_epochs={warmup_epochs} must be ≥ 0.")
        self.feedback_iterations = feedback_iterations
        self.warmup_epochs = warmup_epochs
        self.iterations: list[int] = []  # K_l per learned inverse, set by `bind`

    def bind(self, n_inverses: int) -> None:
        self.iterations = per_layer(
            "schedule.feedback_iterations", self.feedback_iterations, n_inverses, int, 1
        )

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
    """Feedback and forward training on every batch (after the warm-up)."""

    name = "parallel"

    def phase(self, epoch, learned_feedback) -> tuple[bool, bool]:
        if epoch < self.warmup_epochs:
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
