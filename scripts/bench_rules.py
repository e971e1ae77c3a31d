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

To add a rule: one line in RULES (name -> overrides of conf/train.yaml). To add a net: one line
in NETS (name -> overrides, with the data shape the net is meant for).
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
from omegaconf import open_dict

from tpbench.algorithms.direct_feedback_alignment import direct_feedback_bytes
from tpbench.train import build

ROOT = Path(__file__).resolve().parents[1]

RULES: dict[str, list[str]] = {  # name -> config overrides; BP is the reference
    "bp": ["algo=bp"],
    "fa": ["algo=fa"],
    "usf": ["algo=usf"],
    "frsf": ["algo=frsf"],
    "brsf": ["algo=brsf"],
    "dfa": ["algo=dfa"],
    # target propagation, parallel schedule (both losses every step), one feedback iteration
    "tp": ["algo=tp"],
    "dtp": ["algo=dtp"],
    "sdtp": ["algo=sdtp"],
    "aosdtp": ["algo=aosdtp"],
    "drl": ["algo=drl", "algo.feedback_iterations=1"],
    "ldrl": ["algo=ldrl", "algo.feedback_iterations=1"],
    "fwdtp": ["algo=fwdtp"],
}
NETS: dict[str, list[str]] = {  # name -> config overrides (net + the data shape it is built for)
    "mnist_fc": ["net=bartunov_mnist_fc", "data.shape=[1,28,28]"],
    "cifar_fc": ["net=bartunov_cifar_fc", "data.shape=[3,32,32]"],
    "cifar_lc": ["net=bartunov_cifar_lc", "data.shape=[3,32,32]"],
}
DFA_MEMORY = {  # net config -> (input shapes, num_classes) for the D_l memory table
    "bartunov_mnist_fc": ([(1, 28, 28)], 10),
    "bartunov_cifar_lc": ([(3, 32, 32)], 10),
    "bartunov_imagenet_lc": ([(3, 32, 32), (3, 224, 224)], 1000),
}


def compose_run(overrides: list[str], args) -> object:
    """The composed train config for one (rule, net) timing run on fake data."""
    steps = args.warmup + args.steps
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=fake", f"data.batch_size={args.batch_size}",
                f"data.train_size={args.batch_size * steps}", "data.val_size=0",
                "logger=none", "callbacks=none", "trainer.max_epochs=1",
                "+trainer.limit_val_batches=0", "+trainer.num_sanity_val_steps=0",
                "trainer.enable_progress_bar=false", "+trainer.enable_checkpointing=false",
                f"trainer.accelerator={args.device}", *overrides,
            ],
        )  # fmt: skip
    with open_dict(cfg):
        cfg.paths = {"output_dir": str(ROOT / "logs" / "bench"), "log_dir": "", "data_dir": ""}
    return cfg


def time_steps(rule_overrides: list[str], net_overrides: list[str], args) -> float:
    """Median seconds of the rule's train_step over args.steps steps after args.warmup."""
    datamodule, rule, trainer = build(compose_run(rule_overrides + net_overrides, args))
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
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
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
