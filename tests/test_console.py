"""What the console says about a run: epochs counted from 1 on the bar, the rule's own name on
the build line (frSF, not FeedbackAlignment), W&B without its end-of-run summary."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tpbench.loggers import WandbLogger
from tpbench.progress import ProgressBar
from tpbench.train import build


@pytest.mark.parametrize(("epoch", "shown"), [(0, "Epoch 1/5"), (4, "Epoch 5/5")])
def test_the_bar_counts_epochs_from_one(epoch, shown):
    bar = ProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=5)
    assert bar._get_train_description(epoch).strip() == shown


@pytest.mark.parametrize(
    ("algo", "name"),
    [
        ("fa", "FeedbackAlignment"),
        ("frsf", "frSF"),
        ("usf", "uSF"),
        ("brsf", "brSF"),
        ("bp", "Backprop"),
        ("dtp", "DTP (NoisePreserving feedback loss)"),
        ("ldrl", "LDRL"),
        ("fwdtp", "FWDTP"),
    ],
)
def test_the_build_line_names_the_rule(make_cfg, algo, name):
    _, rule, _ = build(make_cfg([f"algo={algo}", "net.hidden=[8,8]"]))
    assert rule.display_name == name


def test_wandb_is_quiet(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert logger._wandb_init["settings"].quiet
