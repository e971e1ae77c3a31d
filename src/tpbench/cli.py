"""The `tpbench` console script: `tpbench report DIR` (figures and tables from runs/sweeps)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tpbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser(
        "report", help="sensitivity histograms, learning curves and a table of best errors"
    )
    report.add_argument("dir", type=Path, help="a sweep directory, or any directory of runs")
    report.add_argument("--no-wandb", action="store_true", help="never log the report to W&B")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from tpbench.report import report as write_report  # matplotlib: import only when used

    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a directory; pass a sweep or runs directory.")
    try:
        paths = write_report(args.dir, wandb=not args.no_wandb)
    except FileNotFoundError as error:
        logging.error("%s", error)
        return 1
    for path in paths:
        logging.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
