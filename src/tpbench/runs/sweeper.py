"""Optuna sweeps that survive being killed: the engine behind `conf/hparams_search/*.yaml`.

hydra-optuna-sweeper runs `n_trials` new trials per invocation, forgets trials a killed sweep left
RUNNING, re-draws the same random configurations after a restart, judges its failure tolerance per
batch and records no reason for a failed trial. `ResumableOptunaSweeperImpl` keeps its search-space
parsing and launching and replaces the loop:

- the study lives in persistent storage (SQLite or journal file in the sweep dir, or an RDB URL);
- a trial is *finished* when it is COMPLETE, PRUNED or FAIL; the sweep runs trials until
  `n_trials` are finished, so the same command started again continues where it stopped;
- a trial left RUNNING by a killed sweep is marked FAIL with user attr `interrupted` (not counted
  as finished) and re-run with the same parameters in the same run directory, where
  `ckpt_path=auto` resumes it from its last checkpoint;
- a trial whose job raised (e.g. DivergedError) or returned a non-finite objective is FAIL with
  user attr `fail_reason`; the sweep stops only when more than `max_failure_rate * n_trials`
  trials failed;
- trial k draws its parameters from an RNG seeded by (seed, k, name), so a resumed or parallel
  sweep draws exactly the configurations an uninterrupted one would.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
import zlib
from pathlib import Path

import numpy as np
import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import GridSampler, RandomSampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.trial import FrozenTrial, Trial, TrialState

from tpbench.errors import TpbenchError
from tpbench.runs import slurm
from tpbench.runs.relaunch import quote, results_of
from tpbench.runs.sweep_progress import Progress, setup_log, show

log = logging.getLogger("tpbench.sweep")  # own handlers: see tpbench.runs.sweep_progress

INTERRUPTED = "interrupted"  # user attr: left RUNNING by a killed sweep, re-run, not counted
FAIL_REASON = "fail_reason"  # user attr: why a trial failed
RUN_DIR = "run_dir"  # user attr: the trial's run directory (.hydra/, csv/, checkpoints/)
COMMAND = "command"  # study user attr: the task overrides the sweep was started with


class SweepError(TpbenchError):
    """A sweep cannot go on: too many failed trials, or a restart with a different command."""


class TrialSeededRandomSampler(RandomSampler):
    """Random search where trial k's value of a parameter depends only on (seed, k, name)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.seed = seed

    def sample_independent(self, study, trial, param_name, param_distribution):
        key = [self.seed, trial.number, zlib.crc32(param_name.encode())]
        self._rng = LazyRandomState(int(np.random.SeedSequence(key).generate_state(1)[0]))
        return super().sample_independent(study, trial, param_name, param_distribution)


def storage_url(storage: str | None, sweep_dir: str) -> str:
    """`sqlite` (default) or `journal`: a file in the sweep dir; anything else is used as is."""
    if storage in (None, "sqlite"):
        return f"sqlite:///{sweep_dir}/optuna.db"
    if storage == "journal":
        return f"journal:///{sweep_dir}/optuna.journal"
    return storage


