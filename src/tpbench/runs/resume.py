"""Resuming a run from a checkpoint: which file, is it this model's, and the metrics it continues.

- `ckpt_path=auto` means this run directory's `checkpoints/last.ckpt` when it exists (a re-run
  sweep trial, a requeued Slurm job, `tpbench resume`), else a fresh start.
- A checkpoint that is missing, unreadable or holds another model (other net, rule or data
  shape) is one ConfigError sentence before training starts, not a state_dict traceback.
- A resume that cannot apply is one sentence before a file is touched (`check_budget`): fewer
  epochs than the run has done, or a finished run without more epochs.
- `csv/metrics.csv` continues: rows logged after the checkpoint (the interrupted epoch, the old
  test result) are dropped and the resumed run appends to the rest, so the file reads as if the
  run had never stopped.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only

from tpbench.atomic import atomic_path
from tpbench.errors import ConfigError
from tpbench.runs.checkpoints import LAST, LastCheckpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resumed:
    path: str
    epoch: int  # the last complete epoch in the checkpoint
    global_step: int


def checkpoint_dir(trainer: L.Trainer, output_dir: str) -> Path:
    """Where this run's last.ckpt lives: the LastCheckpoint callback's dirpath."""
    for callback in trainer.callbacks:
        if isinstance(callback, LastCheckpoint):
            return callback.dirpath
    return Path(output_dir) / "checkpoints"


def resolve(ckpt_path: str | None, trainer: L.Trainer, output_dir: str) -> str | None:
    """`auto`: this run's last.ckpt if it exists, else None (fresh start); else as given."""
    if ckpt_path != "auto":
        return ckpt_path
    last = checkpoint_dir(trainer, output_dir) / LAST
    return str(last) if last.is_file() else None


def epochs_done(run_dir: Path) -> int:
    """Complete epochs in run_dir's checkpoints/last.ckpt (0 without one)."""
    last = run_dir / "checkpoints" / LAST
    if not last.is_file():
        return 0
    checkpoint = torch.load(last, map_location="cpu", mmap=True, weights_only=False)
    return int(checkpoint["epoch"]) + 1


def check_budget(run_dir: Path, max_epochs: int | None, finished: bool) -> None:
    """Refuse a resume to fewer epochs than done, or of a finished run to no more epochs."""
    done = epochs_done(run_dir)
    if max_epochs is None or max_epochs <= 0 or max_epochs > done:
        return  # (-1: no limit; 0 is the config checks' to refuse)
    if max_epochs < done:
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} is fewer than the {done} epochs {run_dir.name} has "
            f"done; pass trainer.max_epochs greater than {done} to train it longer."
        )
    if finished:
        raise ConfigError(
            f"{run_dir.name} has finished its {done} epochs; pass trainer.max_epochs greater "
            f"than {done} to train it longer (its records are left as they are)."
        )


def check_ckpt_path(ckpt_path: str) -> Path:
    """An existing checkpoint file; a directory names the checkpoint in it to pass."""
    path = Path(ckpt_path)
    if path.is_dir():
        inside = sorted(path.glob("*.ckpt")) or sorted(path.glob(f"checkpoints/{LAST}"))
        hint = f"e.g. ckpt_path={inside[-1]}" if inside else "no .ckpt file is in it"
        raise ConfigError(
            f"ckpt_path={ckpt_path} is a directory, not a checkpoint file ({hint}); to continue "
            "a run in its own directory use tpbench resume RUN_DIR."
        )
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist; pass an existing checkpoint file, "
            "ckpt_path=auto (this run directory's last.ckpt) or ckpt_path=null."
        )
    return path


def open_checkpoint(ckpt_path: str, module: torch.nn.Module) -> Resumed:
    """Read the checkpoint and check it holds `module`'s tensors, each of the same shape."""
    path = check_ckpt_path(ckpt_path)
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
        saved = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
    except Exception as error:  # any unreadable file is the same mistake
        raise ConfigError(
            f"ckpt_path={ckpt_path} is not a readable Lightning checkpoint ({error}); "
            "pass a .ckpt file written by tpbench."
        ) from None
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for key in sorted(saved.keys() | expected.keys()):
        if saved.get(key) != expected.get(key):
            raise ConfigError(
                f"ckpt_path={ckpt_path} holds another model than this config builds ({key}: "
                f"{_shape(saved.get(key))} in the checkpoint, {_shape(expected.get(key))} here); "
                "resume with the run's own config (tpbench resume RUN_DIR) or drop ckpt_path."
            )
    return Resumed(str(path), int(checkpoint["epoch"]), int(checkpoint["global_step"]))


def _shape(shape: tuple | None) -> str:
    return "absent" if shape is None else f"shape {list(shape)}"


def continue_csv(trainer: L.Trainer, resumed: Resumed) -> None:
    """Keep the CSV rows up to the checkpoint and let the logger append after them.

    Lightning's CSV writer deletes an existing metrics.csv when it starts; the kept rows are
    written back once it has, and the writer is told their header. Rank 0 alone writes."""
    if rank_zero_only.rank != 0:
        return
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        rows, header = _read_rows(path)
        kept = [row for row in rows if _before(row, resumed)]
        writer = logger.experiment  # created now: deletes the old file
        if not header:
            continue
        with atomic_path(path) as partial, partial.open("w", newline="") as file:
            table = csv.DictWriter(file, fieldnames=header)
            table.writeheader()
            table.writerows(kept)
        writer.metrics_keys = list(header)
        log.info("Continuing %s after epoch %d (%d rows kept)", path, resumed.epoch, len(kept))


def _read_rows(path: Path) -> tuple[list[dict], list[str]]:
    if not path.is_file():
        return [], []
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return list(reader), list(reader.fieldnames or [])


def _before(row: dict, resumed: Resumed) -> bool:
    """Logged up to the checkpoint: an epoch ≤ its epoch, or (rows without an epoch, e.g.
    diagnostics) a step ≤ its global step."""
    if row.get("epoch"):
        return int(float(row["epoch"])) <= resumed.epoch
    return bool(row.get("step")) and int(float(row["step"])) <= resumed.global_step
