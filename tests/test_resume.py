"""Kill a run without warning after its validation error has stopped improving, resume it: the
final weights equal an uninterrupted run's, only the killed epoch is redone, metrics.csv reads as
one run, and the run's state goes running -> interrupted -> finished. Then the same through a
killed sweep, whose re-run trial resumes with ckpt_path=auto.

Every run is a `python train.py` process with one torch thread (bitwise-reproducible on CPU).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import ROOT
from tpbench.cli import main as cli
from tpbench.runs.state import read_state

RUN = [
    "data=fake", "data.train_size=512", "data.val_size=128", "data.test_size=64",
    "net.hidden=[64]", "algo.optimizer.lr=0.01", "trainer=cpu", "trainer.max_epochs=5",
    "trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "threads=1", "seed=3",
]  # fmt: skip


def killer(tmp_path: Path, epoch: int) -> list[str]:
    marker = tmp_path / "kill.marker"
    return [
        "+callbacks.killer._target_=tests.killer.KillOnce",
        f"+callbacks.killer.epoch={epoch}",
        f"+callbacks.killer.marker={marker}",
    ]


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def val_epochs(run_dir: Path) -> list[int]:
    with (run_dir / "csv" / "metrics.csv").open() as file:
        return [int(row["epoch"]) for row in csv.DictReader(file) if row.get("val/err")]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=0, msg=name)


def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    full, killed = tmp_path / "full", tmp_path / "killed_run"
    assert train(*RUN, f"hydra.run.dir={full}").returncode == 0
    # a plateau from epoch 0 on: the best checkpoint is never rewritten after it
    with (full / "csv" / "metrics.csv").open() as file:
        errors = [float(r["val/err"]) for r in csv.DictReader(file) if r.get("val/err")]
    assert len(errors) == 5 and min(errors[1:]) >= errors[0]

    result = train(*RUN, *killer(tmp_path, epoch=3), f"hydra.run.dir={killed}")
    assert result.returncode == -9  # SIGKILL in epoch 3, batch 1
    assert read_state(killed)[0] == "interrupted"  # running, and its process is gone
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 2

    monkeypatch.chdir(tmp_path)
    assert cli(["resume", str(killed)]) == 0
    assert_same_weights(full, killed)
    assert val_epochs(killed) == [0, 1, 2, 3, 4]  # one file, each epoch once
    log = (killed / "train.log").read_text()
    assert "Resuming from" in log and "(epoch 2 done)" in log  # only epoch 3 was redone
    assert read_state(killed) == ("finished", "")
    assert (killed / "provenance.yaml").is_file()


def test_killed_sweep_trial_resumes_from_its_last_epoch(tmp_path):
    def sweep(log_dir: Path, *extra: str) -> subprocess.CompletedProcess:
        return train(
            "-m", "hparams_search=bp_random", *RUN, "hydra.sweeper.n_trials=1",
            f"paths.log_dir={log_dir}", *extra,
        )  # fmt: skip

    assert sweep(tmp_path / "full").returncode == 0
    kill = killer(tmp_path, epoch=2)
    assert sweep(tmp_path / "killed", *kill).returncode == -9
    assert sweep(tmp_path / "killed", *kill).returncode == 0  # the same command again
    (full,) = (tmp_path / "full").rglob("trial_000")
    (killed,) = (tmp_path / "killed").rglob("trial_000")
    assert_same_weights(full, killed)
    assert val_epochs(killed) == [0, 1, 2, 3, 4]
    assert "(epoch 1 done)" in (killed / "train.log").read_text()
