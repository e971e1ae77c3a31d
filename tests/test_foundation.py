"""End-to-end foundation tests: the user's path through train.py, determinism, resume."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import FAST, ROOT
from tpbench.train import build, train


def test_train_py_bp_on_fake_data_end_to_end(tmp_path):
    """The exact path a user takes: `python train.py ...` learns and reports a summary."""
    result = subprocess.run(
        [sys.executable, "train.py", *FAST, "trainer.max_epochs=3", f"paths.log_dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Built data=FakeDataModule" in result.stderr + result.stdout
    summary = [line for line in (result.stderr + result.stdout).splitlines() if "Done in" in line]
    assert summary and "test err" in summary[0]
    assert list(tmp_path.rglob("metrics.csv"))


def test_bp_learns_fake_data(make_cfg):
    cfg = make_cfg(["trainer.max_epochs=5", "optimized_metric=val/err_best"])
    val_err = train(cfg)
    assert val_err < 0.6  # chance is 0.9


def test_same_seed_same_metrics(make_cfg):
    a = train(make_cfg(["seed=3"]))
    b = train(make_cfg(["seed=3"]))
    c = train(make_cfg(["seed=4"]))
    assert a == b
    assert a != c


def _weights(rule):
    return [p.detach().clone() for p in rule.net.forward_parameters()]


def test_resumed_run_matches_uninterrupted(make_cfg, tmp_path):
    common = ["callbacks=default", "callbacks.progress_bar=null", "test=false", "seed=5"]
    full_cfg = make_cfg([*common, "trainer.max_epochs=4"])
    dm, rule, trainer = build(full_cfg)
    trainer.fit(rule, datamodule=dm)
    full = _weights(rule)

    first_cfg = make_cfg([*common, "trainer.max_epochs=2"])
    first_cfg.paths.output_dir = str(tmp_path / "first")
    first_cfg.callbacks.last_checkpoint.dirpath = str(tmp_path / "first" / "ckpt")
    dm, rule, trainer = build(first_cfg)
    trainer.fit(rule, datamodule=dm)

    resume_cfg = make_cfg([*common, "trainer.max_epochs=4"])
    resume_cfg.callbacks.last_checkpoint.dirpath = str(tmp_path / "resumed" / "ckpt")
    dm, rule, trainer = build(resume_cfg)
    trainer.fit(rule, datamodule=dm, ckpt_path=str(tmp_path / "first" / "ckpt" / "last.ckpt"))
    for a, b in zip(full, _weights(rule), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("data", ["mnist", "cifar10"])
def test_missing_data_is_one_sentence(tmp_path, data):
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            f"data={data}",
            "data.data_dir=/nonexistent",
            f"paths.log_dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "not found in /nonexistent" in line]
    assert len(errors) == 1, output[-2000:]


def test_lr_scheduler_is_stepped_each_epoch(make_cfg):
    cfg = make_cfg(
        [
            "trainer.max_epochs=3",
            "+algo.scheduler._target_=torch.optim.lr_scheduler.StepLR",
            "+algo.scheduler._partial_=true",
            "+algo.scheduler.step_size=1",
            "+algo.scheduler.gamma=0.5",
        ]
    )
    dm, rule, trainer = build(cfg)
    trainer.fit(rule, datamodule=dm)
    lr = cfg.algo.optimizer.lr
    assert rule.forward_optimizer.param_groups[0]["lr"] == pytest.approx(lr * 0.5**3)


def test_diverging_run_stops_with_one_sentence_and_keeps_checkpoints(make_cfg, tmp_path):
    from tpbench.algorithms.backprop import Backprop
    from tpbench.errors import DivergedError

    cfg = make_cfg(["callbacks=default", "callbacks.progress_bar=null", "trainer.max_epochs=50"])
    original = Backprop.task_loss
    try:
        # finite for the first epoch (so a checkpoint exists), then NaN
        Backprop.task_loss = lambda self, logits, y: (
            original(self, logits, y) * (float("nan") if self.current_epoch >= 1 else 1.0)
        )
        with pytest.raises(DivergedError, match="became nan at epoch 1"):
            train(cfg)
    finally:
        Backprop.task_loss = original
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_a_net_at_chance_level_is_named_once_and_a_learning_one_is_not(make_cfg, caplog):
    """lr = 0 leaves the net at its (random, chance-level) start: one warning that says what to
    try, however many epochs; a net that learns gets none."""
    caplog.set_level("WARNING", logger="tpbench")
    train(make_cfg(["trainer.max_epochs=3", "algo.optimizer.lr=0"]))
    warnings = [r.getMessage() for r in caplog.records if "chance level" in r.getMessage()]
    assert len(warnings) == 1 and "at epoch 0" in warnings[0]
    assert "lower algo.optimizer.lr" in warnings[0]
    for learning in (
        ["trainer.max_epochs=3"],
        # feedback-only warm-up epochs leave the net at chance on purpose: no warning for them
        ["algo=dtp", "algo.schedule.warmup_epochs=2", "trainer.max_epochs=4"],
    ):
        caplog.clear()
        train(make_cfg(learning))
        assert not [r for r in caplog.records if "chance level" in r.getMessage()], learning


def test_rerun_of_a_finished_run_with_ckpt_auto_returns_its_metric(make_cfg, tmp_path):
    """A sweep trial killed after its last checkpoint (e.g. while testing) is re-run with
    ckpt_path=auto: nothing is left to train, and the metric comes from the checkpoint."""
    overrides = ["callbacks=default", "callbacks.progress_bar=null", "ckpt_path=auto"]
    first = train(make_cfg(overrides))
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert train(make_cfg(overrides)) == first


def test_optimizer_option_its_class_lacks_is_one_sentence(make_cfg):
    """The rule configs set Adam's `fused: true`; swapping in an optimizer without it says how."""
    from tpbench.errors import ConfigError

    cfg = make_cfg(["algo.optimizer._target_=torch.optim.RMSprop"])
    with pytest.raises(ConfigError, match=r"algo.optimizer cannot be built: .*'fused'.*~algo"):
        train(cfg)
    without_fused = ["algo.optimizer._target_=torch.optim.RMSprop", "~algo.optimizer.fused"]
    assert train(make_cfg(without_fused)) < 0.5  # validation error; chance is 0.9
