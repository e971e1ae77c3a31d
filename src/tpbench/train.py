"""Hydra entry point: data -> net -> rule -> trainer -> fit -> test; returns the sweep metric."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from tpbench.atomic import storage_error, write_text
from tpbench.checks import check_config, check_trainer
from tpbench.command_line import check_command_line
from tpbench.console import hydra_raising, mistakes_told, quiet, tell
from tpbench.distributed import set_threads
from tpbench.errors import TpbenchError
from tpbench.interrupt import EXIT_CODE, ctrl_c, stopped_sentence
from tpbench.runs import lock, provenance, slurm
from tpbench.runs.checkpoints import AtomicCheckpointIO
from tpbench.runs.pruning import Pruned, reporter
from tpbench.runs.resume import (
    check_budget,
    continue_csv,
    epochs_done,
    open_checkpoint,
    resolve,
)
from tpbench.runs.state import RunState, read_state
from tpbench.runs.study import ended_value

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
    if not OmegaConf.select(cfg, "trainer.enable_progress_bar", default=True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]  # one override
    if (report_to_study := reporter(cfg)) is not None:  # a sweep trial: its epochs, for pruning
        callbacks.append(report_to_study)
    loggers = _instantiate_all(cfg.get("logger"))
    rule.check_precision(OmegaConf.select(cfg, "trainer.precision", default="32-true"))
    plugins = [AtomicCheckpointIO(), *slurm.cluster_plugins()]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins
    )
    rule.check_trainer(trainer)  # DDP strategy and 16-bit precision, before any data is read
    if cfg.get("compile"):
        net.compile_layers()
    n_fwd = sum(p.numel() for p in net.forward_parameters())
    n_fb = sum(p.numel() for p in net.feedback_parameters())
    feedback_kind = "learned" if rule.feedback_optimizer_factory is not None else "fixed"
    log.info(
        "Built data=%s net=%s (%d layers, %d forward + %d feedback parameters%s) rule=%s",
        type(datamodule).__name__,
        cfg.net._target_.rsplit(".", 1)[-1],
        len(net),
        n_fwd,
        n_fb,
        f", {feedback_kind}" if n_fb else "",
        rule.display_name,
    )
    return datamodule, rule, trainer


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
    """Fit with a validation pass per epoch, test the best checkpoint, return the metric; the
    run's state (running, then finished, failed, interrupted or pruned) is kept in its run.yaml,
    and its directory is locked against a second process meanwhile (rank 0 holds the lock)."""
    quiet()  # again: a launcher's job may run in a fresh process
    with lock.locked(cfg.paths.output_dir) if rank_zero_only.rank == 0 else nullcontext():
        return _train_recorded(cfg)


def _train_recorded(cfg: DictConfig) -> float:
    run_dir = Path(cfg.paths.output_dir)
    if cfg.get("ckpt_path") == "auto" and (read_state(run_dir) or ("",))[0] == "finished":
        # a finished run's records are never rewritten: a re-run trial (its sweep was killed
        # after it ended) reads its result back; fewer epochs than done is one sentence
        check_budget(run_dir, OmegaConf.select(cfg, "trainer.max_epochs"), finished=False)
        if epochs_done(run_dir) >= OmegaConf.select(cfg, "trainer.max_epochs", default=-1) >= 0:
            log.info("%s has finished already; its result is read back", run_dir)
            metric = cfg.get("optimized_metric")
            value = ended_value(run_dir, metric) if metric else None
            return math.nan if value is None else value
    state = RunState(run_dir)
    state.start()
    try:
        value = _train(cfg)
    except Pruned as error:
        log.info("Pruned %s", error)
        state.end("pruned", str(error))
        raise
    except TpbenchError as error:
        state.end("failed", str(error))
        raise
    except OSError as error:  # a full disk, a read-only directory: one sentence
        if (storage := storage_error(error)) is None:
            state.end("failed", f"{type(error).__name__}: {error}")
            raise
        state.end("failed", str(storage))
        raise storage from None
    except (KeyboardInterrupt, SystemExit) as error:  # Ctrl-C, SIGTERM, a requeue signal
        if ctrl_c(error):
            sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
            sentence = stopped_sentence(cfg, sweep)
            state.end("interrupted", sentence)
            tell(sentence, logging.WARNING)
            raise SystemExit(EXIT_CODE) from None
        state.end("interrupted", f"stopped by {type(error).__name__}; last.ckpt is kept")
        raise
    except BaseException as error:
        state.end("failed", f"{type(error).__name__}: {error}")
        raise
    state.end("finished")
    return value


def _train(cfg: DictConfig) -> float:
    start = time.perf_counter()
    if cfg.get("threads"):
        set_threads(int(cfg.threads))  # parallel trials (and DDP processes) share the cores
    check_config(cfg)
    datamodule, rule, trainer = build(cfg)
    check_trainer(trainer, OmegaConf.select(cfg, "trainer.devices"))
    ckpt_path = resolve(cfg.get("ckpt_path"), trainer, cfg.paths.output_dir)
    if ckpt_path is not None:
        resumed = open_checkpoint(ckpt_path, rule)
        log.info("Resuming from %s (epoch %d done)", ckpt_path, resumed.epoch)
        continue_csv(trainer, resumed)
    record = provenance.collect(str(trainer.strategy.root_device.type))
    if rank_zero_only.rank == 0:  # (the trainer does not know its rank before fitting)
        write_text(Path(cfg.paths.output_dir) / "provenance.yaml", OmegaConf.to_yaml(record))
        slurm.link_job_output(cfg.paths.output_dir)
    with closing_wandb_runs(trainer):
        hparams = {**OmegaConf.to_container(cfg, resolve=True), "provenance": record}
        for logger in trainer.loggers:
            logger.log_hyperparams(hparams)
        trainer.fit(rule, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics = {
            **rule.best_scores(),
            **{k: float(v) for k, v in trainer.callback_metrics.items()},
        }
        rule.raise_if_diverged()
        if cfg.get("test", True):
            ckpt = getattr(trainer.checkpoint_callback, "best_model_path", None) or None
            trainer.test(rule, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    log.info(
        "Done in %s: best val err %s, test err %s (seed %d); logs in %s",
        _duration(time.perf_counter() - start),
        _percent(metrics.get("val/err_best")),
        _percent(metrics.get("test/err")),
        cfg.seed,
        cfg.paths.output_dir,
    )
    name = cfg.get("optimized_metric")
    return metrics.get(name, math.nan) if name else math.nan


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.2f} %"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return train(cfg)  # the sweeper records a failed trial with its sentence
    with mistakes_told():
        return train(cfg)


def main() -> None:
    """`python train.py [overrides]`: a mistake ends in one sentence on stderr and exit code 1."""
    with mistakes_told(), hydra_raising():
        check_command_line(sys.argv[1:], CONFIG_DIR)
        _hydra_main()
