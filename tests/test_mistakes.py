"""Every command-line mistake we know of ends in one sentence: exit code 1, exactly one line on
stderr (`ERROR: ...` naming the bad value and what is valid), no traceback, and the files of
existing runs untouched. One row per mistake; each row is a real `python train.py` or `tpbench`
process, so what is checked is what a user sees. The classes: config groups, keys and values of
every type, search spaces, paths, impossible combinations, storage (a read-only directory, a full
disk), reports; then runs that stop as they should (Ctrl-C) or run quietly with one override.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import ROOT

TINY = [
    "data=fake", "data.train_size=128", "data.val_size=32", "data.test_size=32",
    "net.hidden=[16]", "trainer=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null", "threads=1",
]  # fmt: skip
SWEEP = ["-m", "hparams_search=bp_random", "hydra.sweeper.n_trials=1"]
TPBENCH = "from tpbench.cli import main; import sys; sys.exit(main())"
# train.py on a disk that fills up while a checkpoint is written: the write stores half its bytes,
# then fails with ENOSPC, as a real full disk does
FULL_DISK = """
import builtins, errno, io, os, sys
real_open = io.open
class Full:
    def __init__(self, file): self.file = file
    def write(self, data):
        self.file.write(bytes(data)[: len(data) // 2]); self.file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.file.name)
    def __getattr__(self, name): return getattr(self.file, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self.file.close()
def full_open(file, mode="r", *args, **kwargs):
    opened = real_open(file, mode, *args, **kwargs)
    return Full(opened) if "w" in mode and str(file).endswith(".ckpt") else opened
builtins.open = io.open = full_open
sys.argv[0] = "train.py"
from tpbench.train import main
main()
"""

# (id, command after `python train.py` or `tpbench`, words the sentence must contain); in a
# command, {run} is an existing finished run, {sweep_logs} the log dir of an existing sweep,
# {logs} a fresh log dir, {ckpt} a checkpoint of another model, {empty} an empty directory,
# {readonly} a read-only directory, {data} a directory holding MNIST/raw/, {started_badly} a
# directory whose only run failed at start-up
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
    ("unknown rule", ["train", "algo=dpt"],
     "algo=dpt is not an option of algo (no conf/algo/dpt.yaml); closest: dtp"),
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
    # config groups: a typo is never the default config, a search space never a single run
    ("typo'd experiment", ["train", "experiment=bartunov_mnist_fc_dpt"],
     "experiment=bartunov_mnist_fc_dpt is not an option of experiment (no conf/experiment/"
     "bartunov_mnist_fc_dpt.yaml); closest: bartunov_mnist_fc_dtp"),
    ("search space without -m", ["train", "hparams_search=bp_random"], "add -m"),
    ("typo'd search space", ["sweep", "hparams_search=bp_rnd"], "closest: bp_random"),
    # keys: the closest valid key, not Hydra's +key= hint
    ("unknown group key", ["train", "nett=fc"], "nett=fc: there is no key nett; did you mean net?"),
    ("unknown data key", ["train", "data.batchsize=32"], "did you mean data.batch_size"),
    # values against the type the built class takes (else its default's)
    ("a word for a number", ["train", "algo.optimizer.lr=abc"],
     "algo.optimizer.lr=abc is not valid: algo.optimizer.lr takes a number"),
    ("a word for a boolean", ["train", "test=no"],
     "test=no is not valid: test takes true or false"),
    ("a misspelt choice", ["train", "trainer.precision=16mixed"], "closest: 16-mixed"),
    # search spaces that cannot be drawn from
    ("empty interval", ["sweep", "algo.optimizer.lr=interval(0.1,0.01)"], "is an empty interval"),
    ("log scale from 0", ["sweep", "hydra.sweeper.params.algo.optimizer.lr=tag(log,interval(0,1))"],
     "cannot be searched on a log scale"),
    # paths and impossible combinations, each with the sentence about itself
    ("ckpt_path a directory", ["train", "ckpt_path={empty}"], "is a directory, not a checkpoint"),
    ("net=torch with dtp", ["plain", "data=fake", "net=torch", "algo=dtp", "trainer=cpu"],
     "algo 'dtp' cannot train net=torch"),
    ("16-mixed with dtp", ["train", "algo=dtp", "net.hidden=[16,16]", "trainer.precision=16-mixed"],
     "trainer.precision=16-mixed is not supported by DTP"),
    ("data_dir one level deep", ["plain", "data=mnist", "data.data_dir={data}/MNIST",
     "data.download=false", "trainer=cpu"], "they are under {data}: pass data.data_dir={data}."),
    ("batch over the data", ["train", "data.batch_size=1000"],
     "data.batch_size=1000 is larger than the 96 training samples"),
    # storage
    ("read-only log dir", ["train", "hydra.run.dir={readonly}/run"], "is not writable"),
    # reports
    ("report of start-up failures", ["report", "{started_badly}"], "got past start-up"),
]  # fmt: skip


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def existing(tmp_path_factory, readonly) -> dict[str, Path]:
    """A finished run, a finished one-trial sweep, a checkpoint of a 2x wider net, a run that
    failed at start-up, and the MNIST file names (empty) in data/MNIST/raw."""
    root = tmp_path_factory.mktemp("existing")
    for args in (
        [*TINY, f"hydra.run.dir={root / 'run'}"],
        [*SWEEP, *TINY, f"paths.log_dir={root / 'sweep'}"],
        [*TINY, "net.hidden=[32]", f"hydra.run.dir={root / 'wide'}"],
    ):
        subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, check=True, timeout=300)
    bad = ["data=mnist", "data.data_dir=/nonexistent", f"hydra.run.dir={root / 'bad' / 'run'}"]
    subprocess.run([sys.executable, "train.py", *bad], cwd=ROOT, capture_output=True, timeout=300)
    raw = root / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        (raw / f"{name}-ubyte.gz").touch()
    (root / "empty").mkdir()
    ckpt = root / "wide" / "checkpoints" / "last.ckpt"
    return {"root": root, "run": root / "run", "sweep_logs": root / "sweep", "ckpt": ckpt,
            "empty": root / "empty", "data": root / "data", "started_badly": root / "bad",
            "readonly": readonly}  # fmt: skip


@pytest.fixture(scope="module")
def readonly(tmp_path_factory):
    """A directory no one may write into: a read-only tmpfs as root (root ignores modes)."""
    path = tmp_path_factory.mktemp("readonly")
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        yield None  # no way to make one here: its rows skip
        return
    yield path
    subprocess.run(["umount", str(path)], check=True)


def command(kind: str, args: list[str], logs: Path) -> list[str]:
    if kind == "train":
        return [sys.executable, "train.py", *TINY, f"paths.log_dir={logs}", *args]
    if kind == "plain":  # the defaults, no TINY
        return [sys.executable, "train.py", f"paths.log_dir={logs}", *args]
    if kind == "sweep":
        return [sys.executable, "train.py", *SWEEP, *TINY, f"paths.log_dir={logs}", *args]
    if kind == "full disk":
        return [sys.executable, "-c", FULL_DISK, *TINY, f"paths.log_dir={logs}", *args]
    return [sys.executable, "-c", TPBENCH, kind, *args]


def run(argv: list[str], tmp_path: Path, logs: Path, env: dict | None = None):
    """The command as a user runs it, without a W&B login."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    environment |= {"HOME": str(tmp_path), "NETRC": str(tmp_path / "none"), **(env or {})}
    return subprocess.run(
        command(argv[0], argv[1:], logs), cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(("words", "argv"), [(m[2], m[1]) for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])  # fmt: skip
def test_mistake_is_one_sentence(existing, tmp_path, words, argv):
    if "trainer=gpu" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if any("{readonly}" in a for a in argv) and existing["readonly"] is None:
        pytest.skip("no read-only directory can be made here")
    places = {k: str(v) for k, v in existing.items()}
    args = [a.format(**places) for a in argv[1:]]
    words = words.format(**places)
    logs = existing["sweep_logs"] if argv[0] == "sweep" else tmp_path / "logs"
    before = snapshot(existing["root"])
    result = run([argv[0], *args], tmp_path, logs)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr[-3000:]
    assert words in lines[0]
    after = snapshot(existing["root"])
    changed = [p for p in after if "failing" not in p and before.get(p) != after[p]]
    assert not changed, changed
    assert not (existing["data"] / "MNIST" / "MNIST").exists()  # nothing downloaded, nor created


def test_full_disk_leaves_no_half_written_checkpoint(tmp_path):
    """The first checkpoint fills the disk: one sentence, the run marked failed, and no
    checkpoint (nor a temporary file) left under any name."""
    run_dir = tmp_path / "logs" / "run"
    result = run(["full disk", f"hydra.run.dir={run_dir}"], tmp_path, tmp_path / "logs")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("ERROR: Cannot write") and "the disk is full" in lines[0]
    assert not list(run_dir.rglob("*.ckpt")), list(run_dir.rglob("*"))
    state = OmegaConf.load(run_dir / "run.yaml")
    assert state.state == "failed" and "the disk is full" in state.reason


# (id, arguments after `python train.py` TINY-like, environment, exit code, words on stderr)
STOPS = [
    ("ctrl-c", ["trainer.max_epochs=3", "+callbacks.killer._target_=tests.killer.KillOnce",
     "+callbacks.killer.epoch=1", "+callbacks.killer.marker={tmp}/marker",
     "+callbacks.killer.signum=2", "hydra.run.dir={tmp}/run"], {}, 130,
     "WARNING: Stopped by Ctrl-C in {tmp}/run after epoch 1 of 3 ({tmp}/run/checkpoints/last.ckpt "
     "holds it); to continue from there: tpbench resume {tmp}/run"),
    ("the bar off with one override", ["trainer.enable_progress_bar=false"], {}, 0, ""),
    ("W&B offline, quietly", ["logger=wandb"], {"WANDB_MODE": "offline"}, 0, ""),
]  # fmt: skip


def default_ctrl_c() -> None:
    """In the child before exec: a background job (`make test &`) ignores SIGINT, and Python
    started that way would too; Ctrl-C must raise KeyboardInterrupt as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("args", "env", "code", "words"), [s[1:] for s in STOPS],
                         ids=[s[0] for s in STOPS])  # fmt: skip
def test_run_ends_as_said(tmp_path, args, env, code, words):
    """Ctrl-C says where the run stopped and how to resume (exit 130); turning the bar off is
    one override; an offline W&B run adds no summary to the console."""
    bar_on = [a for a in TINY if "progress_bar" not in a]
    args = [a.format(tmp=tmp_path) for a in args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | env
    result = subprocess.run(
        [sys.executable, "train.py", *bar_on, f"paths.log_dir={tmp_path}", *args], cwd=ROOT,
        env=environment, capture_output=True, text=True, timeout=300, preexec_fn=default_ctrl_c,
    )  # fmt: skip
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Run history" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("wandb: ")]
    assert lines == ([words.format(tmp=tmp_path)] if words else []), result.stderr[-3000:]
