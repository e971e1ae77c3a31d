"""`tpbench report` on a directory holding every kind of run train.py leaves: plain runs of two
rules, a 1-epoch run, a diagnostics run (CSV rows without an epoch), a sweep with a diverged
trial, a run that failed at start-up (listed apart, not counted), one killed without warning, and
runs that logged to TensorBoard only, to W&B only (offline; the report runs without a W&B login)
and to no logger at all (counted, not drawn)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tpbench.cli import main as cli
from tpbench.runs.reader import read_runs
from tpbench.train import main

TINY = [
    "data=fake", "data.train_size=256", "data.val_size=64", "data.test_size=64",
    "net.hidden=[32,32]", "trainer=cpu", "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "threads=1",
]  # fmt: skip


def train(*args: str) -> None:
    """`python train.py TINY args` in this process (a mistake exits 1)."""
    GlobalHydra.instance().clear()
    argv, threads = sys.argv, torch.get_num_threads()
    flags = [a for a in args if a == "-m"]
    sys.argv = ["train.py", *flags, *TINY, *[a for a in args if a != "-m"]]
    try:
        main()
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    train(f"hydra.run.dir={root / 'bp'}")
    train("algo=fa", "trainer.max_epochs=1", f"hydra.run.dir={root / 'fa_one_epoch'}")
    train(
        "algo=fa", "callbacks=weight_alignment", "callbacks.weight_alignment.every_n_steps=2",
        f"hydra.run.dir={root / 'fa_diagnostics'}",
    )  # fmt: skip
    with pytest.raises(SystemExit, match="1"):
        train("algo.optimizer.lr=-1", f"hydra.run.dir={root / 'bp_failed'}")
    train(
        "-m", "hparams_search=bp_random", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.seed=1", "algo.optimizer.lr=choice(0.001,inf)",
        f"paths.log_dir={root / 'sweep'}",
    )  # fmt: skip
    train(f"hydra.run.dir={root / 'bp_killed'}")
    state = OmegaConf.load(root / "bp_killed" / "run.yaml")  # as a kill -9 leaves it
    state.state, state.pid = "running", 2**22 + 1
    OmegaConf.save(state, root / "bp_killed" / "run.yaml")
    train("algo=dfa", "logger=tensorboard", f"hydra.run.dir={root / 'dfa_tensorboard'}")
    train("algo=frsf", "logger=none", f"hydra.run.dir={root / 'frsf_no_logger'}")
    os.environ["WANDB_MODE"] = "offline"
    try:
        train("algo=usf", "logger=wandb", f"hydra.run.dir={root / 'usf_wandb'}")
    finally:
        del os.environ["WANDB_MODE"]
    return root


def test_report_on_a_mixed_directory(mixed, monkeypatch, tmp_path):
    states = {run.path.name: run.state for run in read_runs(mixed)}
    assert states == {
        "bp": "complete", "fa_one_epoch": "complete", "fa_diagnostics": "complete",
        "bp_failed": "failed", "trial_000": "complete", "trial_001": "failed",
        "bp_killed": "interrupted", "dfa_tensorboard": "complete", "frsf_no_logger": "complete",
        "usf_wandb": "complete",
    }  # fmt: skip
    with monkeypatch.context() as patch:  # no W&B login: the report itself is logged offline
        for key in [k for k in os.environ if k.startswith("WANDB_")]:
            patch.delenv(key)
        patch.setenv("HOME", str(tmp_path))
        patch.setenv("NETRC", str(tmp_path / "none"))
        assert cli(["report", str(mixed)]) == 0
    text = (mixed / "report.md").read_text()
    rows = {line.split("|")[3].strip(): line for line in text.splitlines() if "| fake |" in line}
    # complete / pruned / failed / interrupted / running: bp, trial_000 / trial_001 / killed
    assert "| 2 / 0 / 1 / 1 / 0 |" in rows["bp"]
    assert "| 2 / 0 / 0 / 0 / 0 |" in rows["fa"]
    for rule in ("dfa", "usf"):  # TensorBoard only, W&B only: read (best val err is a number)
        cells = [cell.strip() for cell in rows[rule].split("|")]
        assert cells[4] == "1 / 0 / 0 / 0 / 0" and cells[5] != "–"
    assert "| 1 / 0 / 0 / 0 / 0 | – | – |" in rows["frsf"]  # no metrics: counted, not drawn
    start_up = text.split("## Runs that failed at start-up")[1]
    assert "`bp_failed`: algo.optimizer.lr=-1 must be zero or positive" in start_up
    assert "DivergedError" in text
    best = next(line for line in text.splitlines() if "fake, bartunov_mnist_fc, fa**" in line)
    assert "`algo=fa`" in best and ("fa_diagnostics" in best or "fa_one_epoch" in best)
    for name in ("sensitivity.png", "curves.png"):
        assert (mixed / name).stat().st_size > 10_000
