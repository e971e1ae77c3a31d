"""Multi-fidelity and parallel sweeps: trials report every epoch, pruned trials are PRUNED (not
FAIL), a resumed trial reports and is judged once per epoch, parallel trials run as a pool that
survives being killed, and trials that cannot even start are FAIL with their reason."""

from __future__ import annotations

import csv
import signal
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tests.test_sweeps import (
    load_study,
    run_in_process,
    start_sweep,
    sweep_command,
    trial_states,
)
from tpbench.runs.pruning import PRUNER, Pruned, ReportToStudy
from tpbench.runs.state import RunState, read_state
from tpbench.runs.storage import FAIL_REASON, INTERRUPTED, RUN_DIR
from tpbench.runs.study import (
    carry_reports,
    count,
    requeue_interrupted,
)

# identical trials that learn, or (lr 0) stay at chance and are pruned
LEARNS_OR_NOT = [
    "algo.optimizer.lr=choice(0.003,0.0)",
    "++algo.optimizer.betas=[0.9,0.999]",
    "++algo.optimizer.eps=1e-8",
]
MEDIAN = [
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "hydra.sweeper.pruner.n_warmup_steps=0",
]


def test_a_pruned_sweep_reports_every_epoch_and_prunes_trials_that_lag(tmp_path):
    command = sweep_command(
        tmp_path, 5, *LEARNS_OR_NOT, *MEDIAN, "trainer.max_epochs=3",
        "data.train_size=512", "hydra.sweeper.sampler.seed=3",
    )  # fmt: skip
    run_in_process(command)
    trials = load_study(tmp_path).trials
    by_lr = {lr: [t for t in trials if t.params["algo.optimizer.lr"] == lr] for lr in (0.003, 0)}
    assert by_lr[0.003] and by_lr[0]  # both kinds were drawn
    for trial in by_lr[0.003]:  # learns: full budget, one report per epoch, value = last one
        assert trial.state == TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == [1, 2, 3]
        assert trial.value == trial.intermediate_values[3]
    pruned = [t for t in by_lr[0] if t.number > by_lr[0.003][0].number]
    assert pruned and all(t.state == TrialState.PRUNED for t in pruned)
    for trial in pruned:
        assert "lags the other trials (MedianPruner)" in trial.user_attrs[FAIL_REASON]
        assert read_state(Path(trial.user_attrs[RUN_DIR]))[0] == "pruned"
    assert count(load_study(tmp_path)) == (5, 0)  # pruned trials are finished, not failed
    (log,) = tmp_path.rglob("sweep.log")
    assert "PRUNED after 1 training epoch" in log.read_text()


class RecordingPruner(optuna.pruners.BasePruner):
    """Prunes at every step it is asked about, and remembers which steps those were."""

    asked: list[int] = []

    def prune(self, study, trial) -> bool:
        RecordingPruner.asked.append(trial.last_step)
        return trial.last_step >= 4


def test_a_resumed_trial_reports_and_is_judged_only_for_new_epochs(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    study.set_user_attr(PRUNER, {"_target_": f"{__name__}.RecordingPruner"})
    trial = study.ask({"x": FloatDistribution(0, 1)})
    trial.report(0.5, 1)  # epochs 1 and 2 reported before the job was requeued
    trial.report(0.4, 2)
    RecordingPruner.asked = []
    callback = ReportToStudy(storage, "s", trial.number, "val/err_best")
    module = SimpleNamespace(trains_forward_weights=lambda: True, forward_epochs=lambda e: e + 1)
    for epoch, value in ((1, 0.375), (2, 0.25)):  # the resumed run redoes epoch 2 (0-based 1)
        trainer = SimpleNamespace(
            sanity_checking=False,
            is_global_zero=True,
            strategy=SimpleNamespace(broadcast=lambda verdict, src: verdict),
            current_epoch=epoch,
            callback_metrics={"val/err_best": torch.tensor(value)},
        )
        callback.on_train_epoch_end(trainer, module)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.4, 3: 0.25}
    assert RecordingPruner.asked == [3]  # epoch 2 was judged before the requeue
    trainer.current_epoch = 3
    trainer.callback_metrics = {"val/err_best": torch.tensor(0.2)}
    with pytest.raises(Pruned, match="after 4 training epochs: val/err_best 20.00 %"):
        callback.on_train_epoch_end(trainer, module)
    assert RecordingPruner.asked == [3, 4]


