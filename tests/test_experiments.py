"""Paper presets (conf/experiment) and the recipes in sweeps/: they compose, build, and carry the
papers' numbers.

Composing and building all presets takes minutes here (CIFAR LC nets have ~100M parameters), so
the default run builds one preset per paper and net family and `-m slow` builds every one.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, ROOT, compose_train
from tpbench.train import build

PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
RECIPES = sorted(p.name for p in (ROOT / "sweeps").glob("*.sh") if p.name != "lib.sh")
QUICK = {
    "bartunov_mnist_fc_dtp_alt", "bartunov_mnist_fc_dfa", "bartunov_mnist_lc_aosdtp",
    "bartunov_mnist_conv_bp", "bartunov_imagenet32_lc_fa", "bartunov_cifar10_fc_aosdtp_aux",
    "fwdtp_mnist_fc_fwdtp", "ernoult_cifar10_vgg_ldrl", "tuned20_mnist_fc_ldrl",
    "biotorch_mnist_lenet_dfa",
}  # fmt: skip


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in PRESETS]
)
def test_preset_composes_and_builds_without_reading_data(name, make_cfg):
    cfg = make_cfg([f"experiment={name}", "logger=none", "callbacks=none"], fast=False)
    assert cfg.task_name == name  # the recipes find a preset's runs by it
    build(cfg)


# Bartunov Table 5 as printed (β1 = 0.99 and β2 = 0.95 included, α and σ beyond Table 4's ranges)
TABLE5 = [
    ("bartunov_mnist_fc_dtp", "algo.optimizer", (0.000757, [0.99, 0.95], 1e-3)),
    ("bartunov_mnist_fc_dtp", "algo.feedback_optimizer", (0.000768, [0.99, 0.99], 1e-4)),
    ("bartunov_mnist_fc_sdtp_alt", "algo.feedback_optimizer", (0.009572, [0.9, 0.95], 1e-3)),
    ("bartunov_mnist_fc_dfa", "algo.optimizer", (0.001649, [0.9, 0.95], 1e-3)),
    ("bartunov_mnist_lc_dtp_alt", "algo.feedback_optimizer", (0.000137, [0.9, 0.999], 1e-6)),
    ("bartunov_mnist_conv_bp", "algo.optimizer", (0.000297, [0.9, 0.99], 1e-8)),
    ("bartunov_cifar10_fc_dtp_alt", "algo.optimizer", (0.000013, [0.9, 0.999], 1e-8)),
    ("bartunov_cifar10_lc_sdtp_alt", "algo.feedback_optimizer", (0.000011, [0.9, 0.99], 1e-8)),
    ("bartunov_cifar10_lc_fa", "algo.optimizer", (0.000022, [0.9, 0.999], 1e-8)),
    ("bartunov_imagenet32_lc_dtp", "algo.feedback_optimizer", (0.000234, [0.9, 0.999], 1e-6)),
]
TABLE5_SCALARS = [
    ("bartunov_mnist_lc_dtp_alt", 0.310892, 0.366964),
    ("bartunov_cifar10_fc_dtp", 0.125693, 0.169783),
    ("bartunov_imagenet32_lc_dtp_alt", 0.03706, 0.097217),
]


@pytest.mark.parametrize(("name", "key", "adam"), TABLE5)
def test_presets_carry_table5_adam_values(name, key, adam):
    node = OmegaConf.select(OmegaConf.load(CONF / "experiment" / f"{name}.yaml"), key)
    assert (node.lr, list(node.betas), node.eps) == adam


@pytest.mark.parametrize(("name", "alpha", "sigma"), TABLE5_SCALARS)
def test_presets_carry_table5_alpha_and_sigma(name, alpha, sigma):
    algo = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").algo
    assert (algo.top_target.alpha, algo.inverse_loss.sigma) == (alpha, sigma)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_dry_run_names_existing_presets(recipe):
    """PY=echo prints every command a recipe would run instead of running it."""
    result = subprocess.run(
        ["bash", f"sweeps/{recipe}"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PY": "echo"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    named = re.findall(r"experiment=([\w,]+)", result.stdout)
    assert named and all(n in PRESETS for names in named for n in names.split(","))
    assert "report logs/" in result.stdout


def test_fwdtp_tp_preset_is_the_dtp_recipe_without_the_difference_correction():
    """The authors' `--algorithm=TP` differs from their DTP only in t_{l-1} = G_l(t_l), and in
    keeping the authors' published lr / stepsize / lrb where DTP's preset has searched ones."""
    tp, dtp = (
        OmegaConf.to_container(compose_train([f"experiment=fwdtp_mnist_fc_{rule}"]))
        for rule in ("tp", "dtp")
    )
    assert tp["algo"].pop("_target_").endswith(".TP") and dtp["algo"].pop("_target_")
    assert [cfg["algo"]["feedback"].pop("difference") for cfg in (tp, dtp)] == [False, True]
    steps = [
        (
            c["algo"]["optimizer"].pop("lr"),
            c["algo"]["top_target"].pop("beta"),
            c["algo"]["feedback_optimizer"].pop("lr"),
        )
        for c in (tp, dtp)
    ]
    assert steps == [(0.1, 0.04, 0.001), (4, 0.02, 0.01)]
    assert {**tp, "task_name": None} == {**dtp, "task_name": None}
