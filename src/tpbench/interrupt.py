"""Ctrl-C during a run: one line saying where it stopped and how to go on, exit code 130.

Lightning catches the KeyboardInterrupt itself and exits with code 1 and nothing on the console;
`ctrl_c(error)` recognises that exit, `stopped_sentence` names the last complete epoch (the one
`checkpoints/last.ckpt` holds) and the command that resumes from it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

EXIT_CODE = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def ctrl_c(error: BaseException) -> bool:
    """A KeyboardInterrupt, or Lightning's sys.exit(1) while handling one."""
    return isinstance(error, KeyboardInterrupt) or isinstance(error.__context__, KeyboardInterrupt)


def stopped_sentence(cfg: DictConfig, sweep: bool) -> str:
    run_dir = cfg.paths.output_dir
    default = str(Path(run_dir) / "checkpoints")
    last = Path(OmegaConf.select(cfg, "callbacks.last_checkpoint.dirpath", default=default))
    last = last / "last.ckpt"
    how = "run the sweep's command again" if sweep else f"tpbench resume {run_dir}"
    if not last.is_file():
        return f"Stopped by Ctrl-C in {run_dir} before any epoch was complete (no checkpoint)."
    epoch = torch.load(last, map_location="cpu", mmap=True, weights_only=False)["epoch"] + 1
    total = OmegaConf.select(cfg, "trainer.max_epochs")
    return (
        f"Stopped by Ctrl-C in {run_dir} after epoch {epoch} of {total} ({last} holds it); "
        f"to continue from there: {how}"
    )
