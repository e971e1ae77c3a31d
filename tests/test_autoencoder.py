"""The reconstruction task (Bartunov §5.5 autoencoder): its loss, DTP's top target under it, BP,
DTP and SDTP reducing the reconstruction error on fake data, and the presets."""

from __future__ import annotations

import pytest
import torch

from tpbench.algorithms.tasks import make_task
from tpbench.errors import ConfigError
from tpbench.train import build, train

RECON = ["net=bartunov_mnist_autoencoder", "+algo.task=reconstruction"]
SMALL = [
    "data.shape=[1,4,4]",
    "data.train_size=320",
    "data.val_size=64",
    "data.test_size=128",
    "net.hidden=[32,16,32]",
    "test=false",
]


def test_reconstruction_loss_is_half_squared_distance():
    task, out, x = make_task("reconstruction"), torch.randn(5, 16), torch.randn(5, 1, 4, 4)
    target = task.target(x, torch.zeros(5, dtype=torch.long))
    by_hand = sum(0.5 * ((out[n] - x[n].flatten()) ** 2).sum() for n in range(5)) / 5
    assert torch.allclose(task.loss(out, target), by_hand)
    assert torch.equal(task.argmin(out, target), x.flatten(1))  # SDTP's t_L = x


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="regression"):
        make_task("regression")


def test_dtp_top_target_is_a_gradient_step_on_the_reconstruction_error(make_cfg):
    _, rule, _ = build(make_cfg(["algo=dtp", *RECON, *SMALL]))
    x = torch.randn(6, 1, 4, 4)
    target = rule.task.target(x, None)  # (6, 16)
    hs = rule.net.forward_all(x, detach=True)
    t = rule.compute_targets(x, target, hs)[-2]
    h = hs[-2].detach().requires_grad_(True)
    per_sample_sum = 0.5 * (rule.net[-1](h) - target).pow(2).sum()  # Σ_n ℓ_n
    (grad,) = torch.autograd.grad(per_sample_sum, h)  # row n: ∂ℓ_n/∂h_{L-1,n}
    assert torch.allclose(t, hs[-2] - rule.top_target.alpha * grad, atol=1e-6)


def test_aosdtp_refuses_reconstruction(make_cfg):
    with pytest.raises(ConfigError, match="aux_label"):
        build(make_cfg(["algo=aosdtp", *RECON, *SMALL]))


def initial_val_error(cfg) -> float:
    datamodule, rule, _ = build(cfg)
    datamodule.setup("fit")
    errors = [
        rule.task.loss(rule(x), rule.task.target(x, y)) * len(x)
        for x, y in datamodule.val_dataloader()
    ]
    return float(sum(errors)) / cfg.data.val_size


@pytest.mark.parametrize(
    "algo,extra",
    [
        ("bp", []),
        ("dtp", []),
        ("sdtp", ["algo.feedback_optimizer.lr=3e-3", "trainer.max_epochs=6"]),
    ],
)
def test_rule_reduces_reconstruction_error(make_cfg, algo, extra):
    overrides = [f"algo={algo}", *RECON, *SMALL, "algo.optimizer.lr=3e-3"]
    before = initial_val_error(make_cfg(overrides))  # the same seed: the same initial weights
    after = train(make_cfg([*overrides, "trainer.max_epochs=3", *extra]))  # val/err_best
    assert after < 0.85 * before, (before, after)  # SDTP underfits (§5.5)


@pytest.mark.parametrize("rule", ["bp", "dtp", "sdtp"])
def test_presets_compose_and_build(make_cfg, rule):
    name = f"bartunov_mnist_autoencoder_{rule}"
    cfg = make_cfg([f"experiment={name}", "logger=none", "callbacks=none"], fast=False)
    assert (cfg.task_name, cfg.algo.task, cfg.optimized_metric) == (
        name,
        "reconstruction",
        "val/err_best",
    )
    _, rule_module, _ = build(cfg)
    assert rule_module.net.out_shape[-1] == 784
