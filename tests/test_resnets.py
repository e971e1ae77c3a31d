"""Residual blocks, batch norm and the ResNets: sizes as published, shapes on every dataset, the
feedback-alignment family on them (B = W is backprop; DFA by hand), target propagation refusing
them in one sentence."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from tests.conftest import CONF
from tests.test_feedback_alignment import assert_same_updates, fit_steps
from tpbench.algorithms.backprop import Backprop
from tpbench.algorithms.direct_feedback_alignment import DirectFeedbackAlignment
from tpbench.algorithms.feedback_alignment import FeedbackAlignment
from tpbench.errors import ConfigError
from tpbench.nets.blocks import BasicBlock
from tpbench.nets.network import Network
from tpbench.nets.resnet import PooledDense, resnet, resnet18
from tpbench.nets.routes import routed_layers
from tpbench.train import build

SGD = partial(torch.optim.SGD, lr=0.1)
DATASETS = ["mnist", "fmnist", "cifar10", "cifar100", "imagenet32"]


def count(net) -> int:
    return sum(p.numel() for p in net.forward_parameters())


def test_parameter_counts_as_published():
    """He et al. 2016 §4.2: ResNet-20 0.27M, ResNet-56 0.85M (option A); ResNet-18 11.2M."""
    assert count(resnet((3, 32, 32), 10, depth=20)) == 269_722
    assert count(resnet((3, 32, 32), 10, depth=56)) == 853_018
    assert count(resnet18((3, 32, 32), 10)) == 11_173_962
    assert round(count(resnet((3, 32, 32), 10, depth=20)) / 1e6, 2) == 0.27
    assert round(count(resnet((3, 32, 32), 10, depth=56)) / 1e6, 2) == 0.85


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet18"])
def test_every_resnet_on_every_dataset(make_cfg, name, data):
    """The data config's shape and class count in, logits out; every block's out_shape holds."""
    cfg = make_cfg([f"net={name}", f"data={data}"])
    datamodule = instantiate(cfg.data)  # reads nothing
    shape, classes = datamodule.shape, datamodule.num_classes
    torch.manual_seed(0)
    net = instantiate(cfg.net, in_shape=shape, num_classes=classes)
    x = torch.randn(2, *shape)
    hs = net.forward_all(x)
    assert hs[-1].shape == (2, classes)
    assert [tuple(h.shape[1:]) for h in hs] == [layer.out_shape for layer in net]


def small_resnet(shortcut: str, in_shape=(2, 8, 8), classes=5):
    """A 8-layer ResNet (one block per stage) of width 3: every kind of block, shapes tiny."""
    torch.manual_seed(0)
    return resnet(in_shape, classes, depth=8, width=3, shortcut=shortcut)


def batch(in_shape=(2, 8, 8), classes=5, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *in_shape, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("shortcut", ["identity", "projection"])
@pytest.mark.parametrize("kind", ["fa", "usf", "frsf", "brsf"])
def test_feedback_alignment_with_b_equal_w_on_a_resnet_is_backprop(kind, shortcut):
    """B := W in every conv of every block (shortcuts included) and in the head: the updates of
    every weight, batch-norm scale and shift are BP's exactly."""
    bp = Backprop(small_resnet(shortcut), SGD)
    rule = FeedbackAlignment(small_resnet(shortcut), SGD, feedback=kind, feedback_seed=1)
    layers = routed_layers(rule.net)
    assert len(layers) == count_convs(rule.net) + 1
    if kind == "brsf":  # redrawn every step: pin the magnitudes to |W|
        rule.redraw_magnitudes = lambda: None
    for layer, twin in zip(layers, routed_layers(bp.net), strict=True):
        if kind == "usf":  # s·sign(W) = W needs |W| = s everywhere
            layer.weight.data = layer.weight.detach().sign() * 0.2
            twin.weight.data = layer.weight.detach().clone()
            layer.feedback["B"].weight = torch.tensor(0.2)
        else:
            w = layer.weight.detach().clone()
            layer.feedback["B"].weight = w if kind == "fa" else w.abs()
    xy = [batch()]
    fit_steps(bp, xy)
    fit_steps(rule, xy)
    assert_same_updates(rule, bp)


