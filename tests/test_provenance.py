"""A run records what produced it (code, packages, threads, device) and how it ended."""

from __future__ import annotations

from omegaconf import OmegaConf

from tpbench.runs.provenance import PACKAGES, git_state
from tpbench.runs.state import read_state
from tpbench.train import train


def test_run_records_provenance_in_its_directory_and_the_logged_hyperparameters(make_cfg, tmp_path):
    train(make_cfg(["trainer.max_epochs=1", "threads=1"]))
    record = OmegaConf.load(tmp_path / "provenance.yaml")
    assert len(record.git.commit) == 40 and isinstance(record.git.dirty, bool)
    assert set(record.packages) == set(PACKAGES) and "+" not in record.packages.lightning
    assert record.torch_threads == 1 and record.device.startswith("cpu")
    hparams = OmegaConf.load(tmp_path / "csv" / "hparams.yaml")
    assert hparams.provenance.git.commit == record.git.commit
    assert read_state(tmp_path) == ("finished", "")


def test_outside_a_git_checkout_the_commit_is_unknown(tmp_path):
    assert git_state(tmp_path) == {"commit": "unknown (not a git checkout)", "dirty": None}
