"""Benchmark: each learning rule's training-step time over backprop's on the same net, one run.

For every net in NETS and every rule in RULES, the run composes the real config (`algo=... net=...
data=fake`, batch 128), fits a few steps and times the rule's `train_step` (forward, its backward
or feedback computations, optimizer steps), without Lightning's logging around it. Rules are
timed in rounds (bp, fa, dfa, ..., bp, fa, dfa, ...) and each rule's best round median counts,
so load from other processes on a shared machine hits all rules alike. Then it prints the DFA
feedback memory (all D_l) of the nets and of Bartunov's ImageNet LC net, from their configs.

    python scripts/bench_rules.py                                  # every rule x every net
    python scripts/bench_rules.py --rules bp fa dfa --nets mnist_fc --steps 30 --rounds 3
    python scripts/bench_rules.py --device cuda
    python scripts/bench_rules.py --threads 1 --cpu-time      # a shared, loaded CPU machine

`make bench` (scripts/bench.py) is the main suite: per net, each rule's plain-loop step and ratio
to BP, the Lightning overhead, samples/s and peak memory. This script keeps a second view (each
rule's step timed inside the Trainer, the rules interleaved round by round) and the DFA memory
table. Rules, nets and the run config are shared with it (tpbench.benchmark: RULES, NETS).
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tpbench.algorithms.direct_feedback_alignment import direct_feedback_bytes
from tpbench.benchmark import NETS as BENCH_NETS
from tpbench.benchmark import RULES, compose_run
from tpbench.train import build

ROOT = Path(__file__).resolve().parents[1]

NETS = {name: net.overrides for name, net in BENCH_NETS.items()}
DFA_MEMORY = {  # net config -> (input shapes, num_classes) for the D_l memory table
    "bartunov_mnist_fc": ([(1, 28, 28)], 10),
    "bartunov_cifar_lc": ([(3, 32, 32)], 10),
    "bartunov_imagenet_lc": ([(3, 32, 32), (3, 224, 224)], 1000),
}


def time_steps(rule_overrides: list[str], net_overrides: list[str], args) -> float:
    """Median seconds of the rule's train_step over args.steps steps after args.warmup."""
    cfg = compose_run(
        rule_overrides + net_overrides, args.batch_size, args.warmup + args.steps, args.device
    )
    datamodule, rule, trainer = build(cfg)
    times: list[float] = []
    step = rule.train_step
    clock = time.process_time if args.cpu_time else time.perf_counter

    def timed(x, y):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = clock()
        out = step(x, y)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(clock() - start)
        return out

    rule.train_step = timed  # this script's stopwatch around the rule's own step
    trainer.fit(rule, datamodule=datamodule)
    del rule.train_step, rule, trainer, datamodule  # free the net before the next one
    gc.collect()
    return statistics.median(times[args.warmup :])


def dfa_memory_lines() -> list[str]:
    """MB of all D_l per net config, built on the meta device (shapes only, no memory)."""
    lines = []
    for name, (shapes, num_classes) in DFA_MEMORY.items():
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            net_cfg = compose("train", overrides=[f"net={name}"]).net
        for shape in shapes:
            with torch.device("meta"):
                net = instantiate(net_cfg, in_shape=shape, num_classes=num_classes)
            mb = direct_feedback_bytes(net) / 2**20
            lines.append(
                f"{name:22s} input {str(shape):14s} {num_classes:5d} classes: {mb:9.1f} MB"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument(
        "--nets", nargs="+", default=["mnist_fc", "cifar_fc", "cifar_lc"], choices=list(NETS)
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--cpu-time", action="store_true",
        help="time with this process's CPU time instead of wall time (CPU runs on a shared, "
        "loaded machine; use with --threads 1)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rules = ["bp", *[r for r in args.rules if r != "bp"]]

    clock = "process CPU time" if args.cpu_time else "wall time"
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, "
        f"batch {args.batch_size}, {clock}"
    )
    print(f"{'net':10s} " + " ".join(f"{r:>8s}" for r in rules) + "   (ms/step; ratio to bp)")
    for net in args.nets:
        best = dict.fromkeys(rules, float("inf"))
        for _ in range(args.rounds):
            for rule in rules:
                best[rule] = min(best[rule], time_steps(RULES[rule], NETS[net], args))
        print(f"{net:10s} " + " ".join(f"{best[r] * 1e3:8.2f}" for r in rules))
        print(f"{'':10s} " + " ".join(f"{best[r] / best['bp']:7.2f}x" for r in rules))
    print("\nDFA feedback memory (all D_l, float32):")
    print("\n".join(dfa_memory_lines()))


if __name__ == "__main__":
    main()
