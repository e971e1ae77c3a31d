"""FA, DFA and sign-symmetry: the math of their updates, fixed feedback, and that they learn."""

from __future__ import annotations

import copy
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from tpbench.algorithms.backprop import Backprop
from tpbench.algorithms.direct_feedback_alignment import (
    DirectFeedbackAlignment,
    direct_feedback_bytes,
)
from tpbench.algorithms.feedback_alignment import FeedbackAlignment
from tpbench.errors import ConfigError
from tpbench.nets import Dense, Network
from tpbench.nets.architectures import conv, fc, lc
from tpbench.train import build

SGD = partial(torch.optim.SGD, lr=0.1)


def fit_steps(rule, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Run the rule's real training_step (manual optimization) on the given batches."""
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(rule, train_dataloaders=DataLoader(batches, batch_size=None))


def batch(in_shape=(1, 6, 6), num_classes=5, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *in_shape, generator=g), torch.randint(0, num_classes, (n,), generator=g)


def dense_net():
    torch.manual_seed(0)
    return fc((1, 6, 6), 5, hidden=(7, 6))


def seeded(make_net, *args, **kwargs):
    torch.manual_seed(0)
    return make_net(*args, **kwargs)


NETS = {  # every layer type, with and without max-pooling at the end of a spatial block
    "dense": dense_net,
    "lc": partial(seeded, lc, (2, 9, 9), 5, blocks=((3, 4, 2), (3, 3, 1)), hidden=(6,)),
    "lc_pool": partial(seeded, lc, (2, 8, 8), 5, blocks=((3, 4, 1),), hidden=(6,), pool=2),
    "conv_pool": partial(
        seeded,
        conv,
        (2, 8, 8),
        5,
        blocks=((3, 4, 1), (5, 3, 2)),
        hidden=(),
        pool=2,
        pool_ceil=True,
    ),
}


def grads_and_params(rule):
    params = rule.net.forward_parameters()
    return [p.grad.clone() for p in params], [p.detach().clone() for p in params]


def assert_same_updates(rule_a, rule_b):
    for a, b in zip(grads_and_params(rule_a), grads_and_params(rule_b)):
        for ta, tb in zip(a, b, strict=True):
            torch.testing.assert_close(ta, tb, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make_net", NETS.values(), ids=NETS.keys())
def test_fa_with_feedback_equal_to_weights_is_backprop(make_net):
    """B_l := W_l makes FA's updates exactly BP's, on every layer type."""
    net = make_net()
    bp = Backprop(copy.deepcopy(net), SGD)
    fa = FeedbackAlignment(net, SGD, feedback="fa", feedback_seed=1)
    for layer in fa.net:
        layer.feedback["B"].weight.copy_(layer.weight.detach())
    xy = [batch(fa.net.in_shape, fa.net.out_shape[-1])]
    fit_steps(bp, xy)
    fit_steps(fa, xy)
    assert_same_updates(fa, bp)


class SkipDense(Dense):
    """A block the rules know nothing about: h = σ(W·x + b) + x, with a batch standardisation of
    the skip path, written only as its own forward pass (a route passes through untouched)."""

    def forward(self, x, route=None):
        skip = (x - x.mean(0)) / (x.std(0) + 1e-5)
        return super().forward(x, route) + skip


def residual_net():
    torch.manual_seed(0)
    return Network([Dense((1, 6, 6), 7), SkipDense((7,), 7), SkipDense((7,), 7), Dense((7,), 5)])


@pytest.mark.parametrize("kind", ["fa", "usf", "frsf", "brsf"])
def test_feedback_alignment_on_a_residual_block_with_b_equal_w_is_backprop(kind):
    """A block with a skip connection and a normalisation trains under FA and sign-symmetry
    without touching the rule: with B = W (sign-symmetry: |R| = |W|) the updates are BP's."""
    bp = Backprop(residual_net(), SGD)
    rule = FeedbackAlignment(residual_net(), SGD, feedback=kind, feedback_seed=1)
    if kind == "brsf":  # its magnitudes are redrawn every step: check the route directly
        rule.redraw_magnitudes = lambda: None
    for layer in rule.net:
        magnitude = layer.weight.detach() if kind in ("fa", "frsf", "brsf") else None
        if magnitude is None:  # uSF: B = s·sign(W) equals W only when |W| = s everywhere
            layer.weight.data = layer.weight.detach().sign() * 0.3
            bp.net[list(rule.net).index(layer)].weight.data = layer.weight.detach().clone()
            magnitude = torch.tensor(0.3)
        layer.feedback["B"].weight = magnitude.abs() if kind != "fa" else magnitude.clone()
    xy = [batch(rule.net.in_shape, 5)]
    fit_steps(bp, xy)
    fit_steps(rule, xy)
    assert_same_updates(rule, bp)
    # and random feedback does change the updates below the top through the skip blocks
    random_fa = FeedbackAlignment(residual_net(), SGD, feedback="fa", feedback_seed=1)
    fit_steps(random_fa, xy)
    assert not torch.allclose(grads_and_params(random_fa)[0][0], grads_and_params(bp)[0][0])


def test_fa_random_feedback_differs_from_backprop_below_the_top():
    """With random B only the output layer's gradient is BP's (a check the identity is not void)."""
    net = dense_net()
    bp, fa = Backprop(copy.deepcopy(net), SGD), FeedbackAlignment(net, SGD, feedback_seed=1)
    fit_steps(bp, [batch()])
    fit_steps(fa, [batch()])
    (g_fa, _), (g_bp, _) = grads_and_params(fa), grads_and_params(bp)
    torch.testing.assert_close(g_fa[-2:], g_bp[-2:])  # W_L, b_L
    assert not torch.allclose(g_fa[0], g_bp[0])


@pytest.mark.parametrize("kind", ["usf", "frsf"])
def test_sign_symmetry_follows_the_signs_of_w_as_w_changes(kind):
    """A uSF/frSF step equals an FA step with B = s·sign(W) (uSF) or |R|·sign(W) (frSF), for the
    W of that moment, also after W's signs have changed under training."""
    rule = FeedbackAlignment(dense_net(), partial(torch.optim.SGD, lr=2.0), feedback=kind)
    initial_signs = [layer.weight.detach().sign() for layer in rule.net]
    magnitudes = [layer.feedback["B"].weight.clone() for layer in rule.net]  # s (uSF) or |R|
    fit_steps(rule, [batch(seed=s) for s in range(5)])  # large steps: some signs flip
    assert any((l.weight.sign() != s).any() for l, s in zip(rule.net, initial_signs))

    fa = FeedbackAlignment(copy.deepcopy(rule.net), SGD, feedback="fa")
    for layer, magnitude in zip(fa.net, magnitudes):  # the B the rule must use now
        layer.feedback["B"].weight.copy_(magnitude * layer.weight.detach().sign())
    rule.optimizer_factory = SGD
    fit_steps(rule, [batch(seed=9)])
    fit_steps(fa, [batch(seed=9)])
    assert_same_updates(rule, fa)


@pytest.mark.parametrize("kind", ["fa", "usf", "frsf"])
def test_default_feedback_is_like_the_init_of_w(kind):
    """B (FA), s (uSF) and |R| (frSF) default to W's init statistics."""
    net = fc((1, 28, 28), 10, hidden=(256,))
    stds = [layer.weight.detach().std() for layer in net]
    abs_means = [layer.weight.detach().abs().mean() for layer in net]
    FeedbackAlignment(net, SGD, feedback=kind)
    for layer, std, abs_mean in zip(net, stds, abs_means):
        stored = layer.feedback["B"].weight
        if kind == "usf":
            torch.testing.assert_close(stored, std)  # s = σ_W
        elif kind == "fa":
            torch.testing.assert_close(stored.std(), std, rtol=0.05, atol=0)
            assert stored.abs().max() <= 3**0.5 * std
        else:
            torch.testing.assert_close(stored.mean(), abs_mean, rtol=0.05, atol=0)


def test_dfa_updates_equal_a_hand_computation_of_delta():
    """δ_l = (e·D_l) ⊙ tanh′(a_l), e = ∂ℓ/∂logits; ∂ℓ/∂W_l = δ_lᵀ h_{l-1}; the top layer is BP."""
    net = dense_net()
    x, y = batch()
    rule = DirectFeedbackAlignment(net, SGD, feedback_seed=3)
    params = [p.detach().clone() for p in net.forward_parameters()]  # before the step
    w1, b1, w2, b2, w3, b3 = params
    # D on the layer that reads h_l: (5, 7) maps e to h_1, (5, 6) to h_2; none for the data
    d1, d2 = (net[i].feedback["D"].weight.clone() for i in (1, 2))
    assert d1.shape == (5, 7) and d2.shape == (5, 6) and "D" not in net[0].feedback
    fit_steps(rule, [(x, y)])

    h0 = x.flatten(1)  # (N, 36)
    h1 = torch.tanh(h0 @ w1.T + b1)  # (N, 7)
    h2 = torch.tanh(h1 @ w2.T + b2)  # (N, 6)
    logits = h2 @ w3.T + b3  # (N, 5)
    e = (logits.softmax(1) - F.one_hot(y, 5)) / len(x)  # ∂ mean CE / ∂ logits
    delta2 = (e @ d2) * (1 - h2**2)
    delta1 = (e @ d1) * (1 - h1**2)
    expected = [delta1.T @ h0, delta1.sum(0), delta2.T @ h1, delta2.sum(0), e.T @ h2, e.sum(0)]
    grads, _ = grads_and_params(rule)
    for g, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-7)


def test_dfa_feedback_is_only_as_large_as_the_math_needs():
    """Σ_{hidden l} num_classes · |h_l| floats: 10 · 6 · 256 for Bartunov's MNIST FC net."""
    net = fc((1, 28, 28), 10)
    DirectFeedbackAlignment(net, SGD)
    assert direct_feedback_bytes(net) == 10 * 6 * 256 * 4
    stored = sum(b.numel() for layer in net for b in layer.feedback.buffers())
    assert stored * 4 == direct_feedback_bytes(net)


def test_unknown_feedback_kind_is_one_sentence():
    with pytest.raises(ConfigError, match="'sfa'.*fa, usf, frsf, brsf"):
        FeedbackAlignment(dense_net(), SGD, feedback="sfa")


def test_brsf_step_uses_that_steps_fresh_magnitudes():
    """A brSF step equals an FA step with B = |R_t|·sign(W), R_t drawn for that step from
    (feedback_seed, step): the same on every rank, new at the next step."""
    rules = [FeedbackAlignment(dense_net(), SGD, feedback="brsf", feedback_seed=4) for _ in "ab"]
    rules[0].redraw_magnitudes()  # the draw of step 0 (training redraws it identically)
    drawn = [layer.feedback["B"].weight.clone() for layer in rules[0].net]
    fa = FeedbackAlignment(copy.deepcopy(rules[0].net), SGD, feedback="fa")
    for layer, magnitude in zip(fa.net, drawn):
        layer.feedback["B"].weight.copy_(magnitude * layer.weight.detach().sign())
    for rule in (*rules, fa):
        fit_steps(rule, [batch()])
    assert_same_updates(rules[0], fa)
    assert_same_updates(rules[1], fa)  # another rank / run with the same seed
    rules[0].redraw_magnitudes()  # global_step is now 1
    fresh = rules[0].net[1].feedback["B"].weight
    assert not torch.equal(fresh, drawn[1]) and (fresh >= 0).all()


@pytest.mark.parametrize("algo", ["fa", "dfa", "usf", "frsf", "brsf"])
def test_rule_learns_and_fixed_feedback_never_changes(make_cfg, algo):
    """Through the real config and trainer: well above chance (0.9 error) on fake data, while
    every fixed B_l / D_l (and frSF's |R_l|) stays exactly as built and is saved with the model."""
    datamodule, rule, trainer = build(
        make_cfg([f"algo={algo}", "trainer.max_epochs=3", "net.hidden=[256,256]"])
    )
    fixed = {k: v.clone() for k, v in rule.state_dict().items() if ".feedback." in k}
    assert fixed or algo == "usf"
    trainer.fit(rule, datamodule=datamodule)
    assert trainer.callback_metrics["val/err_best"] < 0.5
    after = rule.state_dict()
    for name, tensor in fixed.items():
        assert algo == "brsf" or torch.equal(after[name], tensor), name


def test_dfa_through_max_pooling_equals_a_hand_computation():
    """Conv block h = pool(tanh(a)): δ_a = Sᵀ(e·D) ⊙ tanh′(a), S the max switch (max_unpool2d)."""
    net = seeded(conv, (2, 8, 8), 5, blocks=((3, 4, 1), (3, 3, 1)), hidden=(), pool=2)
    x, y = batch((2, 8, 8))
    rule = DirectFeedbackAlignment(net, SGD, feedback_seed=3)
    weights = [layer.weight.detach().clone() for layer in net]
    biases = [layer.bias.detach().clone() for layer in net]
    feedback = [net[i].feedback["D"].weight.clone() for i in (1, 2)]  # (5, 4, 4, 4), (5, 3, 2, 2)
    fit_steps(rule, [(x, y)])

    h, inputs, deltas = x, [], []
    for w, b, d in zip(weights[:2], biases[:2], feedback):
        a = F.conv2d(h, w, b.flatten(), padding=1)  # (N, C, H, W)
        s = torch.tanh(a)
        pooled, where = F.max_pool2d(s, 2, return_indices=True)  # (N, C, H/2, W/2)
        inputs.append(h)
        deltas.append((where, d, s))
        h = pooled
    logits = h.flatten(1) @ weights[2].T + biases[2]
    e = (logits.softmax(1) - F.one_hot(y, 5)) / len(x)
    grads, _ = grads_and_params(rule)
    for i, (where, d, s) in enumerate(deltas):
        signal = (e @ d.flatten(1)).view(len(x), *d.shape[1:])  # e·D_l at the pooled units
        delta = F.max_unpool2d(signal, where, 2, output_size=s.shape[2:]) * (1 - s**2)
        want_w = torch.nn.grad.conv2d_weight(inputs[i], weights[i].shape, delta, padding=1)
        torch.testing.assert_close(grads[2 * i], want_w, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(grads[2 * i + 1], delta.sum((0, 2, 3)).view(-1, 1, 1))
    torch.testing.assert_close(grads[4], e.T @ h.flatten(1))


def test_dfa_memory_of_bartunov_imagenet_lc_from_its_config(make_cfg):
    """ImageNet32 (3x32x32, 1000 classes): LC outputs 48·8² + 48·4² + 96·4² + 96·2² + 192·2² +
    192·1² + 384·1² = 7104 units, so all D_l take 1000 · 7104 floats (27.1 MB)."""
    cfg = make_cfg(["net=bartunov_imagenet_lc"])
    with torch.device("meta"):  # shapes only
        net = instantiate(cfg.net, in_shape=(3, 32, 32), num_classes=1000)
    assert direct_feedback_bytes(net) == 1000 * 7104 * 4
