"""Every YAML of every config group composes, and instantiates where it is instantiable."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import CONF, NEEDS_32PX, ROOT
from tpbench.errors import ConfigError
from tpbench.train import instantiate as build_net

INSTANTIATED_GROUPS = ("algo", "net", "data", "trainer", "logger", "callbacks")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in INSTANTIATED_GROUPS + ("paths",) for o in options(g)]
)
def test_option_composes(make_cfg, group, option):
    cfg = make_cfg([f"{group}={option}"])
    assert cfg[group] is not None or option == "none"


@pytest.mark.parametrize("option", options("data"))
def test_data_instantiates_without_reading(make_cfg, option):
    datamodule = instantiate(make_cfg([f"data={option}"]).data)
    assert len(datamodule.shape) == 3 and datamodule.num_classes > 1


@pytest.mark.parametrize("option", options("net"))
@pytest.mark.parametrize("shape,classes", [((1, 28, 28), 10), ((3, 32, 32), 100)])
def test_net_instantiates_for_each_data_shape(make_cfg, option, shape, classes):
    cfg = make_cfg([f"net={option}"]).net
    if option in NEEDS_32PX and shape[1] < 32:
        with pytest.raises(ConfigError, match="does not fit"):
            build_net(cfg, in_shape=shape, num_classes=classes)
        return
    net = instantiate(cfg, in_shape=shape, num_classes=classes)
    assert net.forward_parameters()


@pytest.mark.parametrize("option", options("algo"))
def test_algo_instantiates_on_default_net(make_cfg, option):
    cfg = make_cfg([f"algo={option}"])
    net = instantiate(cfg.net, in_shape=(1, 28, 28), num_classes=10)
    rule = instantiate(cfg.algo, net=net)
    assert rule.automatic_optimization is False


@pytest.mark.parametrize("group", ["trainer", "logger", "callbacks"])
def test_dict_groups_instantiate(make_cfg, group, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for option in options(group):
        node = make_cfg([f"{group}={option}"])[group]
        if group == "trainer":
            if node.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
                continue  # composes (checked above); needs a GPU to instantiate
            instantiate(node)
        else:
            [instantiate(v) for v in (node or {}).values()]


def test_cfg_job_prints_composed_config():
    result = subprocess.run(
        [sys.executable, "train.py", "--cfg", "job", "algo=bp", "data=fake"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "_target_: tpbench.algorithms.backprop.Backprop" in result.stdout
    assert "seed:" in result.stdout


def test_unknown_option_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "train.py", "algo=nonexistent_rule"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "nonexistent_rule" in result.stderr and "Traceback" not in result.stderr
