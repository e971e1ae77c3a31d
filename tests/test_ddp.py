"""DDP (trainer=ddp_cpu: 2 CPU processes, gloo) trains every rule exactly like one process.

A few SGD steps with 2 ranks x batch B must leave the same weights on both ranks, equal (within
float tolerance) to one process training on the concatenated batch 2B: each rank's loss is a mean
over its B samples, so averaging the gradients over the ranks gives the gradient of the mean over
2B, and SGD's step is linear in it. Noise-free settings (σ = 0) make the two runs comparable.

This file is also the worker the test launches: `python tests/test_ddp.py OUT_DIR RULE...` fits
each rule with trainer=ddp_cpu (Lightning re-runs the same command for rank 1) and saves each
rank's weights to OUT_DIR/<rule>_rank<r>.pt.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from tpbench.catalog import rule_names

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS, VAL = 8, 3, 16  # per-rank batch, SGD steps, validation samples (unused)
FAST_RULES = ["bp", "dtp"]  # every other rule of conf/algo/ runs with -m slow
SLOW_RULES = [name for name in rule_names() if name not in FAST_RULES]
TIMEOUT_S = 300
EQUALITY_TEST = "test_ddp_equals_one_process_on_concatenated_batch"


def run_config(algo: str, trainer: str, batch_size: int, out: Path, noise: bool = False):
    """A tiny SGD config of `algo` (4-layer FC on 8x8 fake data), noise-free unless `noise`
    (then each rule's own σ: the inverse losses draw from torch's global generator)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"algo={algo}", f"trainer={trainer}", "data=fake", "data.shape=[1,8,8]",
                "data.num_classes=4", f"data.batch_size={batch_size}",
                f"data.train_size={VAL + 2 * BATCH * STEPS}", f"data.val_size={VAL}",
                "net=fc", "net.hidden=[16,16,16]", "logger=none", "callbacks=none",
                f"+trainer.limit_train_batches={STEPS}", "trainer.max_epochs=1",
                "+trainer.limit_val_batches=0", "+trainer.num_sanity_val_steps=0",
                "+trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false",
            ],
        )  # fmt: skip
    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.05}
    with open_dict(cfg):
        cfg.paths = {"root_dir": str(ROOT), "output_dir": str(out), "log_dir": str(out),
                     "data_dir": str(out)}  # fmt: skip
        cfg.algo.optimizer = OmegaConf.create(sgd)
        if cfg.algo.get("feedback_optimizer") is not None:
            cfg.algo.feedback_optimizer = OmegaConf.create(sgd)
        if cfg.algo.get("inverse_loss") is not None and not noise:
            cfg.algo.inverse_loss.sigma = 0.0  # σ = 0: no per-rank noise
            if cfg.algo.inverse_loss._target_.endswith(".DRL"):  # divides by σ²: keep σ, and
                cfg.algo.inverse_loss.sigma = 1.0  # keep its G fixed instead (feedback lr 0),
                cfg.algo.feedback_optimizer.lr = 0.0  # so the forward updates stay comparable
        if str(cfg.algo.get("schedule", {}).get("_target_", "")).endswith(".Alternating"):
            cfg.trainer.max_epochs = 2  # an epoch of feedback training, then one of forward
    return cfg


def fit_weights(algo: str, trainer: str, batch_size: int, out: Path, fit: bool = True):
    """The net's weights and buffers after STEPS batches (or before any with fit=False), and the
    trainer (its global rank, its logged scores)."""
    from tpbench.train import build

    cfg = run_config(algo, trainer, batch_size, out)
    datamodule, rule, trainer_ = build(cfg)
    if fit:
        trainer_.fit(rule, datamodule=datamodule)
        completed = trainer_.fit_loop.epoch_loop.batch_progress.total.completed
        assert completed == STEPS * cfg.trainer.max_epochs
    weights = {k: v.detach().clone() for k, v in rule.net.state_dict().items()}
    return weights, trainer_


def worker(out: Path, rules: list[str]) -> None:
    """Each rank: fit every rule with DDP, save its weights."""
    from tpbench.distributed import set_threads

    set_threads(1)  # as train.py does with threads=1: both ranks share this machine's cores
    for algo in rules:
        weights, trainer = fit_weights(algo, "ddp_cpu", BATCH, out)
        train_acc = trainer.callback_metrics["train/acc"]
        torch.save(
            {"weights": weights, "train/acc": train_acc},
            out / f"{algo}_rank{trainer.global_rank}.pt",
        )


@pytest.fixture(scope="module")
def ddp_weights(request, tmp_path_factory) -> Path:
    """One 2-process DDP job for every rule the selected tests ask for."""
    rules = sorted(
        {
            item.callspec.params["algo"]
            for item in request.session.items
            if getattr(item, "originalname", "") == EQUALITY_TEST
        }
    )
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, str(Path(__file__).resolve()), str(out), *rules]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.parametrize(
    "algo", FAST_RULES + [pytest.param(r, marks=pytest.mark.slow) for r in SLOW_RULES]
)
def test_ddp_equals_one_process_on_concatenated_batch(algo, ddp_weights, tmp_path):
    assert_equals_one_process(algo, ddp_weights, tmp_path)


def assert_equals_one_process(algo: str, ddp_weights: Path, tmp_path: Path) -> None:
    """Both ranks' weights (ddp_weights/<algo>_rank<r>.pt) equal one process's on 2x the batch,
    and so does the epoch's training accuracy (each rank's count summed over the ranks)."""
    saved = [torch.load(ddp_weights / f"{algo}_rank{rank}.pt") for rank in (0, 1)]
    (rank0, rank1), accuracies = [s["weights"] for s in saved], [s["train/acc"] for s in saved]
    single, trainer = fit_weights(algo, "cpu", 2 * BATCH, tmp_path)
    initial, _ = fit_weights(algo, "cpu", 2 * BATCH, tmp_path, fit=False)
    assert accuracies[0] == accuracies[1] == trainer.callback_metrics["train/acc"], algo
    assert rank0.keys() == rank1.keys() == single.keys()
    for name, w in single.items():
        assert torch.equal(rank0[name], rank1[name]), f"{algo}: {name} differs between ranks"
        torch.testing.assert_close(rank0[name], w, rtol=1e-5, atol=1e-6, msg=f"{algo}: {name}")
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    assert moved > 1e-4, f"{algo}: {STEPS} SGD steps did not change the weights"


@pytest.mark.slow
def test_ddp_run_writes_logs_and_checkpoints_once(tmp_path):
    """`train.py trainer=ddp_cpu`: rank 0 alone writes metrics (one row per epoch) and checkpoints;
    rank 1 adds only its own Hydra log to the same run directory."""
    cmd = [
        sys.executable, "train.py", "trainer=ddp_cpu", "algo=dtp", "data=fake", "net=fc",
        "net.hidden=[32,32,32]", "trainer.max_epochs=2", "threads=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}",
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows if r["val/err"]] == ["0", "1"]
    assert [r["epoch"] for r in rows if r["train/loss_epoch"]] == ["0", "1"]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    logs = sorted(p.name for p in tmp_path.glob("*.log"))
    assert logs == ["train.log", "train_ddp_process_1.log"]


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2:])
