"""The math of the target-propagation family on tiny nets (no training loop, float64).

Identities: top step 0 gives targets equal to the activations and zero local losses; with G the
exact linearisation of F (hybrid λ = 1) the updates are BP's gradients layer by layer; every local
loss reaches only its own layer; the L-DRL and DRL losses equal a hand evaluation of their
formulas; wrong per-layer lists and impossible rule/net pairs fail with one sentence.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import compose_train
from tpbench.errors import ConfigError
from tpbench.nets.architectures import conv, fc, lc
from tpbench.train import instantiate

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny nets, one thread


ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


NETS = {  # tiny nets of every family, on 1x8x8 inputs: LC, conv, conv with max-pool blocks
    "lc": lambda: lc((1, 8, 8), 3, blocks=[[3, 4, 2], [3, 4, 1]], hidden=[6]),
    "conv": lambda: conv((1, 8, 8), 3, blocks=[[3, 4, 1], [3, 5, 2]], hidden=[6]),
    "pooled_conv": lambda: conv((1, 8, 8), 3, blocks=[[3, 4, 1], [3, 5, 1]], hidden=[6], pool=2),
}


def algo_config(algo: str, overrides=()):
    """The rule's config node as `algo=<algo>` composes it (its YAML and the parts it names)."""
    return compose_train([f"algo={algo}", *overrides]).algo


def make_rule(algo="dtp", hidden=(5, 4, 4), seed=0, net=None, top_step=None, overrides=()):
    """The rule built from its YAML around a tiny float64 net; `top_step` sets the top target's
    α or β (whichever it has)."""
    cfg = algo_config(algo, overrides)
    if top_step is not None:
        cfg.top_target["alpha" if "alpha" in cfg.top_target else "beta"] = top_step
    torch.manual_seed(seed)
    net = fc((6,), 3, hidden=hidden) if net is None else NETS[net]()
    feedback = None if cfg.feedback_optimizer is None else ADAM
    return instantiate(cfg, net=net, optimizer=ADAM, feedback_optimizer=feedback).double()


def batch(n=8, seed=1, shape=(6,)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 3, (n,), generator=g)


def forward_grads(rule, x, y):
    """Per-layer weight gradients of the rule's summed forward losses."""
    rule.net.zero_grad()
    hs = rule.net.forward_all(x, detach=True)
    torch.stack(rule.forward_losses(x, y, hs, rule.target_steps(x, y, hs))).sum().backward()
    return [layer.weight.grad.clone() for layer in rule.net]


def bp_grads(rule, x, y):
    rule.net.zero_grad()
    F.cross_entropy(rule.net(x), y).backward()
    return [layer.weight.grad.clone() for layer in rule.net]


def cosine(a, b):
    return F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


@pytest.mark.parametrize(
    "algo,overrides",
    [
        ("dtp", []),
        ("ldrl", []),
        ("fwdtp", []),
        ("sdtp", []),  # t_L = o + β(onehot − o) = o
        ("aosdtp", ["algo.top_target.size=7"]),
        ("sdtp", ["algo.top_target.last_layer_on_target=true"]),
        ("dtp", ["algo.feedback.hybrid=0.5"]),
    ],
)
def test_top_step_zero_gives_targets_equal_to_activations(algo, overrides):
    rule = make_rule(algo, top_step=0.0, overrides=overrides)
    x, y = batch()
    hs = rule.net.forward_all(x, detach=True)
    targets = rule.compute_targets(x, y, hs)
    for i in range(len(hs) - 1):
        torch.testing.assert_close(targets[i], hs[i].detach(), rtol=0, atol=1e-12)
    losses = rule.forward_losses(x, y, hs, rule.target_steps(x, y, hs))
    on_target = getattr(rule.top_target, "last_layer_on_target", False)
    local = losses if on_target else losses[:-1]
    assert all(loss.item() < 1e-20 for loss in local)


