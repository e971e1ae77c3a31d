"""Timing and memory of the learning rules' training steps (what `make bench` prints).

For one (rule, net) pair on fake data of the net's input shape, batch 128 by default:
- `bare`: the rule's `train_step` driven by a plain Python loop over the same device-resident
  batches, with the rule's own optimizers and no Lightning (`LearningRule.standalone_optimizers`);
- `fit`: the full Lightning fit loop (hooks, metric updates, logging, the divergence watch) for
  the same number of steps; its excess over `bare` is the framework's overhead;
- `bar`: `fit` with the progress bar a run shows (conf/callbacks/default.yaml), drawn as on a
  terminal into /dev/null: the overhead a user pays at the console;
- `peak`: the most tensor memory live at once during one step (weights, feedback, optimizer
  state, gradients, activations, temporaries; the dataset and the batch excluded), counted op by
  op with a dispatch mode, so it is exact on every device, CPU included.
Clocks: `wall` (perf_counter, synchronised on CUDA) or `cpu` (this process's CPU time, robust on a
shared, loaded CPU machine when torch uses one thread).
"""

from __future__ import annotations

import gc
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from tpbench.catalog import parallel_rule_names
from tpbench.errors import TpbenchError
from tpbench.train import CONFIG_DIR, build

# name -> config overrides, for every rule in conf/algo/ (tpbench.catalog); BP is the reference
# of the ratios. L-DRL with one feedback iteration, as the speed aims are stated (its default is
# K = 5: add algo.schedule.feedback_iterations=5 to compare).
EXTRA_OVERRIDES = {"ldrl": ["algo.schedule.feedback_iterations=1"]}
RULES: dict[str, list[str]] = {
    name: [f"algo={name}", *EXTRA_OVERRIDES.get(name, [])] for name in parallel_rule_names()
}
DEFAULT_RULES = ["bp", *(name for name in RULES if name != "bp")]


@dataclass(frozen=True)
class BenchNet:
    title: str
    overrides: list[str]  # the net and the data shape it is built for
    steps: int  # timed steps by default (after warm-up): fewer for slow nets
    rules: list[str] | None = None  # the rules that can train it, when not every default rule


NETS: dict[str, BenchNet] = {
    "mnist_fc": BenchNet(
        "MNIST FC (net=bartunov_mnist_fc: 784-256x6-10)",
        ["net=bartunov_mnist_fc", "data.shape=[1,28,28]"],
        20,
    ),
    "cifar_fc": BenchNet(
        "CIFAR FC (bartunov_cifar_fc: 3072-1024x3-10)",
        ["net=bartunov_cifar_fc", "data.shape=[3,32,32]"],
        10,
    ),
    "cifar_lc": BenchNet(
        "CIFAR LC (bartunov_cifar_lc)", ["net=bartunov_cifar_lc", "data.shape=[3,32,32]"], 5
    ),
    "vgg": BenchNet(
        "simple VGG (ernoult_vgg, CIFAR 32x32)", ["net=ernoult_vgg", "data.shape=[3,32,32]"], 2
    ),
    "resnet20": BenchNet(
        "ResNet-20 (net=resnet20, CIFAR 32x32, batch norm): the feedback-alignment family",
        ["net=resnet20", "data.shape=[3,32,32]"],
        3,
        ["bp", "fa", "usf", "frsf", "brsf", "dfa"],
    ),
}


@dataclass
class Result:
    bare_s: float  # seconds per step, plain loop
    fit_s: float  # seconds per step, Lightning fit loop
    bar_s: float  # seconds per step, Lightning fit loop with the progress bar
    peak_bytes: int

    @property
    def overhead(self) -> float:
        return self.fit_s / self.bare_s - 1

    @property
    def bar_overhead(self) -> float:
        return self.bar_s / self.bare_s - 1


def compose_train(overrides: list[str], out: str, data_dir: str | None = None) -> DictConfig:
    """The composed train config for a script's own run: logs under `out`, data from `data_dir`
    (default `out`), no Hydra run directory."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths = {"root_dir": "", "output_dir": out, "log_dir": out, "data_dir": data_dir or out}
    return cfg


def compose_run(overrides: list[str], batch: int, steps: int, device: str) -> DictConfig:
    """The composed train config of one timing run: fake data for exactly `steps` batches, no
    validation, logging to no logger, no checkpoints, no progress bar."""
    return compose_train(
        [
            "data=fake", f"data.batch_size={batch}", f"data.train_size={batch * steps}",
            "data.val_size=0", "logger=none", "callbacks=none", "trainer.max_epochs=1",
            f"+trainer.limit_train_batches={steps}", "+trainer.limit_val_batches=0",
            "+trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
            "+trainer.enable_checkpointing=false", f"trainer.accelerator={device}",
            *overrides,
        ],
        str(Path(CONFIG_DIR).parent / "logs" / "bench"),
    )  # fmt: skip


def with_progress_bar(cfg: DictConfig) -> DictConfig:
    """The timing run's config with the default callbacks' progress bar, drawn as on a terminal
    but into /dev/null."""
    bar = OmegaConf.load(Path(CONFIG_DIR) / "callbacks" / "default.yaml").progress_bar
    devnull = {"_target_": "builtins.open", "file": os.devnull, "mode": "w"}
    bar.console_kwargs = {"file": devnull, "force_terminal": True, "width": 120}
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.trainer.enable_progress_bar = True
        cfg.callbacks = {"progress_bar": bar}
    return cfg


def make_clock(kind: str, device: torch.device) -> Callable[[], float]:
    """Seconds: wall time (waiting for the GPU first) or this process's CPU time."""
    if kind == "cpu":
        return time.process_time
    if device.type == "cuda":
        return lambda: (torch.cuda.synchronize(device), time.perf_counter())[1]
    return time.perf_counter