def test_requeue_carries_the_reports_and_settles_runs_that_ended_pruned(tmp_path):
    study = optuna.create_study()
    space = {"x": FloatDistribution(0, 1)}
    killed, pruned = study.ask(space), study.ask(space)
    for trial, name in ((killed, "trial_000"), (pruned, "trial_001")):
        trial.set_user_attr(RUN_DIR, str(tmp_path / name))
        trial.report(0.5, 1)
        RunState(tmp_path / name).start()  # this process: alive, so mark both ended first
    RunState(tmp_path / "trial_000").end("interrupted", "SIGTERM")
    RunState(tmp_path / "trial_001").end("pruned", "after 1 training epoch: lags")
    assert requeue_interrupted(study, "val/err_best") == 1
    assert study.trials[pruned.number].state == TrialState.PRUNED
    assert INTERRUPTED in study.trials[killed.number].user_attrs
    retry = study.ask(space)
    carry_reports(study, retry)
    assert retry.params == killed.params
    assert study.trials[retry.number].intermediate_values == {1: 0.5}


def test_a_trial_that_cannot_compose_is_fail_with_its_reason_and_not_rerun(tmp_path):
    # algo.feedback exists under fa, not under bp: the command-line check (which composes the
    # first option of a sweep) passes it, and each bp trial fails as it composes its config (a
    # key or value no trial can take is refused before the sweep starts: tests/test_overrides.py)
    command = sweep_command(
        tmp_path, 4, "algo=fa,bp", "algo.feedback=usf,frsf", "hydra.sweeper.max_failure_rate=1.0"
    )
    run_in_process(command)
    trials = load_study(tmp_path).trials
    assert len(trials) == 4 and {t.params["algo"] for t in trials} == {"fa", "bp"}
    for trial in trials:
        failed = trial.params["algo"] == "bp"
        assert (trial.state == TrialState.FAIL) == failed
        assert not failed or "algo.feedback" in trial.user_attrs[FAIL_REASON]
    run_in_process(command)  # the same command again: nothing left to run
    assert len(load_study(tmp_path).trials) == 4


@pytest.mark.parametrize(
    ("extra", "sentence"),
    [
        (["hydra.sweeper.n_jobs=2"], "only in their own processes: add hydra/launcher=local"),
        (
            ["hydra/launcher=local", "hydra.sweeper.n_jobs=2", "threads=64"],
            "more threads than this machine's",
        ),
    ],
)
def test_parallel_trials_need_processes_and_must_fit_the_cores(tmp_path, capsys, extra, sentence):
    with pytest.raises(SystemExit, match="1"):
        run_in_process(sweep_command(tmp_path, 2, *extra))
    assert sentence in capsys.readouterr().err
    assert not list(tmp_path.rglob("trial_000"))  # refused before any trial started


def epochs_logged(run_dir: Path) -> Counter:
    """How often each epoch's validation error was written (twice: a trial trained twice)."""
    with (run_dir / "csv" / "metrics.csv").open(newline="") as file:
        return Counter(int(row["epoch"]) for row in csv.DictReader(file) if row.get("val/err"))


@pytest.mark.slow  # ~2 min: every trial is a process importing torch and Lightning
def test_parallel_sweep_killed_and_restarted_ends_with_n_trials_none_run_twice(tmp_path):
    command = sweep_command(
        tmp_path, 4, "hydra/launcher=local", "hydra.sweeper.n_jobs=2",
        "trainer.max_epochs=30", "data.train_size=4096",
    )  # fmt: skip
    first = start_sweep(command)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        if trial_states(tmp_path).count("RUNNING") == 2 and any(tmp_path.rglob("last.ckpt")):
            break
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # the sweeper only: its trial processes go on
    first.wait()
    assert trial_states(tmp_path).count("RUNNING") == 2

    run_in_process(command)  # stops the left-over trial processes, then resumes their trials
    (log,) = tmp_path.rglob("sweep.log")
    assert log.read_text().count("was still running as process") == 2
    study = load_study(tmp_path)
    finished = [t for t in study.trials if INTERRUPTED not in t.user_attrs]
    assert count(study) == (4, 0) and len(finished) == 4
    assert all(t.state == TrialState.COMPLETE for t in finished)
    run_dirs = [Path(t.user_attrs[RUN_DIR]) for t in finished]
    assert len(set(run_dirs)) == 4  # a re-run continued in its configuration's directory
    for run_dir in run_dirs:  # each trained each epoch once, in one process at a time
        assert epochs_logged(run_dir) == Counter(range(30))
        assert read_state(run_dir)[0] == "finished"
        assert (run_dir / "train.log").read_text().count("Done in") == 1
