"""`tpbench resume` refuses what it cannot do, in one sentence and without touching a file: a
second resume of a run that is being resumed (the run directory's lock), fewer epochs than the
run has done, a finished run without more epochs.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_resume import RUN, train, val_epochs
from tpbench.cli import main as cli
from tpbench.runs.state import read_state

SHORT = [o for o in RUN if not o.startswith("trainer.max_epochs")] + ["trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("guards") / "run"
    assert train(*SHORT, f"hydra.run.dir={run_dir}").returncode == 0
    return run_dir


def snapshot(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["trainer.max_epochs=1"], "trainer.max_epochs=1 is fewer than the 2 epochs run has done"),
        ([], "run has finished its 2 epochs; pass trainer.max_epochs greater than 2"),
    ],
    ids=["fewer epochs", "finished, no more epochs"],
)
def test_impossible_resume_changes_no_file(finished_run, overrides, says, capsys):
    before = snapshot(finished_run)
    with pytest.raises(SystemExit) as exit_code:
        cli(["resume", str(finished_run), *overrides])
    assert exit_code.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR: ") and says in err and len(err.splitlines()) == 1, err
    assert snapshot(finished_run) == before
    assert read_state(finished_run) == ("finished", "")


def resume(run_dir: Path, *overrides: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tpbench.cli", "resume", str(run_dir), *overrides]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def test_second_concurrent_resume_is_refused_at_once(tmp_path):
    run_dir = tmp_path / "run"
    assert train(*SHORT, f"hydra.run.dir={run_dir}").returncode == 0
    first, second = resume(run_dir, "trainer.max_epochs=4"), resume(run_dir, "trainer.max_epochs=4")
    start = time.monotonic()
    codes = {}
    while len(codes) < 2 and time.monotonic() - start < 240:
        codes |= {p: p.poll() for p in (first, second) if p.poll() is not None}
        time.sleep(0.1)
    assert sorted(codes.values()) == [0, 1], list(codes.values())
    refused = next(p for p, code in codes.items() if code == 1)
    assert next(iter(codes)) is refused  # it ended first, while the other one trained
    err = refused.stderr.read().strip()
    assert "is in use by another tpbench process" in err and len(err.splitlines()) == 1, err
    assert val_epochs(run_dir) == [0, 1, 2, 3]  # each epoch once
    assert read_state(run_dir) == ("finished", "")