class _FitClock(L.Callback):
    """Clock reading at the start of step `first` and at the end of the last step."""

    def __init__(self, clock: Callable[[], float], first: int):
        self.clock, self.first = clock, first
        self.start = self.stop = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.first:
            self.start = self.clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.stop = self.clock()


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensor storages alive at once: every op's freshly allocated outputs are
    counted until they are freed (`track` adds tensors that existed before, e.g. gradients)."""

    def __init__(self):
        super().__init__()
        self.sizes: dict[int, int] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, tuple | list) else (out,)
        for result, spec in zip(outs, func._schema.returns):
            if spec.alias_info is None:  # a new tensor, not a view or an in-place result
                self.track(*[t for t in tree_leaves(result) if isinstance(t, torch.Tensor)])
        return out

    def track(self, *tensors: torch.Tensor) -> None:
        for tensor in tensors:
            storage = tensor.untyped_storage()
            key = id(storage)
            if key not in self.sizes:
                self.sizes[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.sizes.pop(key, 0)


def _state_bytes(rule, optimizers) -> int:
    """Weights, feedback tensors and optimizer state: memory the rule holds between steps."""
    tensors = [*rule.net.parameters(), *rule.net.buffers()]
    for optimizer in optimizers:
        for state in optimizer.state.values():
            tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def time_fit(cfg: DictConfig, warmup: int, clock_kind: str) -> float:
    """Seconds per step of the Lightning fit loop, after `warmup` steps."""
    datamodule, rule, trainer = build(cfg)
    clock = _FitClock(make_clock(clock_kind, trainer.strategy.root_device), warmup)
    trainer.callbacks.append(clock)
    trainer.fit(rule, datamodule=datamodule)
    return (clock.stop - clock.start) / (cfg.trainer.limit_train_batches - warmup)


def time_bare(cfg: DictConfig, warmup: int, clock_kind: str, device: str) -> tuple[float, int]:
    """(seconds per step of a plain loop calling `train_step`, peak bytes of one more step)."""
    datamodule, rule, _ = build(cfg)
    device_ = torch.device("cuda" if device == "gpu" else device)
    rule.to(device_)
    datamodule.setup("fit")
    datamodule.to_device(device_)
    optimizers = rule.standalone_optimizers()
    clock = make_clock(clock_kind, device_)
    start, steps = 0.0, 0
    for steps, (x, y) in enumerate(datamodule.train_dataloader(), 1):  # sliced on the device
        if steps == warmup + 1:
            start = clock()
        rule.train_step(x, y)
    seconds = (clock() - start) / (steps - warmup)
    grads = [p.grad for p in rule.parameters() if p.grad is not None]
    with LiveTensorBytes() as live:
        live.track(*grads)
        rule.train_step(x, y)
    return seconds, _state_bytes(rule, optimizers) + live.peak


def measure(
    rule: str, net: str, batch: int, steps: int, warmup: int, device: str, clock: str, rounds: int
) -> Result:
    """Bare loop, fit loop and peak memory of one (rule, net) pair; the loops take turns for
    `rounds` rounds and each keeps its fastest round (load from other processes and the memory
    allocator's page faults only ever add time)."""
    cfg = compose_run(RULES[rule] + NETS[net].overrides, batch, warmup + steps, device)
    result = Result(float("inf"), float("inf"), float("inf"), 0)
    for _ in range(rounds):
        bare_s, result.peak_bytes = time_bare(cfg, warmup, clock, device)
        result.bare_s = min(result.bare_s, bare_s)
        result.fit_s = min(result.fit_s, time_fit(cfg, warmup, clock))
        result.bar_s = min(result.bar_s, time_fit(with_progress_bar(cfg), warmup, clock))
        gc.collect()  # free this round's nets (Trainer <-> module cycles) before the next
    return result


def table(title: str, batch: int, results: dict[str, Result | str]) -> list[str]:
    """One net's table: a row per rule (or the reason it did not run)."""
    lines = [
        f"{title}, batch {batch}",
        f"{'rule':8s} {'step ms':>9s} {'x BP':>6s} {'fit ms':>9s} {'overhead':>17s} "
        f"{'+bar':>7s} {'samples/s':>10s} {'peak MB':>8s}",
    ]
    bp = results.get("bp")
    for name, r in results.items():
        if isinstance(r, str):
            lines.append(f"{name:8s} {r}")
            continue
        ratio = f"{r.bare_s / bp.bare_s:6.2f}" if isinstance(bp, Result) else f"{'-':>6s}"
        lines.append(
            f"{name:8s} {r.bare_s * 1e3:9.2f} {ratio} {r.fit_s * 1e3:9.2f} "
            f"{(r.fit_s - r.bare_s) * 1e3:+7.2f} ms {r.overhead:+6.1%} {r.bar_overhead:+7.1%} "
            f"{batch / r.fit_s:10.0f} {r.peak_bytes / 2**20:8.1f}"
        )
    return lines


def run_safely(fn: Callable[..., Result], *args) -> Result | str:
    """fn(*args), or the one sentence why the rule cannot run on this net."""
    try:
        return fn(*args)
    except TpbenchError as error:
        return f"n/a: {error}"
