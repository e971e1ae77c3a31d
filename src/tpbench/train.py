"""Hydra entry point: data -> net -> rule -> trainer -> fit -> test; returns the sweep metric."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from tpbench.distributed import set_threads
from tpbench.errors import TpbenchError

log = logging.getLogger("tpbench")
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def instantiate(node, **kwargs):
    """hydra's instantiate; a TpbenchError raised by the target (e.g. a rule that cannot train the
    net) surfaces as itself, one sentence, not wrapped in hydra's InstantiationException."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, TpbenchError):
            raise error.__cause__ from None
        raise


def _instantiate_all(group: DictConfig | None) -> list:
    """Every node with a `_target_` in a dict-of-configs group (loggers, callbacks)."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def build(cfg: DictConfig):
    """(datamodule, rule, trainer) from the composed config, seeded; reads no data."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    net = instantiate(cfg.net, in_shape=datamodule.shape, num_classes=datamodule.num_classes)
    rule = instantiate(cfg.algo, net=net)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    rule.check_trainer(trainer)  # DDP strategy and 16-bit precision, before any data is read
    if cfg.get("compile"):
        net.compile_layers()
    n_fwd = sum(p.numel() for p in net.forward_parameters())
    n_fb = sum(p.numel() for p in net.feedback_parameters())
    log.info(
        "Built data=%s net=%s (%d layers, %d forward + %d feedback parameters) rule=%s",
        type(datamodule).__name__,
        cfg.net._target_.rsplit(".", 1)[-1],
        len(net),
        n_fwd,
        n_fb,
        type(rule).__name__,
    )
    return datamodule, rule, trainer


def resolve_ckpt_path(ckpt_path: str | None, trainer: L.Trainer, output_dir: str) -> str | None:
    """`auto`: this run's checkpoints/last.ckpt when it exists (a re-run sweep trial, a requeued
    Slurm job; the earlier CSV rows are kept as csv/metrics.<n>.csv), else a fresh start; any
    other value is used as given."""
    if ckpt_path != "auto":
        return ckpt_path
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None) or Path(output_dir) / "checkpoints"
    last = Path(dirpath) / "last.ckpt"
    if not last.is_file():
        return None
    log.info("Resuming from %s", last)
    for logger in trainer.loggers:  # CSVLogger deletes an existing metrics.csv: keep its rows
        old = Path(logger.log_dir) / "metrics.csv" if isinstance(logger, CSVLogger) else None
        if old is not None and old.is_file():
            n = len(list(old.parent.glob("metrics.*.csv")))
            old.rename(old.with_name(f"metrics.{n}.csv"))
    return str(last)


@contextmanager
def closing_wandb_runs(trainer: L.Trainer) -> Iterator[None]:
    """Finish this run's W&B run at the end, marked failed on an error. Lightning leaves it open,
    and the next run in the same process (the next trial of an in-process sweep) would log into
    it."""
    try:
        yield
    except BaseException:
        _finish_wandb_runs(trainer, exit_code=1)
        raise
    _finish_wandb_runs(trainer, exit_code=0)


def _finish_wandb_runs(trainer: L.Trainer, exit_code: int) -> None:
    for logger in trainer.loggers:
        run = logger._experiment if isinstance(logger, WandbLogger) else None  # None off rank 0
        if run is not None:
            run.finish(exit_code=exit_code)


def train(cfg: DictConfig) -> float:
    """Fit with a validation pass per epoch, test the best checkpoint, return the metric."""
    start = time.perf_counter()
    if cfg.get("threads"):
        set_threads(int(cfg.threads))  # parallel trials (and DDP processes) share the cores
    datamodule, rule, trainer = build(cfg)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), trainer, cfg.paths.output_dir)
    with closing_wandb_runs(trainer):
        for logger in trainer.loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        trainer.fit(rule, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics = {
            **rule.best_scores(),
            **{k: float(v) for k, v in trainer.callback_metrics.items()},
        }
        rule.raise_if_diverged()
        if cfg.get("test", True):
            checkpoint = trainer.checkpoint_callback
            ckpt = "best" if checkpoint is not None and checkpoint.best_model_path else None
            trainer.test(rule, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    log.info(
        "Done in %.1fs: best val err %.4f, test err %s, seed %d; logs in %s",
        time.perf_counter() - start,
        metrics.get("val/err_best", math.nan),
        f"{metrics['test/err']:.4f}" if "test/err" in metrics else "n/a",
        cfg.seed,
        cfg.paths.output_dir,
    )
    name = cfg.get("optimized_metric")
    return metrics.get(name, math.nan) if name else math.nan


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg)
    except TpbenchError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweeper records the trial as failed with this reason
        log.error("%s", error)
        sys.exit(1)
