"""`make bench`: a table per net of every rule's training step, one run.

Columns: `step ms` = the rule's `train_step` in a plain Python loop (no Lightning); `x BP` = that
over BP's on the same net; `fit ms` = one step of the full Lightning fit loop; `overhead` = fit
over plain loop − 1 (the framework's cost, aim ≤ 10 %); `+bar` = the same with the progress bar
a run shows on the console (aim ≤ 10 % on MNIST FC); `samples/s` = batch / fit step; `peak MB`
= tensor memory live at once during a step (weights, feedback, optimizer state, gradients,
activations; not the dataset). See src/tpbench/benchmark.py for how each is measured.

    python scripts/bench.py                                   # every net x the default rules
    python scripts/bench.py --nets mnist_fc cifar_fc --rules bp fa dtp --steps 30
    python scripts/bench.py --nets resnet20                   # BP, FA, uSF, frSF, brSF, DFA
    python scripts/bench.py --device gpu                      # or cpu (default when no GPU)
    python scripts/bench.py --threads 1 --clock cpu           # a shared, loaded CPU machine
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import torch

from tpbench.benchmark import DEFAULT_RULES, NETS, RULES, measure, run_safely, table
from tpbench.console import quiet


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--rules", nargs="+", default=DEFAULT_RULES, choices=list(RULES))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: per net)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--device", default="gpu" if torch.cuda.is_available() else "cpu", choices=["cpu", "gpu"]
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--rounds", type=int, default=2, help="each loop keeps its fastest round")
    return parser.parse_args()


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores"


def machine(args: argparse.Namespace) -> str:
    device = torch.cuda.get_device_name() if args.device == "gpu" else cpu_name()
    return (
        f"{args.device} ({device}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, {args.clock} clock"
    )


def main() -> None:
    args = parse_args()
    quiet()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("lightning", "lightning.pytorch", "tpbench"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print(f"# tpbench bench: {machine(args)}\n")
    for net in args.nets:
        # a net that only some rules train (ResNets: the FA family) runs those by default
        chosen = NETS[net].rules if NETS[net].rules and args.rules == DEFAULT_RULES else args.rules
        rules = ["bp", *[r for r in chosen if r != "bp"]]
        steps = args.steps or NETS[net].steps
        start = time.perf_counter()
        settings = (args.batch, steps, args.warmup, args.device, args.clock, args.rounds)
        results = {rule: run_safely(measure, rule, net, *settings) for rule in rules}
        print("\n".join(table(NETS[net].title, args.batch, results)))
        print(f"({steps} timed steps after {args.warmup} warm-up, best of {args.rounds} rounds; "
              f"{time.perf_counter() - start:.0f} s)\n", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
