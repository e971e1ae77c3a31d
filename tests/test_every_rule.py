"""The generic suite every rule of conf/algo/ gets without writing a test: its config composes and
builds, it learns fake data, its training step never waits for the device, resuming from a
checkpoint continues exactly like an uninterrupted run, and (tests/test_ddp.py) 2-process DDP
equals one process on the concatenated batch. A new rule (one module + one YAML) is picked up by
all of them; the alternating-schedule variants and DDP beyond bp/dtp run with `-m slow`.
"""

from __future__ import annotations

import pytest
import torch

from tests.test_ddp import run_config
from tests.test_fastpath import WatchSteps
from tpbench.algorithms.base import LearningRule
from tpbench.catalog import parallel_rule_names, rule_names
from tpbench.train import build, train

EVERY_RULE = [
    name if name in parallel_rule_names() else pytest.param(name, marks=pytest.mark.slow)
    for name in rule_names()
]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny nets, one thread


def learning_rates(cfg) -> list[str]:
    """One learning rate for every rule (3e-3, forward and feedback): the test asks whether a
    rule learns, not how fast its defaults are."""
    fast = ["algo.optimizer.lr=3e-3"]
    return fast + (
        ["algo.feedback_optimizer.lr=3e-3"] if cfg.algo.get("feedback_optimizer") else []
    )


@pytest.mark.parametrize("algo", rule_names())
def test_config_composes_and_builds_a_rule(algo, make_cfg):
    _, rule, _ = build(make_cfg([f"algo={algo}", "net=fc", "net.hidden=[16,16,16]"]))
    assert isinstance(rule, LearningRule) and rule.automatic_optimization is False


@pytest.mark.parametrize("algo", EVERY_RULE)
def test_rule_learns_fake_data(algo, make_cfg):
    """4 classes (chance: 0.75 error), a 3-hidden-layer net, 6 epochs."""
    small = [f"algo={algo}", "net=fc", "net.hidden=[64,64,64]", "data.shape=[1,8,8]",
             "data.num_classes=4", "data.train_size=640", "data.val_size=200", "test=false",
             "trainer.max_epochs=6", "logger=none"]  # fmt: skip
    val_err = train(make_cfg([*small, *learning_rates(make_cfg(small))]))
    assert val_err < 0.5


@pytest.mark.parametrize("algo", EVERY_RULE)
def test_training_step_never_waits_for_the_device(algo, tmp_path):
    """No op of a training step makes the host wait for a device value (tests/test_fastpath.py:
    HostReadLog); SGD, as Adam's step counters are host tensors on a GPU."""
    cfg = run_config(algo, "cpu", 16, tmp_path)
    datamodule, rule, trainer = build(cfg)
    watch = WatchSteps()
    trainer.callbacks.append(watch)
    trainer.fit(rule, datamodule=datamodule)
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed > 0
    assert watch.reads.seen == [], f"{algo} reads device values on the host: {watch.reads.seen}"


def fit(algo: str, epochs: int, out, ckpt_path=None, save_to=None) -> dict:
    """The net's state after training `epochs` epochs (resumed from `ckpt_path` if given), with
    the rule's own noise (σ > 0)."""
    cfg = run_config(algo, "cpu", 16, out, noise=True)
    cfg.trainer.max_epochs = epochs
    datamodule, rule, trainer = build(cfg)
    trainer.fit(rule, datamodule=datamodule, ckpt_path=ckpt_path)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    return {k: v.detach().clone() for k, v in rule.net.state_dict().items()}


@pytest.mark.parametrize("algo", EVERY_RULE)
def test_resume_equals_an_uninterrupted_run(algo, tmp_path):
    """3 epochs straight == 2 epochs, a checkpoint, and a resumed third epoch: bit for bit, with
    each rule's noise on (the checkpoint carries the random generators' states; for alternating
    schedules epoch 3 is a feedback epoch)."""
    first = 1 if algo in parallel_rule_names() else 2  # an alternating rule's first 2 epochs
    straight = fit(algo, first + 1, tmp_path / "straight")
    fit(algo, first, tmp_path / "first", save_to=tmp_path / "first.ckpt")
    resumed = fit(algo, first + 1, tmp_path / "resumed", ckpt_path=tmp_path / "first.ckpt")
    for name, weight in straight.items():
        assert torch.equal(resumed[name], weight), f"{algo}: {name} differs after resuming"
