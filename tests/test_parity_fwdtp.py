"""Parity with the FW-DTP authors' code: each `fwdtp_*` preset's first training step equals theirs.

The fixtures (tests/fixtures/parity/fwdtp_<ROW>.json; how they were made: docs/parity.md) hold
their own functions' result on a 12-10-8-6-4 net, batch 5, float64: initial weights W and
feedback B, the noise their code drew (in order), B after the K feedback steps and W after the
forward step. Here the preset is composed as a user runs it, with the net shrunk to the fixture's
sizes and the fixture's hyper-parameters (lr 0.1, stepsize 0.04, lrb 0.05, std 0.1; the first
step of training, so no warm-up epoch), the same weights and noise are loaded, and one
`train_step` must give the same updates to 1e-6 relative.
"""

from __future__ import annotations

import pytest
import torch

from tests.parity import TOLERANCE, fixture, preset_rule, relative_error, t64

ROWS = {"BP": "bp", "DTP": "dtp", "DRL": "drl", "LDRL": "ldrl", "FWDTP": "fwdtp",
        "FWDTP_BN": "fwdtp_bn", "DTP_BN": "dtp_bn"}  # fmt: skip
TRAINED_G = ("DTP", "DRL", "LDRL", "DTP_BN")  # the rows whose feedback learns


def fwdtp_rule(row: str, fix: dict):
    """The row's preset around the fixture's net, with its hyper-parameters and weights."""
    hp = fix["meta"].get("hyperparameters", {})
    overrides = ["net.hidden=[10,8,6]", f"algo.optimizer.lr={hp['lr']}"]
    if row != "BP":
        overrides.append(f"algo.top_target.beta={hp['stepsize']}")
    if row in TRAINED_G:
        overrides += [
            f"algo.feedback_optimizer.lr={hp['lrb']}",
            f"algo.inverse_loss.sigma={hp['std']}",
            "algo.schedule.warmup_epochs=0",
        ]
    rule = preset_rule(f"fwdtp_mnist_fc_{ROWS[row]}", overrides, (12,), 4)
    with torch.no_grad():
        for d, layer in enumerate(rule.net):
            layer.weight.copy_(t64(fix["W_init"][d]))
            if "inverse" in layer.feedback and d > 0:  # G_d(v) = act(v Bᵀ): V = Bᵀ
                layer.feedback["inverse"].weight.copy_(t64(fix["B_init"][d]).t())
    rule.standalone_optimizers()
    return rule


def feed_recorded_noise(monkeypatch, noise: list[dict], sigma: float) -> list[dict]:
    """torch.randn_like returns their recorded draws in order (divided by σ: the loss part
    scales its standard normal draw by σ); returns the list, emptied as they are used."""
    queue = list(noise)

    def recorded(like: torch.Tensor) -> torch.Tensor:
        entry = queue.pop(0)
        values = torch.tensor(entry["values"], dtype=like.dtype)
        assert values.shape == like.shape, (entry["iteration"], entry["layer"], entry["role"])
        return values / sigma

    monkeypatch.setattr(torch, "randn_like", recorded)
    return queue


@pytest.mark.parametrize("row", [r for r in ROWS if r != "BP"])
def test_first_step_equals_the_authors_code(row, monkeypatch):
    fix = fixture(f"fwdtp_{row}")
    rule = fwdtp_rule(row, fix)
    queue = feed_recorded_noise(
        monkeypatch, fix.get("noise", []), fix["meta"]["hyperparameters"]["std"]
    )
    x = t64(fix["x"])
    y = torch.tensor(fix["y"])
    rule.train_step(x, y)
    assert queue == [], f"{len(queue)} of their noise draws were not used"
    for d, layer in enumerate(rule.net):
        w0, w1 = t64(fix["W_init"][d]), t64(fix["W_after_forward_step"][d])
        err = relative_error(layer.weight.detach() - w0, w1 - w0)
        assert err < TOLERANCE, f"{row}: W_{d} update differs by {err:.2e} (relative)"
        if d > 0:
            b0, b1 = t64(fix["B_init"][d]), t64(fix["B_final"][d])
            v = layer.feedback["inverse"].weight.detach().t()
            if torch.equal(b0, b1):  # fixed feedback: never changes
                assert torch.equal(v, b0), f"{row}: fixed B_{d} changed"
            else:
                err = relative_error(v - b0, b1 - b0)
                assert err < TOLERANCE, f"{row}: B_{d} update differs by {err:.2e} (relative)"


def test_bp_step_is_exact_backprop_where_their_bp_is_not():
    """Their BP uses the previous layer's pre-activation as layer input (bp_net.py:261): the
    preset is exact BP, so it equals autograd BP on their summed loss and differs from theirs."""
    fix = fixture("fwdtp_BP")
    rule = fwdtp_rule("BP", fix)
    x, y = t64(fix["x"]), torch.tensor(fix["y"])
    rule.train_step(x, y)
    for d, layer in enumerate(rule.net):
        w0 = t64(fix["W_init"][d])
        exact = t64(fix["W_after_step_true_autograd_bp"][d])
        assert relative_error(layer.weight.detach() - w0, exact - w0) < TOLERANCE
    theirs = t64(fix["W_after_step"][1]) - t64(fix["W_init"][1])
    assert relative_error(rule.net[1].weight.detach() - t64(fix["W_init"][1]), theirs) > 1e-3
