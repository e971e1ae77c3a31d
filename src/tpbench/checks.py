"""Command-line mistakes caught before anything is built or read, each one ConfigError sentence.

`check_config(cfg)` runs on the composed config; `check_trainer(trainer)` on the built trainer.
Mistakes found inside the parts themselves (a rule on a net it cannot train, missing data files,
an optimizer option its class lacks) raise their own sentences where they are detected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from tpbench.distributed import GradientSyncDDP
from tpbench.errors import ConfigError
from tpbench.runs.resume import check_ckpt_path

NON_NEGATIVE = ("lr", "feedback_lr", "weight_decay")  # keys under algo, lists included
OFFLINE_MODES = ("offline", "disabled", "dryrun")


def check_config(cfg: DictConfig) -> None:
    algo = OmegaConf.to_container(cfg.algo, resolve=True) if cfg.get("algo") else {}
    for key, value in _numbers(algo, "algo"):
        if key.rsplit(".", 1)[-1].split("[")[0] in NON_NEGATIVE and not value >= 0:
            raise ConfigError(f"{key}={value} must be zero or positive (a step size or a decay).")
    for key in ("batch_size", "eval_batch_size"):
        value = OmegaConf.select(cfg, f"data.{key}")
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"data.{key}={value} must be a whole number of samples ≥ 1.")
    epochs = OmegaConf.select(cfg, "trainer.max_epochs")
    if epochs is not None and (not isinstance(epochs, int) or (epochs < 1 and epochs != -1)):
        raise ConfigError(f"trainer.max_epochs={epochs} must be ≥ 1 (or -1: until stopped).")
    threads = cfg.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads={threads} must be ≥ 1, or null for torch's default.")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path not in (None, "auto"):
        check_ckpt_path(str(ckpt_path))
    _check_accelerator(str(OmegaConf.select(cfg, "trainer.accelerator") or "auto"))
    if any("Wandb" in str(node.get("_target_", "")) for node in (cfg.get("logger") or {}).values()):
        _check_wandb_login()


def _numbers(node, prefix: str) -> Iterator[tuple[str, float]]:
    """(dotted key, value) of every int/float leaf under a plain dict/list node."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{prefix}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _numbers(item, f"{prefix}[{i}]")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield prefix, node


def _check_accelerator(accelerator: str) -> None:
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise ConfigError(
            f"trainer.accelerator={accelerator} needs a CUDA GPU, and torch {torch.__version__} "
            f"({build}) sees none; use trainer=cpu or the default trainer (accelerator=auto)."
        )


def wandb_login_found() -> bool:
    """W&B is offline, or a login is configured (API key, identity token, netrc)."""
    if os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        return True
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        from wandb.sdk.lib.wbauth.wbnetrc import read_netrc_auth

        base_url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
        return bool(read_netrc_auth(host=base_url))
    except Exception:  # another wandb version: let wandb itself decide
        return True


def _check_wandb_login() -> None:
    if wandb_login_found():
        return
    raise ConfigError(
        "logger=wandb needs a W&B login and none was found (no `wandb login`, no "
        "WANDB_API_KEY); log offline with WANDB_MODE=offline (sync later with `wandb sync`)."
    )


def check_trainer(trainer: L.Trainer, devices: object) -> None:
    """A DDP trainer that found a single device would train in one process without a word."""
    if isinstance(trainer.strategy, GradientSyncDDP) and trainer.world_size == 1:
        raise ConfigError(
            f"trainer=ddp found a single {trainer.strategy.root_device.type} device "
            f"(trainer.devices={devices}) and would train in one process; on CPUs use "
            "trainer=ddp_cpu or trainer.accelerator=cpu trainer.devices=N, on GPUs check "
            "CUDA_VISIBLE_DEVICES, or drop trainer=ddp."
        )
