"""Helpers of the parity tests (tests/test_parity_*.py, docs/parity.md): fixtures in float64, a
preset's rule as `python train.py experiment=<preset>` composes it, and the update comparison."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.conftest import compose_train
from tpbench.train import instantiate

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
TOLERANCE = 1e-6  # on ‖Δ_tpbench − Δ_theirs‖_max / ‖Δ_theirs‖_max, Δ a parameter's update


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def t64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def preset_rule(preset: str, overrides: list[str], in_shape: tuple[int, ...], classes: int):
    """The preset's rule (float64) around its net built for the fixture's input and classes."""
    cfg = compose_train([f"experiment={preset}", *overrides])
    net = instantiate(cfg.net, in_shape=in_shape, num_classes=classes)
    return instantiate(cfg.algo, net=net).double()


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp(min=1e-300))
