"""Lightning's loggers as tpbench runs them: CSV files written whole, W&B without its noise.

- `CSVLogger`: Lightning's, except that `metrics.csv` and `hparams.yaml` are written whole
  (tpbench.atomic) at every save: the rows so far and the new ones go to a temporary file that
  replaces the old one, so a full disk or a kill never leaves a truncated row under the valid
  name (Lightning appends in place). A save costs a read of the file, once per
  `flush_logs_every_n_steps` steps and at each epoch's end.
- `WandbLogger`: Lightning passes `anonymous=None` to `wandb.init`, and W&B ≥ 0.22 warns that the
  setting has no effect; the key is dropped before the run starts. W&B's run summary and banners
  (some 20 lines at the end of every run) are turned off with `quiet`; its warnings stay.
"""

from __future__ import annotations

import csv
import os
from typing import Any

import wandb
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from tpbench.atomic import atomic_path


class WholeFileWriter(ExperimentWriter):
    """Lightning's CSV experiment writer with whole-file, atomic saves."""

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        with atomic_path(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)) as partial:
            save_hparams_to_yaml(partial, self.hparams)

    def save(self) -> None:
        if not self.metrics:
            return
        rows, header = [], []
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                reader = csv.DictReader(file)
                rows, header = list(reader), list(reader.fieldnames or [])
        self._record_new_keys()
        self.metrics_keys = sorted(set(self.metrics_keys) | set(header))
        with atomic_path(self.metrics_file_path) as partial, partial.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows([*rows, *self.metrics])
        self.metrics = []


class CSVLogger(LightningCSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> WholeFileWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = WholeFileWriter(log_dir=self.log_dir)
        return self._experiment


class WandbLogger(LightningWandbLogger):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._wandb_init.pop("anonymous", None)
        self._wandb_init.setdefault("settings", wandb.Settings(quiet=True))