def modern(dist: BaseDistribution) -> BaseDistribution:
    """The plugin builds optuna 2's LogUniform/IntUniform...; the same space in optuna ≥ 3 terms."""
    if isinstance(dist, FloatDistribution):
        return FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return IntDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    return dist


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """`sqlite:///file.db`, `journal:///file` (a plain file, NFS-friendly) or any RDB URL."""
    if url.startswith("journal:///"):
        path = Path(url.removeprefix("journal:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # a reader (report, test) may hold the file briefly: wait instead of failing
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url)


def is_finished(trial: FrozenTrial) -> bool:
    """COMPLETE, PRUNED or FAIL; a FAIL left by a killed sweep is re-run, so it does not count."""
    if trial.state == TrialState.FAIL:
        return INTERRUPTED not in trial.user_attrs
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def count(study: optuna.Study) -> tuple[int, int]:
    """(finished trials, failed trials) of the study."""
    finished = [t for t in study.get_trials(deepcopy=False) if is_finished(t)]
    return len(finished), sum(t.state == TrialState.FAIL for t in finished)


def requeue_interrupted(study: optuna.Study) -> int:
    """Mark RUNNING trials (their sweep was killed) FAIL/interrupted and enqueue them again."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    run_dirs = [Path(t.user_attrs[RUN_DIR]) for t in stale if RUN_DIR in t.user_attrs]
    if run_dirs:  # their Slurm jobs may still be queued or running: cancel them first
        slurm.cancel_sweep_jobs(run_dirs[0].parent)
    for frozen in stale:
        trial = Trial(study, frozen._trial_id)
        trial.set_user_attr(INTERRUPTED, "left RUNNING by a killed sweep; re-run")
        study.tell(frozen.number, state=TrialState.FAIL)
        attrs = {k: v for k, v in frozen.user_attrs.items() if k == RUN_DIR}
        study.enqueue_trial(frozen.params, user_attrs=attrs, skip_if_exists=False)
        log.warning("Trial %d was left running by a killed sweep; re-running it", frozen.number)
    return len(stale)


def failure_reason(ret: JobReturn, metric: str) -> tuple[float, str | None]:
    """(objective, None) for a usable result, (nan, one-line reason) for a failed trial."""
    try:
        if ret.status == JobStatus.FAILED:  # (ret.return_value would also print to stderr)
            raise ret._return_value
        value = float(ret._return_value)
    except Exception as error:  # any error of a trial is that trial's failure
        lines = [line.strip() for line in f"{type(error).__name__}: {error}".splitlines()]
        return math.nan, " ".join(line for line in lines if line)[:500]
    if not math.isfinite(value):
        return math.nan, f"the objective {metric} is {value} (not logged, or NaN)"
    return value, None


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    """hydra-optuna-sweeper's sweeper with persistent, resumable, failure-tolerant trials
    (single objective: the run's `optimized_metric`)."""

    def setup(self, *, hydra_context, task_function, config) -> None:
        # the sweep dir may use ${hydra:...} (paths.root_dir); Hydra sets this only for jobs
        HydraConfig.instance().set_config(config)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.sweep_dir = str(Path(str(config.hydra.sweep.dir)).absolute())
        self.storage = storage_url(self.storage, self.sweep_dir)
        self.study_name = self.study_name or Path(self.sweep_dir).name
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
        setup_log(self.sweep_dir)
        self.launcher = slurm.watched(self.launcher, self.sweep_dir)  # hydra/launcher=slurm

    def sweep(self, arguments: list[str]) -> None:
        distributions, fixed = self._search_space(arguments)
        study = self._load_study(arguments)
        requeued = requeue_interrupted(study)
        finished, failed = count(study)
        log.info(
            "Sweep %s: %d of %d trials finished (%d failed), %d re-queued; one line per trial "
            "below, each trial's log in <trial dir>/train.log",
            self.sweep_dir,
            finished,
            self.n_trials,
            failed,
            requeued,
        )
        self._check_failure_budget(study)
        self.progress = Progress(self.n_trials, str(self.config.get("optimized_metric")))
        while (to_go := self.n_trials - count(study)[0]) > 0:
            trials = [study.ask() for _ in range(min(self.n_jobs, to_go))]
            overrides = self._configure_trials(trials, distributions, fixed)
            subdirs = [self._run_subdir(trial) for trial in trials]
            # pin every job to the sweep dir resolved once, and to its own trial dir
            pinned = (f"hydra.sweep.dir={quote(self.sweep_dir)}",)
            jobs = [(*o, *pinned, f"hydra.sweep.subdir={s}") for o, s in zip(overrides, subdirs)]
            returns = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, returns, strict=True):
                self._tell(study, trial, ret)
            self._check_failure_budget(study)
        self._save_results(study)

    def _search_space(self, arguments: list[str]) -> tuple[dict, dict]:
        """Distributions and fixed values from hydra.sweeper.params + the command line."""
        self._process_searchspace_config()
        with warnings.catch_warnings():  # the plugin builds optuna 2's deprecated distributions
            warnings.simplefilter("ignore", FutureWarning)
            distributions, fixed = create_params_from_overrides(
                self._parse_sweeper_params_config() + list(arguments)
            )
        distributions = {**(self.search_space_distributions or {}), **distributions}
        distributions = {k: modern(d) for k, d in distributions.items()}
        for name in fixed:
            distributions.pop(name, None)
        if isinstance(self.sampler, functools.partial) and self.sampler.func is GridSampler:
            grid = {k: self._to_grid_sampler_choices(d) for k, d in distributions.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
            log.info("Grid search: %d trials", self.n_trials)
        return distributions, fixed

    def _load_study(self, arguments: list[str]) -> optuna.Study:
        """Create the study, or load it and check it was started with the same command."""
        Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=make_storage(self.storage),
            sampler=self.sampler,
            directions=self._get_directions(),
            load_if_exists=True,
        )
        command = sorted(arguments)
        started_with = study.user_attrs.get(COMMAND)
        if started_with is None:
            study.set_user_attr(COMMAND, command)
        elif results_of(started_with) != results_of(command):
            added = sorted(set(results_of(command)) - set(results_of(started_with)))
            dropped = sorted(set(results_of(started_with)) - set(results_of(command)))
            raise SweepError(
                f"Sweep {self.sweep_dir} was started with other overrides (now added: "
                f"{added or 'none'}, missing: {dropped or 'none'}); repeat its command to "
                "continue it (threads, loggers, the progress bar and hydra.* may differ), or "
                "pass sweep_name=<new name> to start a new sweep."
            )
        return study

    def _run_subdir(self, trial: Trial) -> str:
        """trial_<k>, k counting configurations (no gaps: a re-run of an interrupted trial is a
        new Optuna trial but keeps its configuration's directory)."""
        run_dir = trial.user_attrs.get(RUN_DIR)
        if run_dir is None:
            used = {t.user_attrs.get(RUN_DIR) for t in trial.study.get_trials(deepcopy=False)}
            run_dir = str(Path(self.sweep_dir) / f"trial_{len(used - {None}):03d}")
            trial.set_user_attr(RUN_DIR, run_dir)
        return Path(run_dir).name

    def _tell(self, study: optuna.Study, trial: Trial, ret: JobReturn) -> None:
        metric = str(self.config.get("optimized_metric"))
        value, reason = failure_reason(ret, metric)
        if reason is not None:
            trial.set_user_attr(FAIL_REASON, reason)
        state = TrialState.FAIL if reason else TrialState.COMPLETE
        try:
            study.tell(trial, state=state, values=None if reason else [value])
        except RuntimeError as error:  # GridSampler stops the study after the last grid point
            if "Study.stop" not in str(error):
                raise
        outcome = f"FAIL {reason}" if reason else f"COMPLETE {metric} {show(metric, value)}"
        run = Path(trial.user_attrs[RUN_DIR]).name
        log.info("%s", self.progress.line(count(study)[0], run, outcome, self._best(study)))

    def _best(self, study: optuna.Study) -> tuple[float, str] | None:
        """(value, run dir name) of the best complete trial so far."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return None
        sign = 1 if self._get_directions()[0] == "minimize" else -1
        best = min(complete, key=lambda t: sign * t.value)
        return best.value, Path(best.user_attrs.get(RUN_DIR, f"trial {best.number}")).name

    def _check_failure_budget(self, study: optuna.Study) -> None:
        finished, failed = count(study)
        if failed > self.max_failure_rate * self.n_trials:
            raise SweepError(
                f"{failed} of {finished} finished trials failed, more than "
                f"max_failure_rate={self.max_failure_rate} of n_trials={self.n_trials} allows; "
                "see the fail_reason of each failed trial (tpbench report) and the runs' logs."
            )

    def _save_results(self, study: optuna.Study) -> None:
        finished, failed = count(study)
        results: dict = {
            "name": "optuna",
            "study": study.study_name,
            "finished": finished,
            "failed": failed,
        }
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if complete and len(self._get_directions()) == 1:
            best = study.best_trial
            results.update(
                best_params=best.params,
                best_value=best.value,
                best_run_dir=best.user_attrs.get(RUN_DIR),
            )
            log.info(
                "Best %s in %s: %s",
                show(str(self.config.get("optimized_metric")), best.value),
                best.user_attrs.get(RUN_DIR),
                best.params,
            )
        OmegaConf.save(
            OmegaConf.create(results), Path(self.sweep_dir) / "optimization_results.yaml"
        )
