"""`tpbench.convert` on a model tpbench does not define, in a plain loop and in Lightning, and the
same model through `net=torch` and the rules: B = W is backprop, DFA by hand, errors."""

from __future__ import annotations

import copy
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tpbench
from tests.test_feedback_alignment import assert_same_updates, fit_steps
from tpbench.algorithms.backprop import Backprop
from tpbench.algorithms.feedback_alignment import FeedbackAlignment
from tpbench.conversion import RoutedConv2d, RoutedLinear
from tpbench.errors import ConfigError
from tpbench.nets.routes import routed_layers
from tpbench.nets.torch_net import TorchNet
from tpbench.train import build


class SkipNet(nn.Module):
    """A user's model: conv, a skip connection over two convs, max-pooling, dropout, linear."""

    def __init__(self, num_classes: int = 4, width: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(2, width, 3, padding="same")
        self.block = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.Tanh(), nn.Conv2d(width, width, 1)
        )
        self.pool, self.drop = nn.MaxPool2d(2), nn.Dropout(0.3)
        self.fc1, self.fc2 = nn.Linear(width * 9, 7), nn.Linear(7, num_classes)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = self.pool(h + self.block(h)).flatten(1)  # (N, width·3·3)
        return self.fc2(self.drop(torch.tanh(self.fc1(h))))


def data(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 6, 6, generator=g), torch.randint(0, 4, (n,), generator=g)


def sgd_step(model, x, y, seed=7):
    """One plain PyTorch step: forward (dropout seeded), cross-entropy, backward, SGD."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(seed)
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return [p.grad.clone() for p in model.parameters()]


def feedback_equal_to_weights(model, kind):
    for layer in routed_layers(model):
        w = layer.weight.detach().clone()
        layer.feedback["B"].weight = w if kind == "fa" else w.abs()


@pytest.mark.parametrize("kind", ["fa", "frsf", "brsf"])
def test_converted_model_with_b_equal_w_is_backprop_in_a_plain_loop(kind):
    torch.manual_seed(0)
    original = SkipNet()
    converted = tpbench.convert(copy.deepcopy(original), rule=kind, seed=1)
    assert [type(m) for m in routed_layers(converted)] == [RoutedConv2d] * 3 + [RoutedLinear] * 2
    feedback_equal_to_weights(converted, kind)
    if kind == "brsf":  # its magnitudes are redrawn before every training pass
        converted._forward_pre_hooks.clear()
    x, y = data()
    for got, want in zip(sgd_step(converted, x, y), sgd_step(original, x, y), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_random_feedback_changes_only_the_updates_below_the_top():
    torch.manual_seed(0)
    original = SkipNet()
    converted = tpbench.convert(copy.deepcopy(original), rule="fa", seed=1)
    got, want = sgd_step(converted, *data()), sgd_step(original, *data())
    torch.testing.assert_close(got[-2:], want[-2:])  # fc2: W, b
    assert not torch.allclose(got[0], want[0])


def test_dfa_conversion_sends_e_times_d_to_each_input():
    """Two Linear layers: W₁'s update is ((e·D₂) ⊙ tanh′(a₁))ᵀ·x, e = ∂ℓ/∂logits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    tpbench.convert(model, rule="dfa", seed=2, num_outputs=3)
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 1])
    w1, b1 = model[0].weight.detach().clone(), model[0].bias.detach().clone()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    d2 = model[2].feedback["D"].weight  # (3, 5)
    assert "D" not in model[0].feedback  # its input is the data
    h1 = torch.tanh(x @ w1.T + b1)
    e = (model(x).softmax(1) - F.one_hot(y, 3)) / 4
    delta1 = (e @ d2) * (1 - h1**2)
    torch.testing.assert_close(model[0].weight.grad, delta1.T @ x)
    torch.testing.assert_close(model[2].weight.grad, e.T @ h1)


@pytest.mark.parametrize("rule", ["bp", "fa", "usf", "frsf", "brsf", "dfa"])
def test_every_rule_fits_a_batch_in_a_plain_loop(rule):
    torch.manual_seed(0)
    model = tpbench.convert(SkipNet(), rule=rule, seed=0, num_outputs=4)
    model.drop.p = 0.0
    x, y = data(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]


