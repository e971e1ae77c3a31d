"""Parity with Meulemans et al.'s code: the `meulemans_mnist_fc_drl` preset's first training step
(targets from the old G's, one joint DRL feedback step, then the forward step, Adam both) equals
their own functions' on a 12-10-8-6-4 net, batch 5, float64, to 1e-6 relative.

The fixture (tests/fixtures/parity/meulemans_DRL_mnist_config.json; docs/parity.md) holds their
initial W, b, Q, d (biases non-zero on purpose), the standard-normal noise of each layer's
corruption, and every parameter after their feedback step and after their forward step.
"""

from __future__ import annotations

import torch

from tests.parity import TOLERANCE, fixture, preset_rule, relative_error, t64


def meulemans_rule(fix: dict):
    """The preset around the fixture's net (the first step of training: no warm-up)."""
    overrides = ["net.hidden=[10,8,6]", "algo.schedule.warmup_epochs=0"]
    rule = preset_rule("meulemans_mnist_fc_drl", overrides, (12,), 4)
    with torch.no_grad():
        for i, (layer, p) in enumerate(zip(rule.net, fix["params_init"], strict=True)):
            layer.weight.copy_(t64(p["W"]))
            layer.bias.copy_(t64(p["b"]))
            if i > 0:  # g_i(v) = tanh(v Qᵀ + d): V = Qᵀ, c = d
                layer.feedback["inverse"].weight.copy_(t64(p["Q"]).t())
                layer.feedback["inverse"].bias.copy_(t64(p["d"]))
    rule.standalone_optimizers()
    return rule


def test_first_step_equals_the_authors_code(monkeypatch):
    fix = fixture("meulemans_DRL_mnist_config")
    rule = meulemans_rule(fix)
    noise = [t64(entry["standard_normal_values"]) for entry in fix["noise"]]  # k = 1, 2, 3
    monkeypatch.setattr(torch, "randn_like", lambda like: noise.pop(0))
    rule.train_step(t64(fix["x"]), torch.tensor(fix["y"]))
    assert noise == []
    for i, layer in enumerate(rule.net):
        before, after = fix["params_init"][i], fix["params_after_forward_step"][i]
        for name, ours in (("W", layer.weight), ("b", layer.bias)):
            err = relative_error(
                ours.detach() - t64(before[name]), t64(after[name]) - t64(before[name])
            )
            assert err < TOLERANCE, f"{name}_{i} update differs by {err:.2e} (relative)"
        if i == 0:
            continue
        g = layer.feedback["inverse"]
        for name, ours in (("Q", g.weight.detach().t()), ("d", g.bias.detach())):
            err = relative_error(ours - t64(before[name]), t64(after[name]) - t64(before[name]))
            assert err < TOLERANCE, f"{name}_{i} update differs by {err:.2e} (relative)"
