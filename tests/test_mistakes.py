"""Every command-line mistake we know of ends in one sentence: exit code 1, exactly one line on
stderr (`ERROR: ...` naming the bad value and what is valid), no traceback, and the files of
existing runs untouched. One row per mistake; each row is a real `python train.py` or `tpbench`
process, so what is checked is what a user sees.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

TINY = [
    "data=fake", "data.train_size=128", "data.val_size=32", "data.test_size=32",
    "net.hidden=[16]", "trainer=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null", "threads=1",
]  # fmt: skip
SWEEP = ["-m", "hparams_search=bp_random", "hydra.sweeper.n_trials=1"]
TPBENCH = "from tpbench.cli import main; import sys; sys.exit(main())"

# (id, command after `python train.py` or `tpbench`, words the sentence must contain); in a
# command, {run} is an existing finished run, {sweep_logs} the log dir of an existing sweep,
# {logs} a fresh log dir, {ckpt} a checkpoint of another model, {empty} an empty directory
MISTAKES = [
    ("missing ckpt_path", ["train", "ckpt_path=/nonexistent/last.ckpt"], "does not exist"),
    ("ckpt of another model", ["train", "ckpt_path={ckpt}"], "holds another model"),
    ("negative lr", ["train", "algo.optimizer.lr=-0.1"], "algo.optimizer.lr=-0.1 must be"),
    ("batch_size=0", ["train", "data.batch_size=0"], "data.batch_size=0 must be"),
    ("max_epochs=0", ["train", "trainer.max_epochs=0"], "trainer.max_epochs=0 must be"),
    ("threads=0", ["train", "threads=0"], "threads=0 must be"),
    ("wandb without login", ["train", "logger=wandb"], "WANDB_MODE=offline"),
    ("gpu without a gpu", ["train", "trainer=gpu"], "needs a CUDA GPU"),
    ("bf16 with dtp", ["train", "algo=dtp", "net.hidden=[16,16]", "trainer.precision=bf16-mixed"],
     "16-bit"),
    ("ddp with one device", ["train", "trainer=ddp"], "single cpu device"),
    ("unknown rule", ["train", "algo=dpt"], "Could not find 'algo/dpt'"),
    ("alternating in one epoch", ["train", "algo=dtp_alt", "net.hidden=[16,16]"],
     "first trains its forward weights in epoch 2"),
    ("unknown part", ["train", "algo=dtp", "algo/inverse_loss=ldlr"], "algo/inverse_loss/ldlr"),
    ("drl on lee's top target", ["train", "algo=dtp", "algo/inverse_loss=drl",
     "net.hidden=[16,16]"], "does not learn"),
    ("unknown key", ["train", "trainer.max_epoch=3"], "trainer.max_epoch"),
    ("override without =", ["train", "trainer.max_epochs"], "trainer.max_epochs"),
    ("unknown rule option", ["train", "+algo.momentum=0.9"], "momentum"),
    ("missing data", ["plain", "data=mnist", "data.data_dir=/nonexistent"], "/nonexistent"),
    ("sweep restarted differently", ["sweep", "seed=4"], "was started with other overrides"),
    ("sweep over failure budget", ["sweep", "hydra.sweeper.max_failure_rate=0",
     "hydra.sweeper.n_trials=2", "algo.optimizer.lr=-1", "sweep_name=failing"], "max_failure"),
    ("resume changing the net", ["resume", "{run}", "net.hidden=[8]"], "would change"),
    ("resume a non-run", ["resume", "{empty}"], "not a tpbench run directory"),
    ("resume a missing dir", ["resume", "/nonexistent"], "is not a directory"),
    ("resume with a bad value", ["resume", "{run}", "trainer.max_epochs=0"], "must be"),
    ("continue without results", ["continue", "{empty}"], "has no best trial"),
    ("report of no runs", ["report", "{empty}"], "No runs"),
]  # fmt: skip


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> dict[str, Path]:
    """A finished run, a finished one-trial sweep, and a checkpoint of a 2x wider net."""
    root = tmp_path_factory.mktemp("existing")
    for args in (
        [*TINY, f"hydra.run.dir={root / 'run'}"],
        [*SWEEP, *TINY, f"paths.log_dir={root / 'sweep'}"],
        [*TINY, "net.hidden=[32]", f"hydra.run.dir={root / 'wide'}"],
    ):
        subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, check=True, timeout=300)
    (root / "empty").mkdir()
    ckpt = root / "wide" / "checkpoints" / "last.ckpt"
    return {"root": root, "run": root / "run", "sweep_logs": root / "sweep", "ckpt": ckpt,
            "empty": root / "empty"}  # fmt: skip


def command(kind: str, args: list[str], logs: Path) -> list[str]:
    if kind == "train":
        return [sys.executable, "train.py", *TINY, f"paths.log_dir={logs}", *args]
    if kind == "plain":  # the defaults, no TINY
        return [sys.executable, "train.py", f"paths.log_dir={logs}", *args]
    if kind == "sweep":
        return [sys.executable, "train.py", *SWEEP, *TINY, f"paths.log_dir={logs}", *args]
    return [sys.executable, "-c", TPBENCH, kind, *args]


@pytest.mark.parametrize(("words", "argv"), [(m[2], m[1]) for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])  # fmt: skip
def test_mistake_is_one_sentence(existing, tmp_path, words, argv):
    if "trainer=gpu" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    places = {k: str(v) for k, v in existing.items()}
    args = [a.format(**places) for a in argv[1:]]
    logs = existing["sweep_logs"] if argv[0] == "sweep" else tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "NETRC": str(tmp_path / "none")}  # no W&B login here
    before = snapshot(existing["root"])
    result = subprocess.run(
        command(argv[0], args, logs), cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr[-3000:]
    assert words in lines[0]
    after = snapshot(existing["root"])
    changed = [p for p in after if "failing" not in p and before.get(p) != after[p]]
    assert not changed, changed