class TwoScaleNet(nn.Module):
    """One conv applied at two resolutions (weights shared across scales), one Linear applied to
    both scales' pooled features: each module runs twice per forward pass at different sizes."""

    def __init__(self, num_classes: int = 4, width: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(2, 2, 1)
        self.conv = nn.Conv2d(2, width, 3, padding=1, stride=2)
        self.fc = nn.Linear(width, width)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = torch.tanh(self.stem(x))
        fine, coarse = self.conv(x), self.conv(F.avg_pool2d(x, 2))  # (N, w, 4, 4), (N, w, 2, 2)
        pooled = [torch.tanh(self.fc(h.mean((2, 3)))) for h in (torch.tanh(fine), coarse)]
        return self.head(torch.cat(pooled, 1))


def test_module_called_at_two_sizes_with_b_equal_w_is_backprop():
    torch.manual_seed(0)
    original = TwoScaleNet()
    converted = tpbench.convert(copy.deepcopy(original), rule="fa", seed=1)
    feedback_equal_to_weights(converted, "fa")
    x, y = torch.randn(8, 2, 8, 8), torch.randint(0, 4, (8,))
    for got, want in zip(sgd_step(converted, x, y), sgd_step(original, x, y), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("rule", ["fa", "usf", "frsf", "brsf", "dfa"])
def test_module_called_at_two_sizes_trains_under_every_rule(rule):
    torch.manual_seed(0)
    model = tpbench.convert(TwoScaleNet(), rule=rule, seed=0, num_outputs=4)
    x = torch.randn(8, 2, 8, 8)
    sgd_step(model, x, torch.randint(0, 4, (8,)))
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())
    if rule == "dfa":  # one D per input size of the shared conv
        assert set(model.conv.feedback) == {"D", "D_2x4x4"} and set(model.fc.feedback) == {"D"}


class Classifier(L.LightningModule):
    """An ordinary LightningModule (automatic optimization) around any model."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


def test_converted_model_trains_in_lightning():
    torch.manual_seed(0)
    model = tpbench.convert(SkipNet(), rule="frsf", seed=3)
    magnitudes = [layer.feedback["B"].weight.clone() for layer in routed_layers(model)]
    x, y = data(16)
    before = float(F.cross_entropy(model.eval()(x), y))
    trainer = L.Trainer(
        max_epochs=30, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(Classifier(model), train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=16))
    assert float(F.cross_entropy(model.eval()(x), y)) < 0.5 * before
    for layer, magnitude in zip(routed_layers(model), magnitudes, strict=True):
        assert torch.equal(layer.feedback["B"].weight, magnitude)  # fixed |R|


def test_net_torch_with_fa_and_b_equal_w_is_backprop():
    """The same model through TorchNet and the FeedbackAlignment rule (as `net=torch` builds it)."""
    SGD = partial(torch.optim.SGD, lr=0.1)

    def net():
        torch.manual_seed(0)
        return TorchNet(partial(SkipNet, width=4), (2, 6, 6), num_classes=4)

    bp, fa = Backprop(net(), SGD), FeedbackAlignment(net(), SGD, feedback="fa", feedback_seed=1)
    bp.net.model.drop.p = fa.net.model.drop.p = 0.0
    feedback_equal_to_weights(fa.net, "fa")
    fit_steps(bp, [data()])
    fit_steps(fa, [data()])
    assert_same_updates(fa, bp)


@pytest.mark.parametrize("algo", ["fa", "dfa"])
def test_net_torch_config_takes_any_importable_class(make_cfg, algo):
    cfg = make_cfg(
        [f"algo={algo}", "net=torch", "net.model._target_=tests.test_convert.SkipNet",
         "~net.model.width", "data.shape=[2,6,6]", "data.num_classes=4", "trainer.max_epochs=1"]
    )  # fmt: skip
    datamodule, rule, trainer = build(cfg)
    assert isinstance(rule.net.model, SkipNet) and len(routed_layers(rule.net)) == 5
    trainer.fit(rule, datamodule=datamodule)


def test_errors_are_one_sentence():
    with pytest.raises(ConfigError, match="Unknown rule 'sfa'.*bp, fa, usf"):
        tpbench.convert(SkipNet(), rule="sfa")
    with pytest.raises(ConfigError, match="needs num_outputs"):
        tpbench.convert(SkipNet(), rule="dfa")
    with pytest.raises(ConfigError, match="has not run yet"):
        tpbench.convert(nn.LazyLinear(3), rule="fa")
    with pytest.raises(ConfigError, match=r"outputs of shape \(4,\).*not \(10,\)"):
        TorchNet(SkipNet(), (2, 6, 6), num_classes=10)