@pytest.mark.parametrize("algo", ["dtp", "ldrl", "fwdtp"])
@pytest.mark.parametrize("step", [1e-3, 0.3])
def test_exact_linearised_inverse_gives_bp_updates(algo, step):
    """G_l = g_bp (hybrid λ = 1): every layer's update is parallel to BP's gradient. The map is
    linear, so this holds for any step; the last layer's target loss gives β·∂ℓ/∂θ_L too."""
    rule = make_rule(algo, top_step=step, overrides=["algo.feedback.hybrid=1"])
    x, y = batch()
    for ours, theirs in zip(forward_grads(rule, x, y), bp_grads(rule, x, y), strict=True):
        assert cosine(ours, theirs) > 0.99


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("algo", ["dtp", "ldrl"])
def test_exact_linearised_inverse_gives_bp_updates_on_spatial_nets(net, algo):
    rule = make_rule(algo, net=net, top_step=0.01, overrides=["algo.feedback.hybrid=1"])
    x, y = batch(4, shape=(1, 8, 8))
    for ours, theirs in zip(forward_grads(rule, x, y), bp_grads(rule, x, y), strict=True):
        assert cosine(ours, theirs) > 0.99


@pytest.mark.parametrize("net", NETS)
def test_targets_and_inverse_losses_on_spatial_nets(net):
    """Targets have the activations' shapes; each inverse loss reaches only its own G."""
    rule = make_rule("ldrl", net=net)
    x, y = batch(4, shape=(1, 8, 8))
    hs = rule.net.forward_all(x, detach=True)
    targets = rule.compute_targets(x, y, hs)
    assert [t.shape for t in targets] == [h.shape for h in hs]
    ins, outs = feedback_inputs(rule, x)
    for j, i in enumerate(rule.inverse_ids):
        rule.net.zero_grad()
        rule.feedback_loss(j, ins[i], outs[i], rule.draw_noise(j, ins, outs)).backward()
        touched = [
            any(p.grad is not None for p in layer.feedback_parameters()) for layer in rule.net
        ]
        assert touched == [k == i for k in range(len(rule.net))]


def test_dtp_hidden_updates_are_alpha_times_bp():
    """With t_{L-1} = h_{L-1} − α ∂ℓ_n/∂h_{L-1} and g_bp, hidden updates are exactly α·BP."""
    rule = make_rule(top_step=0.2, overrides=["algo.feedback.hybrid=1"])
    x, y = batch()
    ours, theirs = forward_grads(rule, x, y), bp_grads(rule, x, y)
    for a, b in zip(ours[:-1], theirs[:-1], strict=True):
        torch.testing.assert_close(a, 0.2 * b)
    torch.testing.assert_close(ours[-1], theirs[-1])  # last layer: the task loss itself


def test_learned_inverse_targets_are_not_bp():
    """Sanity check of the test above: with the learned (random) G the updates differ from BP."""
    rule = make_rule(top_step=0.2)
    x, y = batch()
    cosines = [cosine(a, b) for a, b in zip(forward_grads(rule, x, y), bp_grads(rule, x, y))]
    assert min(cosines[:-2]) < 0.99


@pytest.mark.parametrize("algo", ["dtp", "aosdtp", "ldrl"])
def test_each_local_loss_reaches_only_its_own_layer(algo):
    rule = make_rule(algo)
    x, y = batch()
    hs = rule.net.forward_all(x, detach=True)
    losses = rule.forward_losses(x, y, hs, rule.target_steps(x, y, hs))
    for i, loss in enumerate(losses):
        rule.net.zero_grad()
        loss.backward(retain_graph=True)
        for j, layer in enumerate(rule.net):
            touched = any(
                p.grad is not None and p.grad.abs().sum() > 0 for p in layer.forward_parameters()
            )
            assert touched == (i == j), (i, j)
        assert all(p.grad is None for p in rule.feedback_parameters())


def feedback_inputs(rule, x):
    hs = [h.detach() for h in rule.net.forward_all(x, detach=True)]
    ins = [x, *hs[:-1]]
    return ins, [*ins[1:], rule.output_repr(hs[-1], ins[-1])]


