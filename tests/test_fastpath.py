"""The GPU path: the host-read detector (tests/test_every_rule.py runs every rule under it), the
loss watch, 16-bit precision and strategy checks, plain-loop driving of a rule (what `make bench`
times), torch.compile."""

from __future__ import annotations

import csv
import traceback
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import open_dict
from torch.utils._python_dispatch import TorchDispatchMode

from tests.test_ddp import fit_weights, run_config
from tpbench.algorithms.loss_watch import LossWatch
from tpbench.algorithms.sample_mean import SampleMean
from tpbench.algorithms.tasks import make_task
from tpbench.benchmark import LiveTensorBytes, measure, table
from tpbench.errors import ConfigError
from tpbench.train import build, train

# ops whose result the host must wait for: a scalar read, or an output whose size depends on data
HOST_READS = {"_local_scalar_dense", "nonzero", "unique", "_unique2", "unique_dim",
              "unique_consecutive", "masked_select", "bincount", "repeat_interleave"}  # fmt: skip


def _in_one_hot() -> bool:
    """F.one_hot checks its class range with a host read on CPU only; on CUDA it relies on a
    device assert (aten/src/ATen/native/Onehot.cpp), so a GPU step does not wait for it."""
    return any("one_hot(" in (frame.line or "") for frame in traceback.extract_stack())


class HostReadLog(TorchDispatchMode):
    """Records every op that makes the host wait for a device value (on a GPU)."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name == "index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]
        )
        if (name in HOST_READS or bool_index) and not _in_one_hot():
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


class WatchSteps(L.Callback):
    """Runs every training step (training_step, optimizer steps, logging) under HostReadLog."""

    def __init__(self):
        self.reads = HostReadLog()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.reads.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.reads.__exit__(None, None, None)


def test_loss_watch_sums_on_the_device_and_reads_each_copy_one_poll_later():
    watch = LossWatch()
    watch.add(torch.tensor(1.0))
    assert watch.poll("at step 0") is None  # nothing copied yet
    watch.add(torch.tensor(float("nan")))
    assert watch.poll("at step 1") is None  # the copy from step 0 was finite
    assert watch.poll("at step 2") == "training loss became nan at step 1"
    watch.add(torch.tensor(float("inf")))
    assert watch.epoch_end("at the end")[1] == "training loss became nan at the end"  # sticky
    for loss in (2.0, 3.0):
        watch.add(torch.tensor(loss))
    assert watch.epoch_end("next epoch") == (2.5, None)  # each epoch: a fresh sum and its mean


def test_sample_mean_is_the_epochs_accuracy_and_error_over_every_rank():
    """Σ s_n / Σ N over the epoch's batches (unequal sizes weigh by their samples), summed over
    ranks by the reducer (also from a rank without samples), NaN when empty, fresh after a read."""
    classes, recon = make_task("classification"), make_task("reconstruction")
    accuracy, error = SampleMean(), SampleMean()
    outs = [torch.randn(n, 10) for n in (7, 3)]
    labels = [torch.randint(0, 10, (n,)) for n in (7, 3)]
    for out, y in zip(outs, labels):
        accuracy.add(classes.sample_scores(out, y))
        error.add(recon.sample_scores(out, out + 1))  # ½‖1‖² = 5 for each sample
    out, y = torch.cat(outs), torch.cat(labels)
    assert accuracy.pop() == (out.argmax(1) == y).float().mean()
    assert torch.isclose(error.pop(), torch.tensor(5.0))
    assert accuracy.pop().isnan()
    accuracy.add(torch.tensor([True, False, False, False]))  # rank 0: 1 of 4

    def other_rank(totals):  # rank 1 saw 6 of 6: Σ = (1 + 6) / (4 + 6)
        totals.add_(torch.tensor([6, 6]))

    assert accuracy.pop(other_rank) == torch.tensor(0.7)
    assert accuracy.pop(other_rank) == 1.0  # a rank that saw no sample still joins the sum


def test_epoch_loss_is_logged_once_per_epoch(make_cfg, tmp_path):
    """train/loss_epoch is the mean of the epoch's step losses, without a self.log per step."""
    # 320 training samples / batch 64 = 5 batches per epoch
    small = ["net=fc", "net.hidden=[32]", "data.shape=[1,8,8]", "data.train_size=384",
             "data.val_size=64", "data.test_size=64"]  # fmt: skip
    train(make_cfg([*small, "trainer.max_epochs=2", "trainer.log_every_n_steps=2", "test=false"]))
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    epoch = [float(r["train/loss_epoch"]) for r in rows if r["train/loss_epoch"]]
    steps = [float(r["train/loss_step"]) for r in rows if r["train/loss_step"]]
    assert len(epoch) == 2 and epoch[1] < epoch[0] and len(steps) == 2 * 5 // 2


