"""Benchmark: what `callbacks=diagnostics` costs, as a share of training time, at its defaults.

For each rule, one fit on MNIST with Bartunov's FC net (6 x 256, batch 128; `--net`) in which
every diagnostic measures often (each batch; the Jacobian every 5th), so training steps and
measurements share the machine's load. The CPU time of every training step and of every
diagnostic's hooks is recorded; a diagnostic's cost at its configured `every_n_steps` N
(conf/callbacks/<name>.yaml) is (median cost of one measurement / N + median cost of a batch
without one) / median step, and the overhead is the sum over the diagnostics. CPU time
(`time.process_time`) with one torch thread keeps the figures steady on a shared, loaded machine.

    python scripts/bench_diagnostics.py --data-dir ../shared/data
    python scripts/bench_diagnostics.py --data-dir ../shared/data --rules dtp --batches 100
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from tpbench.benchmark import compose_train
from tpbench.diagnostics import DiagnosticCallback
from tpbench.train import build

CONF = Path(__file__).resolve().parents[1] / "conf"
NAMES = ("update_alignment", "weight_alignment", "reconstruction", "jacobian")
MEASURE_EVERY = {"update_alignment": 1, "weight_alignment": 1, "reconstruction": 1, "jacobian": 5}


def default_every(name: str) -> int:
    return OmegaConf.load(CONF / "callbacks" / f"{name}.yaml")[name].every_n_steps


def compose_run(rule: str, net: str, data_dir: str, batches: int, out: str):
    return compose_train(
        [
            f"algo={rule}", f"net={net}", "data=mnist", f"data.data_dir={data_dir}", "logger=none",
            "callbacks=diagnostics", "callbacks.model_checkpoint=null",
            "callbacks.progress_bar=null", "trainer.max_epochs=1", "test=false",
            f"+trainer.limit_train_batches={batches}", "+trainer.limit_val_batches=0",
            "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
            *(f"callbacks.{n}.every_n_steps={MEASURE_EVERY[n]}" for n in NAMES),
            *(f"callbacks.{n}.plot=false" for n in NAMES),
        ],
        out,
        data_dir,
    )  # fmt: skip


def timed(fn: Callable, sink: list[float]) -> Callable:
    """fn, appending the CPU seconds of each call to sink."""

    def wrapper(*args, **kwargs):
        start = time.process_time()
        result = fn(*args, **kwargs)
        sink.append(time.process_time() - start)
        return result

    return wrapper


def measure(rule: str, net: str, data_dir: str, batches: int) -> tuple[float, dict[str, tuple]]:
    """(median step seconds, {diagnostic: (seconds per measurement, idle seconds, active)})."""
    cfg = compose_run(rule, net, data_dir, batches, tempfile.mkdtemp())
    datamodule, module, trainer = build(cfg)
    steps: list[float] = []
    module.training_step = timed(module.training_step, steps)
    hooks = {}
    for callback in trainer.callbacks:
        if isinstance(callback, DiagnosticCallback):
            start, end = [], []
            callback.on_train_batch_start = timed(callback.on_train_batch_start, start)
            callback.on_train_batch_end = timed(callback.on_train_batch_end, end)
            hooks[callback] = (start, end)
    trainer.fit(module, datamodule=datamodule)
    costs = {}
    for callback, (start, end) in hooks.items():
        every = callback.every_n_steps
        per_batch = [a + b for a, b in zip(start, end)]
        busy = [c for i, c in enumerate(per_batch) if i % every == 0 and i > 0]  # 0: warm-up
        idle = [c for i, c in enumerate(per_batch) if i % every != 0] or [0.0]
        costs[callback.name] = (statistics.median(busy), statistics.median(idle),
                                bool(callback.history))  # fmt: skip
    return statistics.median(steps[1:]), costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=["bp", "fa", "dtp"])
    parser.add_argument("--net", default="bartunov_mnist_fc")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    every = {name: default_every(name) for name in NAMES}
    print(f"net={args.net}; defaults every_n_steps: {every}; CPU, {args.threads} torch thread(s)")
    for rule in args.rules:
        step, costs = measure(rule, args.net, args.data_dir, args.batches)
        total = 0.0
        print(f"\n{rule}: training step {1000 * step:.1f} ms (median)")
        for name, (busy, idle, active) in costs.items():
            share = (busy / every[name] + idle) / step  # cost per training step / step
            total += share
            state = "" if active else "  (nothing to measure for this rule)"
            print(f"  {name:17s} {1000 * busy:8.1f} ms per measurement = {busy / step:5.2f} "
                  f"steps; every {every[name]:4d}: {100 * share:5.2f} %{state}")  # fmt: skip
        print(f"  overhead of callbacks=diagnostics at the defaults: {100 * total:.1f} %")


if __name__ == "__main__":
    main()