@pytest.mark.parametrize("loss", ["noise_preserving", "denoising", "ldrl", "drl"])
def test_each_inverse_loss_reaches_only_its_own_inverse(loss):
    rule = make_rule("ldrl", overrides=[f"algo/inverse_loss={loss}"])
    x, _ = batch()
    ins, outs = feedback_inputs(rule, x)
    for j, i in enumerate(rule.inverse_ids):
        rule.net.zero_grad()
        rule.feedback_loss(j, ins[i], outs[i], rule.draw_noise(j, ins, outs)).backward()
        for k, layer in enumerate(rule.net):
            touched = any(
                p.grad is not None and p.grad.abs().sum() > 0 for p in layer.feedback_parameters()
            )
            assert touched == (k == i), (j, k)
        assert all(p.grad is None for p in rule.net.forward_parameters())


def dense_f(layer, h):  # F(h) = σ(W h + b)
    return layer.activation(h @ layer.weight.t() + layer.bias)


def dense_g(layer, y):  # G(y) = tanh(Vᵀ y + c) (σ_g = tanh, the activation below)
    g = layer.feedback["inverse"]
    return torch.tanh(y @ g.weight + g.bias)


def test_ldrl_loss_matches_its_formula():
    rule = make_rule("ldrl", overrides=["algo.inverse_loss.sigma=0.3"])
    x, _ = batch()
    ins, outs = feedback_inputs(rule, x)
    for j, i in enumerate(rule.inverse_ids):
        noise = rule.draw_noise(j, ins, outs)
        layer, h, eps, eta = rule.net[i], ins[i], noise["eps"], noise["eta"]
        g_f = dense_g(layer, dense_f(layer, h))
        g_eps = dense_g(layer, dense_f(layer, h + eps))
        g_eta = dense_g(layer, dense_f(layer, h) + eta)
        # −2 εᵀ(G(F(h+ε)) − G(F(h))) + ‖G(F(h)+η) − G(F(h))‖², averaged over the batch
        expected = (-2 * (eps * (g_eps - g_f)).sum(1) + (g_eta - g_f).pow(2).sum(1)).mean()
        torch.testing.assert_close(rule.feedback_loss(j, ins[i], outs[i], noise), expected)


def test_drl_loss_matches_its_formula():
    sigma = 0.2
    rule = make_rule("drl", overrides=[f"algo.inverse_loss.sigma={sigma}"])
    x, _ = batch()
    ins, outs = feedback_inputs(rule, x)
    layers = list(rule.net)
    for j, i in enumerate(rule.inverse_ids):
        noise = rule.draw_noise(j, ins, outs)
        eps = noise["eps"]
        r = ins[i] + eps  # h̃_{l-1}, forward to the output ...
        for layer in layers[i:]:
            r = dense_f(layer, r)
        for k in range(
            len(layers) - 1, i - 1, -1
        ):  # ... and back: r_{k-1} = h_{k-1} + G(r) − G(h_k)
            r = ins[k] + dense_g(layers[k], r) - dense_g(layers[k], outs[k])
        expected = ((ins[i] + eps - r).pow(2).sum(1) / sigma**2).mean()  # (1/σ²)‖h̃ − r‖²
        torch.testing.assert_close(rule.feedback_loss(j, ins[i], outs[i], noise), expected)


@pytest.mark.parametrize("algo", ["sdtp", "aosdtp"])
def test_label_step_damps_the_label_target(algo):
    """t_L = o + β(onehot − o) on the prediction o = softmax(h_L); β = 1 is the label itself."""
    x, y = batch()
    for beta in (1.0, 0.25):
        size = ["algo.top_target.size=4"] if algo == "aosdtp" else []
        rule = make_rule(algo, top_step=beta, overrides=size)
        hs = rule.net.forward_all(x, detach=True)
        o = torch.softmax(hs[-1], dim=1).detach()
        t_o = rule.compute_targets(x, y, hs)[-1][:, :3]
        torch.testing.assert_close(t_o, o + beta * (F.one_hot(y, 3).double() - o))


