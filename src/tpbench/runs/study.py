"""A sweep's Optuna study: its trials' states, and what a killed sweep left.

- a trial is *finished* when it is COMPLETE, PRUNED or FAIL, except a FAIL left by a killed sweep
  (user attr `interrupted`), which is re-run and so does not count;
- `requeue_interrupted`: trials a killed sweep left RUNNING. A trial whose process still runs
  (a local trial outlives its sweeper) is stopped first, so no trial trains twice at once; one
  whose run ended on its own is recorded as it ended (COMPLETE with its logged objective, or
  PRUNED), so it does not run again; any other is marked FAIL/interrupted and queued
  again with its parameters, its run directory (where `ckpt_path=auto` resumes it) and the
  epochs it had reported (`carry_reports`), so the pruner never judges a step twice;
- `outcome`: a launcher's JobReturn as (state, objective, reason).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from pathlib import Path

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import FrozenTrial, Trial, TrialState

from tpbench.runs.pruning import Pruned
from tpbench.runs.reader import read_metrics
from tpbench.runs.slurm import cancel_sweep_jobs
from tpbench.runs.state import live_pid, read_state
from tpbench.runs.storage import FAIL_REASON, INTERRUPTED, RESUMES, RUN_DIR

log = logging.getLogger("tpbench.sweep")  # own handlers: see tpbench.runs.sweep_progress

STOP_WAIT_S = 60  # how long a left-over trial process gets to stop on SIGTERM before SIGKILL


def is_finished(trial: FrozenTrial) -> bool:
    """COMPLETE, PRUNED or FAIL; a FAIL left by a killed sweep is re-run, so it does not count."""
    if trial.state == TrialState.FAIL:
        return INTERRUPTED not in trial.user_attrs
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def count(study: optuna.Study) -> tuple[int, int]:
    """(finished trials, failed trials) of the study."""
    finished = [t for t in study.get_trials(deepcopy=False) if is_finished(t)]
    return len(finished), sum(t.state == TrialState.FAIL for t in finished)


def stop_leftover(run_dir: Path, number: int) -> None:
    """SIGTERM (then SIGKILL) a trial process that outlived its killed sweep: it stops at the next
    batch with last.ckpt at its last complete epoch, from which the re-run resumes."""
    pid = live_pid(run_dir)
    if pid is None:
        return
    log.warning("Trial %d (%s) was still running as process %d: stopping it", number, run_dir, pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            if live_pid(run_dir) != pid:
                return
            time.sleep(0.2)


def ended_value(run_dir: Path, metric: str) -> float | None:
    """The objective a run that finished on its own logged last (None: not logged)."""
    values = read_metrics(run_dir).get(metric, {})
    return values[max(values)] if values else None


def requeue_interrupted(study: optuna.Study, metric: str) -> int:
    """Settle the RUNNING trials of a killed sweep; returns how many are queued to run again."""
    requeued = 0
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    run_dirs = [Path(t.user_attrs[RUN_DIR]) for t in stale if RUN_DIR in t.user_attrs]
    if run_dirs:  # their Slurm jobs may still be queued or running: cancel them first
        cancel_sweep_jobs(run_dirs[0].parent)
    for frozen in stale:
        run_dir = frozen.user_attrs.get(RUN_DIR)
        if run_dir is not None:
            stop_leftover(Path(run_dir), frozen.number)
        recorded = read_state(Path(run_dir)) if run_dir is not None else None
        trial = Trial(study, frozen._trial_id)
        if recorded is not None and recorded[0] == "pruned":
            trial.set_user_attr(FAIL_REASON, recorded[1])
            study.tell(frozen.number, state=TrialState.PRUNED)
            continue
        value = ended_value(Path(run_dir), metric) if recorded == ("finished", "") else None
        if value is not None:  # it ended after its sweep was killed: nothing to run again
            study.tell(frozen.number, value)
            continue
        trial.set_user_attr(INTERRUPTED, "left RUNNING by a killed sweep; re-run")
        study.tell(frozen.number, state=TrialState.FAIL)
        attrs = {RESUMES: frozen.number} | ({RUN_DIR: run_dir} if run_dir else {})
        study.enqueue_trial(frozen.params, user_attrs=attrs, skip_if_exists=False)
        log.warning(
            "Trial %d was left running by a killed sweep; re-queued to resume from last.ckpt",
            frozen.number,
        )
        requeued += 1
    return requeued


def carry_reports(study: optuna.Study, trial: Trial) -> None:
    """A re-run trial holds the epochs its interrupted predecessor reported (it resumes after
    them from last.ckpt, or redoes and skips them)."""
    resumes = trial.user_attrs.get(RESUMES)
    if resumes is None:
        return
    for step, value in study.trials[resumes].intermediate_values.items():
        study._storage.set_trial_intermediate_value(trial._trial_id, step, value)


def outcome(ret: JobReturn, metric: str) -> tuple[TrialState, float, str | None]:
    """(COMPLETE, objective, None), (PRUNED, nan, the pruner's verdict) or (FAIL, nan, one-line
    reason) of a finished job."""
    try:
        if ret.status == JobStatus.FAILED:  # (ret.return_value would also print to stderr)
            raise ret._return_value
        value = float(ret._return_value)
    except Pruned as pruned:
        return TrialState.PRUNED, math.nan, str(pruned)
    except Exception as error:  # any error of a trial is that trial's failure
        lines = [line.strip() for line in f"{type(error).__name__}: {error}".splitlines()]
        return TrialState.FAIL, math.nan, " ".join(line for line in lines if line)[:500]
    if not math.isfinite(value):
        reason = f"the objective {metric} is {value} (not logged, or NaN)"
        return TrialState.FAIL, math.nan, reason
    return TrialState.COMPLETE, value, None
