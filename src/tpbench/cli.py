"""The `tpbench` console script.

- `tpbench report DIR`: sensitivity histograms, learning curves and a table of best errors next to
  the papers' numbers, from a sweep or any directory of runs (see tpbench.report).
- `tpbench resume RUN_DIR [OVERRIDES...]`: continue a stopped run (killed, interrupted, or
  finished and given more epochs) in its own directory from its last checkpoint, with its
  recorded config (see tpbench.runs.relaunch).
- `tpbench best SWEEP_DIR`: the best trial's searched values as overrides on one line, to run
  the found configuration again, e.g. with other seeds:
  `python train.py experiment=... seed=2 $(tpbench best SWEEP_DIR)`.
- `tpbench continue SWEEP_DIR [OVERRIDES...]`: resume a finished sweep's best trial, e.g.
  `trainer.max_epochs=90` (Bartunov's ImageNet protocol: 60 configurations for 10 epochs, then
  only the best goes on).

A mistake ends in one sentence on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from tpbench.console import configure_logging, mistakes_told
from tpbench.errors import InputError

TRAIN = "from tpbench.train import main; main()"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tpbench", description="tpbench utilities")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="figures and tables from runs or sweeps")
    report.add_argument("dir", type=Path, help="a sweep directory, or any directory of runs")
    report.add_argument("--no-wandb", action="store_true", help="never log the report to W&B")
    report.add_argument("--by", help="split each rule by a config value, e.g. algo.top_target.size")
    report.add_argument(
        "--grid",
        nargs=2,
        metavar=("X", "Y"),
        help="validation error over two config values, e.g. algo.optimizer.lr algo.top_target.beta",
    )
    resume = commands.add_parser("resume", help="continue a stopped run in its own directory")
    resume.add_argument("dir", type=Path, help="the run directory (with .hydra/ and checkpoints/)")
    resume.add_argument("overrides", nargs="*", help="e.g. trainer.max_epochs=90 threads=4")
    best = commands.add_parser("best", help="a sweep's best values, as overrides on one line")
    best.add_argument("dir", type=Path, help="the sweep directory (optimization_results.yaml)")
    extend = commands.add_parser("continue", help="resume a sweep's best trial, e.g. longer")
    extend.add_argument("dir", type=Path, help="the sweep directory (optimization_results.yaml)")
    extend.add_argument("overrides", nargs="*", help="e.g. trainer.max_epochs=90")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise InputError(f"{args.dir} is not a directory; pass a run, sweep or runs directory.")
    if args.command == "best":
        from tpbench.runs.relaunch import best_overrides

        sys.stdout.write(" ".join(best_overrides(args.dir)) + "\n")  # the command's output
        return 0
    if args.command in ("resume", "continue"):
        from tpbench.runs import lock
        from tpbench.runs.relaunch import best_trial_dir, check_arguments, resume_arguments

        run_dir = args.dir if args.command == "resume" else best_trial_dir(args.dir.resolve())
        train_args, cwd = resume_arguments(run_dir, args.overrides)
        check_arguments(train_args, cwd)
        held = lock.acquire(run_dir)  # train.py holds it on through the handed descriptor
        logging.info("python train.py %s", " ".join(train_args))
        env = {**os.environ, lock.INHERITED: str(held)}
        command = [sys.executable, "-c", TRAIN, *train_args]
        return subprocess.call(command, cwd=cwd, env=env, pass_fds=(held,))
    from tpbench.report import report as write_report  # matplotlib: only when used

    for path in write_report(args.dir, wandb=not args.no_wandb, by=args.by, grid=args.grid):
        logging.info("wrote %s", path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure_logging()
    with mistakes_told():
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
