"""Parity with Meulemans et al.'s code: the `meulemans_mnist_fc_drl` preset's first training step
(targets from the old G's, one joint DRL feedback step, then the forward step, Adam both) equals
their own functions' on a 12-10-8-6-4 net, batch 5, float64, to 1e-6 relative.

The fixture (tests/fixtures/parity/meulemans_DRL_mnist_config.json; docs/parity.md) holds their
initial W, b, Q, d (biases non-zero on purpose), the standard-normal noise of each layer's
corruption, and every parameter after their feedback step and after their forward step.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.test_parity_fwdtp import TOLERANCE, relative_error, t64
from tpbench.catalog import CONFIG_DIR
from tpbench.train import instantiate

FIXTURE = Path(__file__).parent / "fixtures" / "parity" / "meulemans_DRL_mnist_config.json"


def preset_rule(fix: dict):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=meulemans_mnist_fc_drl",
                "net.hidden=[10,8,6]",
                "algo.schedule.warmup_epochs=0",
            ],  # fmt: skip
        )
    net = instantiate(cfg.net, in_shape=(12,), num_classes=4)
    rule = instantiate(cfg.algo, net=net).double()
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
    fix = json.loads(FIXTURE.read_text())
    rule = preset_rule(fix)
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
