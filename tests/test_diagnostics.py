"""Diagnostics: the built-in zeros (BP, FA with B = W, DTP with exact linearised inverses), exact
inverses, figures and logs, skipped stale updates, and an unchanged training trajectory."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from tpbench.algorithms.backprop import Backprop
from tpbench.diagnostics import JacobianConditions, Reconstruction, UpdateAlignment
from tpbench.diagnostics.base import measuring
from tpbench.diagnostics.jacobian import product_submatrix
from tpbench.nets import Dense, Network
from tpbench.nets.architectures import conv, lc
from tpbench.train import build, closing_wandb_runs

DIAGNOSTICS = ("update_alignment", "weight_alignment", "reconstruction", "jacobian")
# a tiny net on small fake images; every diagnostic measures on every batch
TINY = [
    "data.shape=[1,6,6]",
    "data.train_size=320",
    "net.hidden=[12,12,12]",
    "callbacks=diagnostics",
    "callbacks.model_checkpoint=null",
    "callbacks.progress_bar=null",
    "callbacks.jacobian.num_samples=1",
    "test=false",
    "trainer.max_epochs=1",
    *(f"callbacks.{name}.every_n_steps=1" for name in DIAGNOSTICS),
]
NO_PLOTS = [f"callbacks.{name}.plot=false" for name in DIAGNOSTICS]


def fit(make_cfg, overrides, setup=None):
    """Build and fit; `setup(rule)` may edit the rule first. Returns (rule, trainer, history)."""
    datamodule, rule, trainer = build(make_cfg([*TINY, *overrides]))
    if setup is not None:
        setup(rule)
    with closing_wandb_runs(trainer):
        trainer.fit(rule, datamodule=datamodule)
    history = {k: v for cb in trainer.callbacks for k, v in getattr(cb, "history", {}).items()}
    return rule, trainer, history


def values(history, quantity: str) -> dict[str, list[float]]:
    """{"L1": [...], ...} for one quantity."""
    prefix = f"diag/{quantity}/"
    return {
        k[len(prefix) :]: [v for _, v in pts] for k, pts in history.items() if k.startswith(prefix)
    }


def test_bp_update_angle_is_zero_and_results_are_logged_and_drawn(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _, trainer, history = fit(make_cfg, ["logger=[csv,wandb]"])
    angles, ratios = values(history, "update_angle"), values(history, "update_norm_ratio")
    assert sorted(angles) == ["L1", "L2", "L3", "L4"]
    assert all(len(v) == trainer.num_training_batches for v in angles.values())
    assert max(max(v) for v in angles.values()) < 1e-3  # degrees
    assert all(abs(r - 1) < 1e-5 for v in ratios.values() for r in v)
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "diag/update_angle/L1" in header and "diag/update_norm_ratio/L4" in header
    assert (tmp_path / "diagnostics" / "update_alignment.png").stat().st_size > 10_000
    # BP has no feedback pathway: nothing to measure, no figure
    assert not (tmp_path / "diagnostics" / "weight_alignment.png").exists()
    assert list(tmp_path.glob("wandb/offline-run-*/files/media/images/diag/update_alignment*.png"))


def tie_feedback_to_weights(rule):
    for layer in rule.net:
        layer.feedback["B"].weight.copy_(layer.weight.detach())


def test_fa_with_feedback_equal_to_weights_is_backprop(make_cfg):
    # lr 0 keeps W (and so B = W) fixed while FA computes its updates on every batch
    overrides = ["algo=fa", "algo.optimizer.lr=0", *NO_PLOTS]
    _, _, history = fit(make_cfg, overrides, tie_feedback_to_weights)
    for quantity, layers in (("update_angle", "L1 L2 L3 L4"), ("weight_angle", "L2 L3 L4")):
        measured = values(history, quantity)
        assert sorted(measured) == layers.split()  # B_1 is never used: no weight angle for L1
        assert max(max(v) for v in measured.values()) < 1e-3, quantity
    assert max(max(v) for v in values(history, "weight_rel_dist").values()) == 0


def test_dtp_alignment_moves_with_hybrid_lambda(make_cfg, tmp_path):
    """λ = 1 (exact linearised inverses g_bp): DTP's updates are α·(BP's gradient) on every hidden
    layer and J_F·J_G = J_F·J_Fᵀ has only positive eigenvalues; lower λ tilts the updates away."""
    step = 0.01
    common = ["algo=dtp", f"algo.top_target.alpha={step}"]
    _, _, exact = fit(make_cfg, [*common, "algo.feedback.hybrid=1"])
    for layer, angles in values(exact, "update_angle").items():
        assert max(angles) < 0.01, layer
    ratios = values(exact, "update_norm_ratio")
    assert all(abs(r - step) < 1e-4 for layer in ("L1", "L2", "L3") for r in ratios[layer])
    assert all(abs(r - 1) < 1e-5 for r in ratios["L4"])  # last layer: the task loss itself
    assert min(min(v) for v in values(exact, "jacobian_pos_eig").values()) == 1.0
    assert sorted(p.name for p in (tmp_path / "diagnostics").glob("*.png")) == [
        f"{name}.png" for name in sorted(DIAGNOSTICS)
    ]
    # the first measurement sees the same weights and batch for every λ
    first = {}
    for lam in (0.5, 0.0):
        _, _, history = fit(
            make_cfg, [*common, f"algo.feedback.hybrid={lam}", "+trainer.limit_train_batches=1"]
        )
        first[lam] = {k: v[0] for k, v in values(history, "update_angle").items()}
    for layer in ("L1", "L2"):  # L3 gets Lee's gradient target, L4 the task loss: BP at any λ
        assert first[0.0][layer] > first[0.5][layer] > 1.0, (layer, first)


def test_alternating_schedule_skips_stale_updates(make_cfg):
    """Epoch 0 trains only inverses: the forward .grad left over is not the rule's update."""
    _, trainer, history = fit(make_cfg, ["algo=dtp_alt", "trainer.max_epochs=2", *NO_PLOTS])
    steps = [s for s, _ in history["diag/update_angle/L1"]]
    assert steps and min(steps) >= trainer.num_training_batches
    assert len(history["diag/reconstruction/L2"]) == 2 * trainer.num_training_batches


