"""Sweeps: persistent storage, a kill and restart, a diverging trial, the launchers (fake data).

The end-to-end tests start `python train.py -m ...` as a user does; each start costs the torch and
Lightning imports, so trials are tiny (a 32-unit net, 256 training samples, 2 epochs).
"""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from tests.conftest import ROOT, compose_train
from tpbench.cli import main as cli_main
from tpbench.runs.pruning import Pruned
from tpbench.runs.reader import read_metrics
from tpbench.runs.relaunch import best_trial_dir, resume_arguments
from tpbench.runs.storage import FAIL_REASON, INTERRUPTED, RUN_DIR
from tpbench.runs.study import (
    count,
    is_finished,
    outcome,
    requeue_interrupted,
)
from tpbench.runs.sweeper import TrialSeededRandomSampler
from tpbench.train import main

RESULTS = "optimization_results.yaml"

TINY = [
    "data=fake",
    "data.train_size=256",
    "data.val_size=64",
    "data.test_size=64",
    "net.hidden=[32]",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "threads=1",
]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def sweep_command(log_dir: Path, n_trials: int, *extra: str) -> list[str]:
    return [
        sys.executable, "train.py", "-m", "hparams_search=bp_random", *TINY,
        f"paths.log_dir={log_dir}", f"hydra.sweeper.n_trials={n_trials}", *extra,
    ]  # fmt: skip


def load_study(log_dir: Path) -> optuna.Study:
    (db,) = log_dir.rglob("optuna.db")
    return optuna.load_study(study_name=None, storage=f"sqlite:///{db}")


def trial_states(log_dir: Path) -> list[str]:
    """States straight from the SQLite file (cheap enough to poll while the sweep writes it)."""
    try:
        (db,) = log_dir.rglob("optuna.db")
        with sqlite3.connect(db, timeout=5) as connection:
            return [row[0] for row in connection.execute("SELECT state FROM trials")]
    except (ValueError, sqlite3.Error):  # no file or no table yet
        return []


def killable(log_dir: Path) -> bool:
    """Trials 0 and 1 finished (the second diverged) and a later one running in its own run dir."""
    states = trial_states(log_dir)
    running = f"trial_{len(states) - 1:03d}/.hydra/config.yaml"
    return (
        len(states) >= 3
        and states[:2] == ["COMPLETE", "FAIL"]
        and states[-1] == "RUNNING"
        and any(log_dir.rglob(running))
    )


def start_sweep(command: list[str]) -> subprocess.Popen:
    """The sweep as its own silent process in its own session (a kill reaches it alone)."""
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def run_in_process(command: list[str]) -> None:
    """`python train.py -m ...` inside this process (saves the torch/Lightning start-up)."""
    GlobalHydra.instance().clear()
    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = command[1:]
    try:
        main()
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)


