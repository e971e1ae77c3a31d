"""Parity with Ernoult et al.'s code: the `ernoult_cifar10_vgg_ldrl` preset's first training step
(K_l L-DRL steps per layer with SGD momentum and per-layer learning rates, G = ConvT(ELU(
MaxUnpool with the forward pass's indices)) + c, then the forward step with weight decay) equals
their legacy functions' on a 3-block conv net with a linear head (1x8x8 input, 4 classes, batch
5, float64), to 1e-6 relative. Their top target's cross-entropy is computed in float32; ours in
float64 (a 5e-8 relative difference). The fixture: tests/fixtures/parity/
ernoult_LDRL_legacy_conv.json (docs/parity.md).
"""

from __future__ import annotations

import torch

from tests.parity import TOLERANCE, fixture, preset_rule, relative_error, t64


def ernoult_rule(fix: dict):
    """The preset around the fixture's 3-block conv net, with its K, σ, feedback lrs, weights."""
    hp = fix["meta"]["hyperparameters"]
    overrides = [
        "net.blocks=[[3,2],[3,3],[3,4]]",
        f"algo.schedule.feedback_iterations={hp['iter']}",
        f"algo.inverse_loss.sigma={hp['noise']}",
        f"algo.feedback_lr={hp['lr_b']}",
    ]
    rule = preset_rule("ernoult_cifar10_vgg_ldrl", overrides, (1, 8, 8), 4)
    load(rule, fix["params_init"])
    rule.standalone_optimizers()
    return rule


def parameters(rule) -> dict[str, torch.Tensor]:
    """Our parameters under their state_dict names (f: forward, b: feedback)."""
    named = {}
    for i, layer in enumerate(rule.net):
        named[f"layers.{i}.f.weight"], named[f"layers.{i}.f.bias"] = layer.weight, layer.bias
        if "inverse" in layer.feedback:
            g = layer.feedback["inverse"]
            is_linear = layer.weight.dim() == 2  # their Linear G: y Wbᵀ + c, so V = Wbᵀ
            named[f"layers.{i}.b.weight"] = g.weight.t() if is_linear else g.weight
            named[f"layers.{i}.b.bias"] = g.bias
    return named


def load(rule, params: dict) -> None:
    with torch.no_grad():
        for name, ours in parameters(rule).items():
            ours.copy_(t64(params[name]).view_as(ours))


def test_first_step_equals_the_authors_code(monkeypatch):
    fix = fixture("ernoult_LDRL_legacy_conv")
    rule = ernoult_rule(fix)
    draws = {}  # (layer, iteration) -> [ε, η] scaled by σ
    for entry in fix["noise"]:
        draws.setdefault((entry["layer"], entry["iteration"]), []).append(
            entry["sigma"] * t64(entry["standard_normal_values"])
        )
    counts = {}

    def recorded_noise(j, ins, outs):
        i = rule.inverse_ids[j]
        k = counts[i] = counts.get(i, -1) + 1
        eps, eta = draws.pop((i, k))
        return {"eps": eps, "eta": eta}

    monkeypatch.setattr(rule, "draw_noise", recorded_noise)
    rule.train_step(t64(fix["x"]), torch.tensor(fix["y"]))
    assert draws == {}, f"unused noise: {sorted(draws)}"
    before = fix["params_init"]
    for stage in ("params_after_feedback", "params_after_forward_step"):
        for name, theirs in fix[stage].items():
            if (".b." in name) != (stage == "params_after_feedback"):
                continue
            ours = parameters(rule)[name].detach().reshape(t64(theirs).shape)
            start, theirs = t64(before[name]), t64(theirs)
            if (theirs - start).abs().max() < 1e-12 * start.abs().max():  # c cancels in L-DRL:
                torch.testing.assert_close(ours, start, rtol=0, atol=1e-15)  # round-off only
                continue
            err = relative_error(ours - start, theirs - start)
            assert err < TOLERANCE, f"{name} update differs by {err:.2e} (relative)"
