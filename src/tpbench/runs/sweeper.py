"""Optuna sweeps that survive being killed: the engine behind `conf/hparams_search/*.yaml`.

hydra-optuna-sweeper runs `n_trials` new trials per invocation, forgets trials a killed sweep left
RUNNING, re-draws the same random configurations after a restart, judges its failure tolerance per
batch, records no reason for a failed trial and cannot prune. `ResumableOptunaSweeperImpl` keeps
its search-space parsing and launching and replaces the loop:

- the study lives in persistent storage (tpbench.runs.study); the sweep runs trials until
  `n_trials` are finished (COMPLETE, PRUNED or FAIL), so the same command started again
  continues where it stopped, and settles what a killed sweep left (`requeue_interrupted`);
- every trial reports its objective after each epoch to the study, and the sweep's pruner
  (`hydra/sweeper/pruner`: none, median, successive_halving, hyperband) stops trials that lag
  (tpbench.runs.pruning); a pruned trial is PRUNED, not FAIL;
- with hydra/launcher=local, `n_jobs` trials run at once as a pool: a new trial starts as soon
  as one ends (a pruned trial frees its slot at once); each trial is its own process with
  `threads` threads, never more threads than cores in all. Other launchers run batches of
  `n_jobs` (Slurm: one job array per batch);
- a trial whose job raised (e.g. DivergedError, a config mistake) or returned a non-finite
  objective is FAIL with user attr `fail_reason`; the sweep stops only when more than
  `max_failure_rate * n_trials` trials failed;
- trial k draws its parameters from an RNG seeded by (seed, k, name), so a resumed or parallel
  sweep draws exactly the configurations an uninterrupted one would.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import GridSampler, RandomSampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.trial import Trial, TrialState

from tpbench.atomic import write_text
from tpbench.errors import ConfigError, TpbenchError
from tpbench.runs import slurm
from tpbench.runs.pruning import PRUNER, pruner_from
from tpbench.runs.relaunch import quote, results_of
from tpbench.runs.storage import COMMAND, FAIL_REASON, RUN_DIR, make_storage, storage_url
from tpbench.runs.study import (
    carry_reports,
    count,
    outcome,
    requeue_interrupted,
)
from tpbench.runs.sweep_progress import Progress, setup_log, show
from tpbench.runs.trial_pool import TrialPool

log = logging.getLogger("tpbench.sweep")  # own handlers: see tpbench.runs.sweep_progress


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


def modern(dist: BaseDistribution) -> BaseDistribution:
    """The plugin builds optuna 2's LogUniform/IntUniform...; the same space in optuna ≥ 3 terms."""
    if isinstance(dist, FloatDistribution):
        return FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return IntDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
    return dist


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    """hydra-optuna-sweeper's sweeper with persistent, resumable, failure-tolerant, prunable and
    parallel trials (single objective: the run's `optimized_metric`)."""

    def __init__(self, pruner=None, **params) -> None:
        super().__init__(**params)  # (Hydra built `pruner`; setup keeps its config instead)

    def setup(self, *, hydra_context, task_function, config) -> None:
        # the sweep dir may use ${hydra:...} (paths.root_dir); Hydra sets this only for jobs
        HydraConfig.instance().set_config(config)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.sweep_dir = str(Path(str(config.hydra.sweep.dir)).absolute())
        self.storage = storage_url(self.storage, self.sweep_dir)
        self.study_name = self.study_name or Path(self.sweep_dir).name
        # hydra/sweeper/pruner as a `_target_` dict (None: none), for the trials to rebuild
        pruner = config.hydra.sweeper.get("pruner")
        self.pruner = OmegaConf.to_container(pruner, resolve=True) if pruner else None
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
        setup_log(self.sweep_dir)

    def sweep(self, arguments: list[str]) -> None:
        in_processes = self._check_parallelism()
        distributions, fixed = self._search_space(arguments)
        study = self._load_study(arguments)
        requeued = requeue_interrupted(study, str(self.config.get("optimized_metric")))
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
        queue = slurm.watch_queue(self.launcher, self.sweep_dir)  # hydra/launcher=slurm
        with TrialPool(self.launcher, self.n_jobs, in_processes) as pool, queue:
            while True:
                while pool.has_room() and count(study)[0] + len(pool.running) < self.n_trials:
                    trial = study.ask()
                    pool.start(trial, self._job(study, trial, distributions, fixed))
                if not pool.running:
                    break
                for trial, ret in pool.finished():
                    self._tell(study, trial, ret)
                self._check_failure_budget(study)
        self._save_results(study)

    def _check_parallelism(self) -> bool:
        """Whether trials run in their own processes; n_jobs of them at once must fit."""
        in_processes = "submitit" in type(self.launcher).__module__
        if self.n_jobs > 1 and not in_processes:
            raise ConfigError(
                f"hydra.sweeper.n_jobs={self.n_jobs} runs trials at once only in their own "
                "processes: add hydra/launcher=local (this machine) or hydra/launcher=slurm."
            )
        if in_processes and "slurm" not in type(self.launcher).__name__.lower():
            cores, threads = len(os.sched_getaffinity(0)), self.config.get("threads")
            if self.n_jobs > 1 and (threads is None or self.n_jobs * int(threads) > cores):
                raise ConfigError(
                    f"hydra.sweeper.n_jobs={self.n_jobs} trials with threads={threads} each "
                    f"would run more threads than this machine's {cores} cores; pass "
                    f"threads={max(cores // self.n_jobs, 1)} (n_jobs x threads ≤ {cores})."
                )
        return in_processes

    def _job(self, study: optuna.Study, trial: Trial, distributions, fixed) -> list[str]:
        """The trial's overrides: its parameters, the sweep dir resolved once, its own trial
        dir, and where it reports its epochs."""
        carry_reports(study, trial)
        (overrides,) = self._configure_trials([trial], distributions, fixed)
        return [
            *overrides,
            f"hydra.sweep.dir={quote(self.sweep_dir)}",
            f"hydra.sweep.subdir={self._run_subdir(trial)}",
            f"+optuna_trial.storage={quote(self.storage)}",
            f"+optuna_trial.study={quote(self.study_name)}",
            f"+optuna_trial.number={trial.number}",
        ]

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
            pruner=pruner_from(self.pruner),
            load_if_exists=True,
        )
        study.set_user_attr(PRUNER, self.pruner)  # the trials judge their epochs with it
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
        state, value, reason = outcome(ret, metric)
        if reason is not None:
            trial.set_user_attr(FAIL_REASON, reason)
        try:
            study.tell(trial, state=state, values=[value] if state == TrialState.COMPLETE else None)
        except RuntimeError as error:  # GridSampler stops the study after the last grid point
            if "Study.stop" not in str(error):
                raise
        said = {
            TrialState.COMPLETE: f"{metric} {show(metric, value)}",
            TrialState.PRUNED: f"{reason}",
            TrialState.FAIL: f"{reason}",
        }[state]
        run = Path(trial.user_attrs[RUN_DIR]).name
        line = self.progress.line(count(study)[0], run, f"{state.name} {said}", self._best(study))
        log.info("%s", line)

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
            "pruned": len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))),
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
        path = Path(self.sweep_dir) / "optimization_results.yaml"
        write_text(path, OmegaConf.to_yaml(OmegaConf.create(results)))