def test_sweep_killed_midway_restarts_and_ends_with_exactly_n_trials(tmp_path):
    # sampler seed 2: trial 1 draws lr=inf and diverges (NaN loss); the others learn
    command = sweep_command(
        tmp_path, 4, "hydra.sweeper.sampler.seed=2", "algo.optimizer.lr=choice(0.001,inf)"
    )
    first = start_sweep(command)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if killable(tmp_path):
            first.send_signal(signal.SIGSTOP)  # frozen: is a trial still running? (no race)
            if killable(tmp_path):
                break
            first.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # like a lost node: no clean-up at all
    first.wait()
    states = trial_states(tmp_path)
    assert states[:2] == ["COMPLETE", "FAIL"] and states[-1] == "RUNNING" and len(states) <= 4

    run_in_process(command)  # the same command again
    trials = load_study(tmp_path).trials
    finished = [t for t in trials if is_finished(t)]
    assert len(finished) == 4
    diverged = [t for t in finished if t.state == TrialState.FAIL]
    assert diverged[0].number == 1  # and the sweep went on
    for trial in diverged:
        assert "DivergedError" in trial.user_attrs[FAIL_REASON]
        assert math.isinf(trial.params["algo.optimizer.lr"])
    (stale,) = [t for t in trials if INTERRUPTED in t.user_attrs]
    (rerun,) = [t for t in finished if t.user_attrs[RUN_DIR] == stale.user_attrs[RUN_DIR]]
    assert rerun.params == stale.params  # the interrupted configuration ran again, in its dir
    for trial in finished:
        assert (Path(trial.user_attrs[RUN_DIR]) / "csv" / "metrics.csv").is_file()
    sweep_dir = Path(stale.user_attrs[RUN_DIR]).parent
    assert (sweep_dir / "optimization_results.yaml").is_file()

    # Bartunov's ImageNet protocol in small: only the best trial goes on, from its checkpoint
    train_args, _ = resume_arguments(best_trial_dir(sweep_dir), ["trainer.max_epochs=3"])
    run_in_process(["train.py", *train_args])
    best = min((t for t in finished if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    run_dir = Path(best.user_attrs[RUN_DIR])
    assert set(read_metrics(run_dir)["val/err"]) == {0, 1, 2}  # the sweep's 2 epochs + 1


@pytest.mark.slow  # ~50 s here: each submitit job is a new process importing torch + Lightning
def test_local_launcher_runs_two_jobs_and_a_diverging_trial_fails_with_its_reason(tmp_path):
    # with sampler seed 1, trial 0 draws lr=0.001 and trial 1 lr=inf (NaN loss after one step)
    command = sweep_command(
        tmp_path, 2, "hydra/launcher=local", "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.sampler.seed=1", "algo.optimizer.lr=choice(0.001,inf)",
    )  # fmt: skip
    run_in_process(command)
    trials = sorted(load_study(tmp_path).trials, key=lambda t: t.number)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert "DivergedError" in trials[1].user_attrs[FAIL_REASON]
    assert math.isinf(trials[1].params["algo.optimizer.lr"])
    sweep_dir = Path(trials[0].user_attrs[RUN_DIR]).parent
    assert len(list((sweep_dir / ".submitit").iterdir())) >= 2  # one submitit job per trial


def test_slurm_launcher_composes_with_partition_gpus_cpus_time_and_array_parallelism(tmp_path):
    cfg = compose_train([
        "hparams_search=bp_random", "hydra/launcher=slurm", f"paths.log_dir={tmp_path}",
        "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.cpus_per_task=6", "hydra.launcher.timeout_min=90",
        "hydra.launcher.array_parallelism=7",
    ], hydra_config=True)  # fmt: skip
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.cpus_per_task) == ("gpu", 2, 6)
    assert (launcher.timeout_min, launcher.array_parallelism) == (90, 7)
    assert launcher.max_num_timeout > 0  # timed-out trials are requeued
    assert str(launcher.submitit_folder).startswith(str(tmp_path))
    assert cfg.ckpt_path == "auto"  # a requeued trial resumes from its last checkpoint
    assert cfg.hydra.sweeper._target_.endswith("ResumableOptunaSweeper")
    instantiate(launcher)  # the plugin accepts every key


def test_sampler_draws_depend_only_on_seed_and_trial_number():
    space = {"lr": FloatDistribution(1e-5, 3e-4, log=True), "eps": CategoricalDistribution([1, 2])}

    def draws(seed: int, n: int) -> list[dict]:
        study = optuna.create_study(sampler=TrialSeededRandomSampler(seed))
        trials = [study.ask(space) for _ in range(n)]  # asked at once, as with parallel jobs
        return [t.params for t in trials]

    assert draws(3, 4) == draws(3, 4)
    assert draws(3, 4)[2] != draws(3, 4)[1]
    assert draws(3, 4) != draws(4, 4)


def test_requeue_marks_stale_trials_and_counts_only_finished_ones():
    study = optuna.create_study()
    space = {"x": FloatDistribution(0, 1)}
    done, failed, stale = (study.ask(space) for _ in range(3))
    study.tell(done, 1.0)
    study.tell(failed, state=TrialState.FAIL)
    stale.set_user_attr(RUN_DIR, "/sweep/trial_002")
    assert requeue_interrupted(study, "val/err_best") == 1
    assert count(study) == (2, 1)
    retry = study.ask(space)
    assert retry.params == stale.params and retry.user_attrs[RUN_DIR] == "/sweep/trial_002"
    assert INTERRUPTED in study.trials[stale.number].user_attrs


@pytest.mark.parametrize(
    ("value", "state", "expected"),
    [
        (0.25, TrialState.COMPLETE, None),
        (math.nan, TrialState.FAIL, "is nan"),
        (RuntimeError("boom\n  cause"), TrialState.FAIL, "RuntimeError: boom cause"),
        (Pruned("pruned after 2 training epochs"), TrialState.PRUNED, "after 2 training"),
    ],
)
def test_outcome(value, state, expected):
    failed = isinstance(value, Exception)
    ret = JobReturn(status=JobStatus.FAILED if failed else JobStatus.COMPLETED)
    ret._return_value = value
    told, _, reason = outcome(ret, "val/err_best")
    assert told == state
    assert reason == expected if expected is None else expected in reason


def test_best_prints_the_best_trials_values_as_overrides(tmp_path, capsys):
    results = {"best_params": {"algo.optimizer.lr": 0.4, "++algo.optimizer.betas": "[0.9, 0.99]"}}
    OmegaConf.save(OmegaConf.create({**results, "best_run_dir": "x"}), tmp_path / RESULTS)
    assert cli_main(["best", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "algo.optimizer.lr=0.4 ++algo.optimizer.betas=[0.9,0.99]\n"
    (tmp_path / RESULTS).write_text("name: optuna\nfinished: 3\n")  # every trial failed
    with pytest.raises(SystemExit, match="1"):
        cli_main(["best", str(tmp_path)])
    assert "has no best trial" in capsys.readouterr().err
