"""CSV (default), TensorBoard, W&B (offline) and several loggers at once, through a real run."""

from __future__ import annotations

import pytest

from tpbench.train import train


@pytest.mark.parametrize(
    "logger,expected",
    [
        ("csv", ["csv/metrics.csv"]),
        ("tensorboard", ["tensorboard/events.out.tfevents.*"]),
        (
            "[csv,tensorboard,wandb]",
            ["csv/metrics.csv", "tensorboard/events.*", "wandb/offline-run-*"],
        ),
    ],
)
def test_logger_writes(make_cfg, tmp_path, monkeypatch, logger, expected):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(make_cfg([f"logger={logger}", "trainer.max_epochs=1"]))
    if "wandb" in logger:
        import wandb

        assert wandb.run is None  # finished: the next run in this process gets its own
    for pattern in expected:
        assert list(tmp_path.glob(pattern)), f"{pattern} not written by logger={logger}"


def test_seed_and_hyperparameters_are_logged(make_cfg, tmp_path):
    train(make_cfg(["seed=77", "trainer.max_epochs=1"]))
    hparams = (tmp_path / "csv" / "hparams.yaml").read_text()
    assert "seed: 77" in hparams
    metrics = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    for name in ("train/loss", "val/err", "val/err_best", "test/err"):
        assert name in metrics
