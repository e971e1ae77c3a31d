"""`tpbench report` on a directory holding every kind of run train.py leaves: plain runs of two
rules, a 1-epoch run, a diagnostics run (CSV rows without an epoch), a sweep with a diverged
trial, a run that failed at start-up and one killed without warning."""

from __future__ import annotations

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
    return root


def test_report_on_a_mixed_directory(mixed):
    states = {run.path.name: run.state for run in read_runs(mixed)}
    assert states == {
        "bp": "complete", "fa_one_epoch": "complete", "fa_diagnostics": "complete",
        "bp_failed": "failed", "trial_000": "complete", "trial_001": "failed",
        "bp_killed": "interrupted",
    }  # fmt: skip
    assert cli(["report", str(mixed), "--no-wandb"]) == 0
    text = (mixed / "report.md").read_text()
    rows = {line.split("|")[3].strip(): line for line in text.splitlines() if "| fake |" in line}
    assert "| 2 / 2 / 1 / 0 |" in rows["bp"]  # bp, trial_000 / bp_failed, trial_001 / killed
    assert "| 2 / 0 / 0 / 0 |" in rows["fa"]
    assert "algo.optimizer.lr=-1 must be zero or positive" in text  # the failure's sentence
    assert "DivergedError" in text
    best = next(line for line in text.splitlines() if "fake, bartunov_mnist_fc, fa**" in line)
    assert "`algo=fa`" in best and ("fa_diagnostics" in best or "fa_one_epoch" in best)
    for name in ("sensitivity.png", "curves.png"):
        assert (mixed / name).stat().st_size > 10_000
