"""The examples in docs/examples run as written (docs/python_api.md points at them)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_own_training_loop_example_runs_and_learns():
    result = subprocess.run(
        [sys.executable, "docs/examples/own_loop.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first, last = (float(line.split("loss ")[1].split(",")[0]) for line in (lines[0], lines[4]))
    assert last < first and "Warning" not in result.stderr
    assert lines[-1].startswith("converted MyNet (DFA), epoch 4")
