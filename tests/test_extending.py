"""docs/extending.md works as written: its `# file:` blocks, written into a copy of the repository,
give a rule that every generic test picks up, a net block that trains under FA and DTP, and a
dataset that trains; each example's own test passes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(?:python|yaml)\n# file: (\S+)\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of src/, conf/, tests/ and train.py with the guide's files written into it."""
    root = tmp_path_factory.mktemp("extended")
    for name in ("src", "conf", "tests"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("train.py", "pyproject.toml"):
        shutil.copy(ROOT / name, root)
    for path, text in BLOCK.findall((ROOT / "docs" / "extending.md").read_text()):
        (root / path).write_text(text)
    return root


def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_guide_has_every_file(repo):
    paths = [p for p, _ in BLOCK.findall((ROOT / "docs" / "extending.md").read_text())]
    assert len(paths) == 8 and all((repo / p).is_file() for p in paths)


def test_a_rule_in_two_files_gets_every_generic_test_and_its_math_test(repo):
    result = run(repo, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "truncated_bp",
                 "tests/test_every_rule.py", "tests/test_truncated_bp.py")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 passed" in result.stdout  # composes, learns, no host read, resumes; its math


def test_a_net_block_trains_under_fa_and_dtp_and_its_test_passes(repo):
    result = run(
        repo, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_residual_dense.py"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    for algo in ("fa", "dtp"):  # a route, and a learned inverse of the whole block
        result = run(repo, "train.py", "net=residual_mlp", f"algo={algo}", "data=fake",
                     "data.shape=[1,8,8]", "trainer.max_epochs=1", "logger=none",
                     "callbacks=none", f"hydra.run.dir={repo}/runs/{algo}")  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]


def test_a_dataset_from_npz_files_trains(repo, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "my_data"
    folder.mkdir()
    for split, n in (("train", 200), ("test", 50)):
        y = rng.integers(0, 4, n)
        x = (rng.random((n, 64)) * 60 + 40 * y[:, None]).astype(np.uint8)  # learnable
        np.savez(folder / f"{split}.npz", x=x, y=y)
    result = run(repo, "train.py", "data=npz", f"data.data_dir={tmp_path}", "net=fc",
                 "net.hidden=[32]", "trainer.max_epochs=2", "logger=none", "callbacks=none",
                 f"hydra.run.dir={tmp_path}/run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    missing = run(repo, "train.py", "data=npz", f"data.data_dir={tmp_path}/nowhere",
                  f"hydra.run.dir={tmp_path}/run2")  # fmt: skip
    assert missing.returncode != 0 and "my_data data not found" in missing.stdout + missing.stderr