def count_convs(net) -> int:
    return sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_random_feedback_on_a_resnet_differs_from_backprop():
    bp = Backprop(small_resnet("projection"), SGD)
    fa = FeedbackAlignment(small_resnet("projection"), SGD, feedback_seed=1)
    fit_steps(bp, [batch()])
    fit_steps(fa, [batch()])
    first_fa, first_bp = (routed_layers(r.net)[0].weight.grad for r in (fa, bp))
    assert not torch.allclose(first_fa, first_bp)
    torch.testing.assert_close(fa.net[-1].weight.grad, bp.net[-1].weight.grad)  # the head


def bn(a: torch.Tensor, module: torch.nn.BatchNorm2d) -> torch.Tensor:
    """Training-mode batch norm with the module's γ, β (statistics of this batch)."""
    return F.batch_norm(a, None, None, module.weight, module.bias, True, 0.0, module.eps)


def test_dfa_update_of_a_residual_block_equals_a_hand_computation():
    """Block h = relu(N₂(W₂ ⊛ m) + N_s(W_s ⊛ x)), m = relu(N₁(W₁ ⊛ x)), then the pooled head.
    DFA sends e·D into every weight layer's input, weight-free below it:
      head input p = mean_hw(h) gets e·D_head, so ∂/∂h = (e·D_head)/(HW) broadcast;
      z = N₂(·) + N_s(·) gets g_z = ∂/∂h ⊙ relu′, carried by N₂ and N_s to W₂'s and W_s's output;
      m (the input of W₂) gets e·D₂ (not W₂ᵀ·δ), so W₁'s output gets N₁ᵀ(e·D₂ ⊙ relu′)."""
    torch.manual_seed(0)
    block = BasicBlock((2, 6, 6), 3, stride=2, shortcut="projection")
    net = Network([block, PooledDense((3,), 4, "identity", True, "glorot")])
    rule = DirectFeedbackAlignment(net, SGD, feedback_seed=5)
    x, y = batch((2, 6, 6), 4)
    w1, w2, ws = (c.weight.detach().clone() for c in (block.conv1, block.conv2, block.shortcut))
    d2 = block.conv2.feedback["D"].weight  # (4, 3, 3, 3)
    d_head = net[1].feedback["D"].weight  # (4, 3)
    assert "D" not in block.conv1.feedback and "D" not in block.shortcut.feedback  # read the data
    w_head, b_head = net[1].weight.detach().clone(), net[1].bias.detach().clone()
    n1, n2, ns = (copy.deepcopy(c.norm) for c in (block.conv1, block.conv2, block.shortcut))
    fit_steps(rule, [(x, y)])

    def local(f, inp, grad_out):  # the vector-Jacobian product of one weight-free op
        inp = inp.detach().requires_grad_()
        return torch.autograd.grad(f(inp), inp, grad_out)[0]

    c1 = F.conv2d(x, w1, stride=2, padding=1)
    a1 = bn(c1, n1)
    m = torch.relu(a1)
    c2, cs = F.conv2d(m, w2, padding=1), F.conv2d(x, ws, stride=2)
    z = bn(c2, n2) + bn(cs, ns)
    h = torch.relu(z)
    p = h.mean((2, 3))
    logits = p @ w_head.T + b_head
    e = (logits.softmax(1) - F.one_hot(y, 4)) / len(x)
    g_h = (e @ d_head).view(-1, 3, 1, 1).expand_as(h) / 9  # through the mean over 3x3
    g_z = g_h * (z > 0)
    g_c2 = local(lambda t: bn(t, n2), c2, g_z)
    g_cs = local(lambda t: bn(t, ns), cs, g_z)
    g_m = (e @ d2.flatten(1)).view_as(m)  # e·D₂ at W₂'s input
    g_c1 = local(lambda t: bn(t, n1), c1, g_m * (a1 > 0))
    conv_w = torch.nn.grad.conv2d_weight
    expected = {
        block.conv1.weight: conv_w(x, w1.shape, g_c1, stride=2, padding=1),
        block.conv2.weight: conv_w(m, w2.shape, g_c2, padding=1),
        block.shortcut.weight: conv_w(x, ws.shape, g_cs, stride=2),
        block.conv2.norm.weight: (g_z * (c2 - c2.mean((0, 2, 3), keepdim=True))).sum((0, 2, 3))
        / (c2.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt().flatten(),
        block.conv1.norm.bias: (g_m * (a1 > 0)).sum((0, 2, 3)),
        net[1].weight: e.T @ p,
    }
    for param, want in expected.items():
        torch.testing.assert_close(param.grad, want, rtol=1e-4, atol=1e-6)


SLOW_RULES = [pytest.param(a, marks=pytest.mark.slow) for a in ("usf", "frsf", "brsf")]


@pytest.mark.parametrize("algo", ["fa", "dfa", *SLOW_RULES])
def test_every_feedback_alignment_rule_trains_a_resnet(make_cfg, algo):
    """Through the config and trainer, on 3x16x16 fake data: the training loss falls (the fake
    labels hide in per-pixel prototypes that global average pooling mostly blurs, so no accuracy
    bar), running statistics move, fixed feedback stays fixed (brSF's is redrawn by design)."""
    cfg = make_cfg(
        [f"algo={algo}", "net=resnet20", "net.depth=8", "net.width=4", "data.shape=[3,16,16]",
         "trainer.max_epochs=3", "algo.optimizer.lr=0.01"]
    )  # fmt: skip
    datamodule, rule, trainer = build(cfg)
    datamodule.setup("fit")
    x, y = next(iter(datamodule.train_dataloader()))

    def loss() -> float:
        with torch.no_grad():
            return float(rule.task_loss(rule.net(x), y))  # batch statistics (train mode)

    before = loss()
    fixed = {k: v.clone() for k, v in rule.state_dict().items() if ".feedback." in k}
    trainer.fit(rule, datamodule=datamodule)
    rule.net.train()
    assert loss() < 0.9 * before
    assert rule.net[0].norm.running_mean.abs().sum() > 0
    after = rule.state_dict()
    assert all(algo == "brsf" or torch.equal(after[k], v) for k, v in fixed.items())


@pytest.mark.parametrize("algo", ["dtp", "ldrl", "fwdtp"])
def test_target_propagation_refuses_a_resnet_in_one_sentence(make_cfg, algo):
    cfg = make_cfg([f"algo={algo}", "net=resnet20", "data.shape=[3,32,32]"])
    with pytest.raises(ConfigError, match=f"algo '{algo}' cannot train this net.*BasicBlock"):
        build(cfg)


def test_resnet_options_from_yaml_projection_shortcuts_and_batch_norm_everywhere(make_cfg):
    cfg = make_cfg(["net=resnet20", "net.shortcut=projection"])
    net = instantiate(cfg.net, in_shape=(3, 32, 32), num_classes=10)
    convs = [m for m in routed_layers(net) if m is not net[-1]]
    assert len(convs) == 19 + 2 and all(c.norm is not None for c in convs)  # + 2 projections
    assert isinstance(net[-1].norm, type(None)) and (CONF / "net" / "resnet20.yaml").is_file()


def test_mnist_resized_to_32_on_the_device(tmp_path):
    """data.resize=32: the data module reports (1, 32, 32) and serves bilinearly resized batches
    (a constant image stays constant), so LeNet as biotorch runs it fits MNIST."""
    from tpbench.data.mnist import MNISTDataModule

    dm = MNISTDataModule(data_dir=str(tmp_path), resize=32, normalize=False)
    assert dm.shape == (1, 32, 32)
    x = torch.full((3, 1, 28, 28), 51, dtype=torch.uint8)
    out = dm.normalizer(x)
    assert out.shape == (3, 1, 32, 32)
    torch.testing.assert_close(out, torch.full_like(out, 0.2))
    with pytest.raises(ConfigError, match="data.resize"):
        MNISTDataModule(resize=[32])
