"""What produced a run: code version, environment and hardware, recorded in its directory.

`collect()` returns the git commit of the checkout (and whether it had uncommitted changes), the
versions of the packages a result depends on, Python, torch's CPU threads, the device and, in a
Slurm job, the job (id, array index, node, how often it was requeued). The
entry point writes it to `<run dir>/provenance.yaml` and into every logger's hyper-parameters
(key `provenance`), so a number in docs/ can be tied to the exact code and environment
(`requirements.lock` pins the latter; docs/runs.md says how to reproduce it).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

from tpbench.runs.slurm import job_record

PACKAGES = (
    "tpbench",
    "torch",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "optuna",
    "numpy",
    "wandb",
)
ROOT = Path(__file__).resolve().parents[2]  # the checkout (editable install)


def git_state(root: Path = ROOT) -> dict[str, object]:
    """{commit, dirty}: HEAD of the checkout, and whether tracked files differ from it."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown (not a git checkout)", "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_name(accelerator: str) -> str:
    """The GPU's name when the run uses one, else the CPU's."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def collect(accelerator: str) -> dict[str, object]:
    return {
        "git": git_state(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "device": device_name(accelerator),
        "host": socket.gethostname(),
        "slurm": job_record(),  # job id, array index, node, requeue count; None outside Slurm
    }
