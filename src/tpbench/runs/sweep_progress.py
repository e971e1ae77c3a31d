"""What a running sweep prints: one line per finished trial, on stdout and in <sweep dir>/sweep.log.

    trial 7/60 trial_006 COMPLETE val/err_best 2.31 % | best 2.05 % (trial_001) | 4m12s
        elapsed, ~31m left                                       (one line on the console)
    trial 8/60 trial_007 FAIL DivergedError: The run diverged: ... | best 2.05 % (trial_001) | ...

k/N counts finished trials (complete or failed; a resumed sweep starts from those it had), the
time left extrapolates this invocation's pace over the trials still to run. The lines go through
their own logger (`tpbench.sweep`) with its own handlers, so they show however the trials'
logging is configured (a sweep sends the trials' INFO lines to their train.log files only).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

log = logging.getLogger("tpbench.sweep")


def setup_log(sweep_dir: str) -> None:
    """stdout (time-stamped) and <sweep dir>/sweep.log; replaces this process's earlier setup."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S")
    for handler in (
        logging.StreamHandler(sys.stdout),
        logging.FileHandler(Path(sweep_dir) / "sweep.log"),
    ):
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def show(metric: str, value: float) -> str:
    """An error or accuracy (a fraction) in %, anything else as it is."""
    if not math.isfinite(value):
        return str(value)
    if any(word in metric for word in ("err", "acc")):
        return f"{100 * value:.2f} %"
    return f"{value:.4g}"


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """Counts this invocation's finished trials and formats each one's line."""

    def __init__(self, n_trials: int, metric: str):
        self.n_trials, self.metric = n_trials, metric
        self.start = time.monotonic()
        self.done_here = 0

    def line(
        self,
        finished: int,
        run: str,
        outcome: str,
        best: tuple[float, str] | None,
    ) -> str:
        """`outcome`: "COMPLETE <metric> <value>" or "FAIL <reason>"; best: (value, run)."""
        self.done_here += 1
        elapsed = time.monotonic() - self.start
        left = max(self.n_trials - finished, 0)
        eta = "done" if left == 0 else f"~{duration(elapsed / self.done_here * left)} left"
        best_text = "no complete trial yet"
        if best is not None:
            best_text = f"best {show(self.metric, best[0])} ({best[1]})"
        return (
            f"trial {finished}/{self.n_trials} {run} {outcome} | {best_text} | "
            f"{duration(elapsed)} elapsed, {eta}"
        )
