"""The sweep's console line, which restarts it accepts, and Optuna's dataframe (no training)."""

from __future__ import annotations

import optuna

from tpbench.runs.relaunch import results_of
from tpbench.runs.sweep_progress import Progress, show


def test_progress_line_counts_finished_trials_and_names_the_best():
    progress = Progress(n_trials=60, metric="val/err_best")
    line = progress.line(7, "trial_006", "COMPLETE val/err_best 2.31 %", (0.0205, "trial_001"))
    assert line.startswith("trial 7/60 trial_006 COMPLETE val/err_best 2.31 % | best 2.05 %")
    assert "(trial_001) |" in line and "elapsed, ~" in line and line.endswith("left")
    assert "no complete trial yet" in progress.line(60, "trial_059", "FAIL x", None)
    assert progress.line(60, "trial_059", "FAIL x", None).endswith("done")
    assert show("val/err_best", 0.0259) == "2.59 %" and show("val/loss", 0.5) == "0.5"


def test_restart_may_change_threads_loggers_and_the_progress_bar_only():
    started = ["data=mnist", "threads=1", "algo.optimizer.lr=interval(0.1,1)"]
    assert results_of(started) == results_of(
        ["threads=4", "logger=[csv,wandb]", "data=mnist", "trainer.enable_progress_bar=true",
         "algo.optimizer.lr=interval(0.1,1)"]
    )  # fmt: skip
    assert results_of(started) != results_of(["data=mnist", "algo.optimizer.lr=interval(0.1,2)"])
    assert results_of(started) != results_of([*started, "trainer.max_epochs=3"])


def test_trials_dataframe_works():
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert list(study.trials_dataframe()["params_x"]) == [t.params["x"] for t in study.trials]