def test_aux_output_targets_keep_z_and_use_the_label():
    rule = make_rule("aosdtp", overrides=["algo.top_target.size=7"])
    x, y = batch()
    hs = rule.net.forward_all(x, detach=True)
    targets = rule.compute_targets(x, y, hs)
    out = rule.output_repr(hs[-1], hs[-2])  # [softmax(h_L), z]: (N, 3 + 7)
    assert targets[-1].shape == out.shape == (8, 10)
    torch.testing.assert_close(targets[-1][:, 3:], out[:, 3:])
    torch.testing.assert_close(targets[-1][:, :3], F.one_hot(y, 3).double())


def test_vanilla_tp_targets_are_inverses_of_targets():
    rule = make_rule("tp")
    x, y = batch()
    hs = rule.net.forward_all(x, detach=True)
    targets = rule.compute_targets(x, y, hs)
    torch.testing.assert_close(targets[0], rule.inverse(1, targets[1]))


@pytest.mark.parametrize(
    "algo,overrides,match",
    [
        ("ldrl", ["algo.inverse_loss.sigma=[0.1,0.2]"], "has 2 entries; expected 3"),  # G_2..G_4
        ("dtp", ["algo.schedule.feedback_iterations=[1,1,1]"], "has 3 entries; expected 2"),
        ("dtp", ["algo.feedback_lr=[1e-3]"], "expected 2"),
        ("dtp", ["algo/inverse_loss=drl"], "which top_target=gradient_step does not learn"),
        ("drl", ["algo.inverse_loss.sigma=0.0"], "sigma must be > 0"),
        ("dtp", ["algo.feedback.hybrid=1.5"], "hybrid=1.5 must lie in"),
        ("tp", ["algo.feedback.hybrid=0.5"], "use feedback.difference=true"),
        ("fwdtp", ["algo/feedback=learned_inverse"], "keep algo/feedback=fixed_random"),
        ("fwdtp", ["+algo/inverse_loss=ldrl"], "trains no feedback weights"),
        ("fwdtp", ["algo/top_target=aux_label"], "needs a learned G_L"),
        ("fwdtp", ["algo/schedule=alternating"], "schedule=alternating means nothing"),
        ("dtp", ["algo.inverse_loss=null"], "set algo/inverse_loss"),
    ],
)
def test_bad_options_are_one_sentence(algo, overrides, match):
    with pytest.raises(ConfigError, match=match):
        make_rule(algo, overrides=overrides)


def test_rule_on_a_net_it_cannot_train_fails_at_start():
    with pytest.raises(ConfigError, match="at least 3 layers"):
        make_rule("dtp", hidden=(5,))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu", "elu"])
def test_fwdtp_target_steps_keep_float32_accuracy_down_a_deep_net(activation):
    """With G_l = σ(B_l h), B_l ~ U(−0.01, 0.01), each step is ~10x smaller than the one above: on
    Bartunov's 6x256 net the lowest is ~10⁻⁶ of h_1, and forming t = h + Δ, G(t) − G(h) in float32
    left 78 % rounding error there. The steps must match a float64 evaluation of the same rule."""
    torch.manual_seed(0)
    net = fc((64,), 10, hidden=[256] * 6, activation=activation)
    cfg = algo_config("fwdtp", ["algo.feedback.scale=0.01", "algo.feedback.seed=0"])
    rule = instantiate(cfg, net=net, optimizer=ADAM)
    x, y = torch.rand(32, 64), torch.randint(0, 10, (32,))
    steps32 = rule.target_steps(x, y, rule.net.forward_all(x, detach=True))
    rule.double()
    steps64 = rule.target_steps(x.double(), y, rule.net.forward_all(x.double(), detach=True))
    assert steps64[0].norm() < 1e-4 * steps64[-1].norm()  # the steps really do shrink
    for s32, s64 in zip(steps32, steps64, strict=True):
        assert ((s32.double() - s64).norm() / s64.norm()).item() < 1e-4
