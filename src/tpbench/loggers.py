"""Lightning's W&B logger without the deprecation warning it makes W&B print on every run.

Lightning passes `anonymous=None` to `wandb.init`, and W&B ≥ 0.22 warns that the setting has no
effect; the key is dropped before the run starts. W&B's run summary and banners (some 20 lines
at the end of every run) are turned off with `quiet`; its warnings stay. Everything else is
Lightning's WandbLogger.
"""

from __future__ import annotations

from typing import Any

import wandb
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._wandb_init.pop("anonymous", None)
        self._wandb_init.setdefault("settings", wandb.Settings(quiet=True))