@pytest.mark.parametrize("algo", ["dtp", "fa"])
def test_diagnostics_do_not_change_the_trajectory(make_cfg, algo):
    """Same seed, with and without every diagnostic on every batch: identical weights (DTP draws
    noise from the global RNG in every step)."""
    runs = []
    for off in (NO_PLOTS, [f"callbacks.{name}=null" for name in DIAGNOSTICS]):
        rule, _, _ = fit(make_cfg, [f"algo={algo}", *off])
        runs.append([p.detach().clone() for p in rule.parameters()])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def exact_inverse_rule() -> Backprop:
    """A square linear first layer whose learned inverse is exactly F⁻¹: V = W⁻ᵀ, c = −W⁻¹b."""
    torch.manual_seed(0)
    net = Network([Dense((8,), 8, "identity"), Dense((8,), 3, "identity")])
    layer = net[0]
    with torch.no_grad():
        layer.weight.copy_(torch.eye(8) + 0.3 * torch.randn(8, 8))
        layer.bias.normal_()
        inverse = layer.build_inverse("identity")
        inverse.weight.copy_(torch.linalg.inv(layer.weight).t())  # G(h) = (W⁻ᵀ)ᵀh + c
        inverse.bias.copy_(-torch.linalg.solve(layer.weight, layer.bias))
    return Backprop(net, partial(torch.optim.SGD, lr=0.1))


@pytest.mark.parametrize("max_units", [8, 5])
def test_exact_inverse_reconstructs_and_meets_jacobian_conditions(max_units):
    rule, x, y = exact_inverse_rule(), torch.randn(16, 8), torch.zeros(16, dtype=torch.long)
    with torch.no_grad():
        assert Reconstruction().measure(rule, x, y)["diag/reconstruction/L1"] < 1e-5
        jacobian = JacobianConditions(max_units=max_units).measure(rule, x[:2], y[:2])
    assert jacobian["diag/jacobian_pos_eig/L1"] == 1.0  # J_F·J_G = I
    assert jacobian["diag/jacobian_trace/L1"] == pytest.approx(8.0, abs=1e-4)  # n / |S| · |S|
    assert set(jacobian) == {"diag/jacobian_pos_eig/L1", "diag/jacobian_trace/L1"}


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_jacobian_product_matches_explicit_jacobians(lam):
    torch.manual_seed(1)
    layer = Dense((5,), 4, "tanh")
    layer.build_inverse()
    h_prev = torch.randn(5)
    j_f = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0], h_prev)  # (4, 5)
    j_g = torch.autograd.functional.jacobian(
        lambda u: layer.inverse(u[None])[0], layer(h_prev[None])[0]
    )
    expected = j_f @ (lam * j_f.t() + (1 - lam) * j_g)  # (4, 4)
    units = torch.tensor([3, 0, 2])
    m = product_submatrix(layer, layer.inverse, lam, h_prev, units)
    torch.testing.assert_close(m, expected[units][:, units])


@pytest.mark.parametrize(
    "make_net",
    [partial(lc, blocks=[[3, 4, 2]]), partial(conv, blocks=[[3, 4, 1]], pool=2, unpool="max")],
)
def test_spatial_layers_and_wide_layers_are_measured(make_net):
    """LC and pooled conv blocks (stateful max-un-pooling), 100+ units subsampled to 20."""
    torch.manual_seed(0)
    net = make_net((1, 8, 8), 3, hidden=[6])
    for layer in net:
        layer.build_inverse()
    rule, x = Backprop(net, partial(torch.optim.SGD, lr=0.1)), torch.randn(4, 1, 8, 8)
    net(x[:3])  # the switches of the last forward pass (batch of 3)
    switches = [getattr(layer.pool, "indices", None) for layer in net]
    with measuring(rule), torch.no_grad():
        metrics = JacobianConditions(max_units=20).measure(rule, x, x)
        metrics |= Reconstruction().measure(rule, x, x)
    after = [getattr(layer.pool, "indices", None) for layer in net]
    assert all(a is b for a, b in zip(after, switches, strict=True))  # restored
    assert len(metrics) == 3 * len(net) and all(
        torch.isfinite(torch.tensor(list(metrics.values())))
    )


def test_bad_schedule_is_one_sentence():
    with pytest.raises(Exception, match="every_n_steps=0"):
        UpdateAlignment(every_n_steps=0)
