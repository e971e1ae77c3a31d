"""Shared test helpers: compose the real Hydra config exactly as train.py does, on fake data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# conf/net options that are not a plain sequence of layers with learned inverses (residual
# blocks, a wrapped torch model), or need 32x32 inputs (LeNet as biotorch runs it)
NOT_LAYER_SEQUENCES = ("lenet_biotorch", "resnet18", "resnet20", "resnet56", "torch")
NEEDS_32PX = ("lenet_biotorch",)

torch.set_num_threads(min(2, os.cpu_count() or 1))

# Small, quick defaults every test run starts from; tests add their own overrides after these.
FAST = [
    "data=fake",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "logger=csv",
    "callbacks=none",
]


def compose_train(overrides: list[str], hydra_config: bool = False) -> DictConfig:
    """The train config as `python train.py <overrides>` composes it (nothing redirected); with
    `hydra_config`, it also carries Hydra's own node, which is set as the current HydraConfig."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=hydra_config)
    if hydra_config:
        HydraConfig().set_config(cfg)
    return cfg


def compose_config(overrides: list[str], tmp_path: Path, fast: bool = True) -> DictConfig:
    """The composed train config with paths redirected into tmp_path."""
    cfg = compose_train((FAST if fast else []) + overrides, hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(ROOT)
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        del cfg["hydra"]  # as in a real run: the job's config does not carry Hydra's own
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    return lambda overrides=(), **kw: compose_config(list(overrides), tmp_path, **kw)


@pytest.fixture
def one_thread():
    """Tiny nets: one thread is fastest, and avoids oversubscribing a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def slurm_unavailable() -> str | None:
    """Why this machine has no Slurm cluster to submit to (`make slurm` starts one), or None."""
    import shutil
    import subprocess

    if shutil.which("sbatch") is None:
        return "Slurm is not installed (make slurm installs and starts a single-node cluster)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "scontrol ping timed out (make slurm starts the cluster)"
    if "UP" not in ping.stdout:
        return f"no Slurm controller answers ({ping.stdout.strip() or ping.stderr.strip()})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip (with the reason) where no Slurm cluster answers."""
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