def test_16bit_precision_is_refused_for_target_propagation(tmp_path):
    cfg = run_config("dtp", "cpu", 16, tmp_path)
    with open_dict(cfg):
        cfg.trainer.precision = "bf16-mixed"
    with pytest.raises(ConfigError, match="precision=bf16-mixed is not supported by DTP"):
        build(cfg)


def test_bf16_backprop_trains_on_cpu(tmp_path):
    cfg = run_config("bp", "cpu", 16, tmp_path)
    with open_dict(cfg):
        cfg.trainer.precision = "bf16-mixed"
    datamodule, rule, trainer = build(cfg)
    before = rule.net[0].weight.detach().clone()
    trainer.fit(rule, datamodule=datamodule)
    assert torch.isfinite(rule.net[0].weight).all() and not torch.equal(before, rule.net[0].weight)


def test_reducer_ddp_strategy_is_refused(tmp_path):
    cfg = run_config("dtp", "cpu", 16, tmp_path)
    with open_dict(cfg):
        cfg.trainer.strategy = "ddp"
    with pytest.raises(ConfigError, match="use trainer=ddp"):
        build(cfg)


def test_live_tensor_bytes_counts_what_is_alive_at_once():
    with LiveTensorBytes() as live:
        a = torch.ones(1000)  # 4000 bytes
        b = a * 2  # + 4000
        a.add_(1)  # in place: nothing new
        c = b.view(10, 100)  # a view: nothing new
        del a
        d = c + 1  # + 4000, a freed before: 8000 live
    assert (live.peak, live.current) == (8000, 8000) and d.shape == (10, 100)


def test_bench_measures_a_rule_on_a_net():
    result = measure("dtp", "mnist_fc", 16, 2, 1, "cpu", "wall", 1)
    assert result.bare_s > 0 and result.fit_s > 0 and result.peak_bytes > 4 * 535_818
    line = table("MNIST FC", 16, {"bp": result, "fa": "n/a: because"})
    assert line[2].startswith("bp") and line[3] == "fa       n/a: because"


@pytest.mark.parametrize("algo", ["bp", "dtp"])
def test_plain_loop_trains_exactly_like_the_trainer(algo, tmp_path):
    """What `make bench` compares: `train_step` driven by a bare loop with the rule's own
    optimizers updates the weights exactly as the Lightning fit loop does."""
    trained, _ = fit_weights(algo, "cpu", 16, tmp_path)
    datamodule, rule, _ = build(run_config(algo, "cpu", 16, tmp_path))
    datamodule.setup("fit")
    rule.standalone_optimizers()
    batches = iter(datamodule.train_dataloader())
    for _ in range(3):
        rule.train_step(*next(batches))
    for name, w in rule.net.state_dict().items():
        torch.testing.assert_close(w, trained[name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
def test_compiled_layers_train_like_eager_ones(tmp_path: Path):
    eager, _ = fit_weights("dtp", "cpu", 16, tmp_path / "eager")
    cfg = run_config("dtp", "cpu", 16, tmp_path / "compiled")
    cfg.compile = True
    datamodule, rule, trainer = build(cfg)
    assert all(layer._compiled_call_impl is not None for layer in rule.net)
    trainer.fit(rule, datamodule=datamodule)
    for name, w in rule.net.state_dict().items():
        torch.testing.assert_close(w, eager[name], rtol=1e-4, atol=1e-5, msg=name)


class CountsBackward(L.Callback):
    """A callback with a backward hook: Lightning's backward must run so that it is called."""

    def __init__(self):
        self.calls = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1


@pytest.mark.parametrize("algo", ["bp", "dtp"])
def test_plain_backward_trains_like_lightnings_and_gives_way_to_backward_hooks(algo, tmp_path):
    """32-bit without backward hooks, manual_backward is plain autograd (no hook dispatch); a
    callback with a backward hook gets Lightning's backward, and both train alike."""
    weights = []
    for hook in (None, CountsBackward()):
        datamodule, rule, trainer = build(run_config(algo, "cpu", 16, tmp_path))
        trainer.callbacks.extend([hook] if hook else [])
        trainer.fit(rule, datamodule=datamodule)
        assert rule.backward_is_plain == (hook is None)
        assert hook is None or hook.calls >= trainer.global_step > 0
        weights.append(rule.net.state_dict())
    for name, w in weights[0].items():
        torch.testing.assert_close(w, weights[1][name], rtol=0, atol=0, msg=name)
