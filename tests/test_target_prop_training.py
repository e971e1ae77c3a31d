"""The target-propagation rules through the real config and trainer, on fake data: every rule
learns (TP only has to run), schedules train what they should, FW-DTP's G never changes."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from tpbench.errors import ConfigError
from tpbench.train import build, train

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny nets, one thread


SMALL = [
    "net.hidden=[64,64,64]",
    "data.train_size=640",
    "data.val_size=200",
    "data.test_size=200",
    "test=false",
]
TINY = ["data.train_size=256", "data.val_size=64"]
FAST_LR = ["algo.optimizer.lr=3e-3"]
SDTP_FAST = ["algo.feedback_optimizer.lr=3e-3", "trainer.max_epochs=6"]


@pytest.mark.parametrize(
    "algo,extra",
    [
        ("dtp", []),
        ("dtp_alt", ["trainer.max_epochs=6"]),
        ("sdtp", SDTP_FAST),
        ("aosdtp", [*SDTP_FAST, "algo.top_target.size=64"]),
        ("drl", []),
        ("ldrl", ["algo.schedule.feedback_iterations=2"]),
        ("fwdtp", []),
    ],
)
def test_rule_learns_fake_data(make_cfg, algo, extra):
    val_err = train(make_cfg([f"algo={algo}", *SMALL, *FAST_LR, "trainer.max_epochs=4", *extra]))
    assert val_err < 0.5  # chance is 0.9


def test_vanilla_tp_runs(make_cfg):
    val_err = train(make_cfg(["algo=tp", *SMALL, "trainer.max_epochs=1"]))
    assert 0 <= val_err <= 1


class Snapshots(L.Callback):
    """Forward and feedback parameters at the start and end of every epoch."""

    def __init__(self):
        self.start, self.end = [], []

    @staticmethod
    def _take(rule):
        return (
            [p.detach().clone() for p in rule.net.forward_parameters()],
            [p.detach().clone() for p in rule.feedback_parameters()],
        )

    def on_train_epoch_start(self, trainer, rule):
        self.start.append(self._take(rule))

    def on_train_epoch_end(self, trainer, rule):
        self.end.append(self._take(rule))


def changed(before, after):
    return [not torch.equal(a, b) for a, b in zip(before, after, strict=True)]


def fit_with_snapshots(cfg):
    datamodule, rule, trainer = build(cfg)
    snapshots = Snapshots()
    trainer.callbacks.append(snapshots)
    trainer.fit(rule, datamodule=datamodule)
    return rule, trainer, snapshots


def test_alternating_trains_inverses_then_forward_weights(make_cfg):
    cfg = make_cfg(["algo=dtp_alt", *SMALL, "trainer.max_epochs=3", *TINY])
    _, _, snaps = fit_with_snapshots(cfg)
    for epoch, (forward_moves, feedback_moves) in enumerate(
        [(False, True), (True, False), (False, True)]
    ):
        (fw0, fb0), (fw1, fb1) = snaps.start[epoch], snaps.end[epoch]
        assert all(changed(fw0, fw1)) if forward_moves else not any(changed(fw0, fw1))
        assert all(changed(fb0, fb1)) if feedback_moves else not any(changed(fb0, fb1))


def test_warmup_trains_only_inverses_then_both(make_cfg):
    cfg = make_cfg(
        [
            "algo=ldrl",
            *SMALL,
            "trainer.max_epochs=2",
            *TINY,
            "algo.schedule.warmup_epochs=1",
            "algo.schedule.feedback_iterations=1",
        ]
    )
    _, trainer, snaps = fit_with_snapshots(cfg)
    (fw0, fb0), (fw1, fb1) = snaps.start[0], snaps.end[0]
    assert not any(changed(fw0, fw1)) and all(changed(fb0, fb1))
    (fw0, fb0), (fw1, fb1) = snaps.start[1], snaps.end[1]
    assert all(changed(fw0, fw1)) and all(changed(fb0, fb1))
    logged = set(trainer.callback_metrics)
    assert {"fb/loss/L2", "fb/loss/L3", "fb/loss/L4"} <= logged  # G_2..G_L, paper numbering


def test_fwdtp_feedback_never_changes(make_cfg):
    cfg = make_cfg(["algo=fwdtp", *SMALL, "trainer.max_epochs=2", *TINY])
    rule, _, snaps = fit_with_snapshots(cfg)
    assert rule.feedback_optimizer is None
    (fw0, fb0), (fw1, fb1) = snaps.start[0], snaps.end[-1]
    assert fb0 and not any(changed(fb0, fb1)) and all(changed(fw0, fw1))
    for i in rule.inverse_ids:  # B ~ U(−0.01, 0.01), no bias
        g = rule.net[i].feedback["inverse"]
        assert g.bias is None and g.weight.abs().max() <= 0.01


def test_per_layer_feedback_lrs_become_param_groups(make_cfg):
    cfg = make_cfg(["algo=ldrl", *SMALL, "algo.feedback_lr=[1e-3,2e-3,3e-3]"])
    _, rule, trainer = build(cfg)
    groups = rule.configure_optimizers()[1].param_groups
    assert [g["lr"] for g in groups] == [1e-3, 2e-3, 3e-3]


def test_config_mistakes_surface_as_one_sentence_config_errors(make_cfg):
    """Raised inside hydra's instantiate, they reach the entry point unwrapped (no traceback)."""
    with pytest.raises(ConfigError, match="expected 5"):  # 6 hidden + output: G_2..G_6 for DTP
        build(make_cfg(["algo=dtp", "algo.inverse_loss.sigma=[0.1,0.2]"]))
    with pytest.raises(
        ConfigError, match="'dtp' with top_target=gradient_step needs a net of at least"
    ):
        build(make_cfg(["algo=dtp", "net.hidden=[32]"]))


@pytest.mark.parametrize(
    "algo,net,max_err",
    [
        ("dtp", ["net=bartunov_mnist_lc", "net.blocks=[[3,8,2],[3,8,2]]", "net.hidden=[32]"], 0.5),
        (
            "fwdtp",
            ["net=bartunov_mnist_conv", "net.blocks=[[3,8,2],[3,8,2]]", "net.hidden=[32]"],
            0.8,
        ),
        # pooled conv blocks with ELU: even BP needs more than 3 epochs here; it must run
        (
            "ldrl",
            ["net=ernoult_vgg", "net.blocks=[[3,8],[3,8]]", "algo.schedule.feedback_iterations=1"],
            1.0,
        ),
    ],
)
def test_rules_train_spatial_nets(make_cfg, algo, net, max_err):
    """Locally-connected, conv and pooled-conv (VGG-style) nets train end to end."""
    val_err = train(make_cfg([f"algo={algo}", *net, *SMALL, *FAST_LR, "trainer.max_epochs=4"]))
    assert val_err < max_err  # chance is 0.9
