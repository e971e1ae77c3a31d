"""What keeps training fast on an accelerator: no host synchronisation inside a training step, an
optional `torch.compile` of the layers, and the check of which rules may train in 16-bit precision.

- `LossWatch` sums the training losses on the device (one op per step). Their epoch mean is
  logged once per epoch, and a NaN/inf loss is noticed without reading it on the host each step:
  NaN and inf survive a sum, a copy of the sum is started every N steps and read N steps later,
  when it has long arrived; the epoch's end reads it at once. Under DDP the sum is first added
  over the ranks: the logged mean is the global batch's, and every rank stops at the same step.
  (Lightning's `self.log` costs ~0.3 ms of Python per call, a few % of a small net's step, so the
  per-step loss is only logged on the steps Lightning writes to the loggers.)
- `compile_layers` compiles every layer's forward (used by every rule's forward pass and by
  evaluation); rule-specific feedback computations (B_l routes, inverses G_l) stay eager.
- `check_precision`: bf16/fp16 are safe for BP, FA (and sign-symmetry) and DFA, whose updates are
  products of errors and activations like backprop's. They are refused for the target-propagation
  family: its targets and feedback losses are small differences of nearly equal quantities
  (h + G(t) − G(h), G(F(h+ε)) − G(F(h))), which 16-bit rounding (8 bits of mantissa for bf16,
  relative error ~4e-3) erases.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from tpbench.errors import ConfigError

LOW_PRECISION = ("16", "bf16", "16-mixed", "bf16-mixed", "16-true", "bf16-true")


class LossWatch:
    """The epoch's training losses summed on the device, read without stalling the host."""

    def __init__(self, reduce: Callable[[Tensor], None] | None = None, world_size: int = 1):
        self.reduce = reduce  # in-place sum over DDP ranks, or None
        self.world_size = world_size
        self.total: Tensor | None = None  # Σ losses of this epoch's steps on this rank, 0-d
        self.count = 0  # steps summed
        self.pending: tuple[Tensor, torch.cuda.Event | None, str] | None = None

    def add(self, loss: Tensor) -> None:
        """total += loss: one device op, no sync."""
        if self.total is None:
            self.total = torch.zeros((), dtype=torch.float32, device=loss.device)
        self.total.add_(loss.detach().float())
        self.count += 1

    def poll(self, where: str) -> str | None:
        """Read the copy started at the previous poll (arrived by now), start a new one; the
        verdict is a sentence when the loss was NaN/inf."""
        verdict = self._verdict(*self._read(self.pending)) if self.pending else None
        self.pending = self._copy(where) if self.total is not None else None
        return verdict

    def epoch_end(self, where: str) -> tuple[float | None, str | None]:
        """(mean loss of the epoch's steps over all ranks, verdict): one sync, then a new sum."""
        self.pending = None
        if self.total is None:
            return None, None
        value, where = self._read(self._copy(where))
        mean = value / (self.count * self.world_size)
        self.total, self.count = None, 0
        return mean, self._verdict(mean, where)

    def _copy(self, where: str) -> tuple[Tensor, torch.cuda.Event | None, str]:
        total = self.total.clone()
        if self.reduce is not None:
            self.reduce(total)  # the same value on every rank, so every rank decides alike
        if total.device.type != "cuda":
            return total, None, where
        host = torch.empty((), dtype=total.dtype, pin_memory=True)
        host.copy_(total, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return host, event, where

    @staticmethod
    def _read(pending: tuple[Tensor, torch.cuda.Event | None, str]) -> tuple[float, str]:
        host, event, where = pending
        if event is not None:
            event.synchronize()  # long done: it was recorded N steps ago
        return float(host), where

    @staticmethod
    def _verdict(value: float, where: str) -> str | None:
        return None if math.isfinite(value) else f"training loss became {value} {where}"


def compile_layers(net: torch.nn.Module) -> None:
    """torch.compile every layer's forward in place (`module.compile()`)."""
    for layer in net:
        layer.compile()


def check_precision(rule: object, precision: str | int | None) -> None:
    """Refuse 16-bit training for rules whose math 16-bit rounding breaks (module docstring)."""
    from tpbench.algorithms.backprop import Backprop
    from tpbench.algorithms.direct_feedback_alignment import DirectFeedbackAlignment
    from tpbench.algorithms.feedback_alignment import FeedbackAlignment

    safe = (Backprop, FeedbackAlignment, DirectFeedbackAlignment)
    if str(precision) in LOW_PRECISION and not isinstance(rule, safe):
        raise ConfigError(
            f"trainer.precision={precision} is not supported by {type(rule).__name__}: its targets "
            "and feedback losses are small differences that 16-bit rounding erases; use "
            "trainer.precision=32-true (16-bit is allowed for BP, FA, sign-symmetry and DFA)."
        )
