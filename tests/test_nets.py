"""Layers and architectures: shapes, transposed operations, feedback pathways, paper specs."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import CONF, NOT_LAYER_SEQUENCES
from tpbench.errors import ConfigError
from tpbench.nets import Conv2d, Dense, LocallyConnected2d, MaxPool
from tpbench.nets.activations import activation_difference, make_activation
from tpbench.nets.architectures import conv, fc, lc
from tpbench.nets.routes import DirectFeedback
from tpbench.nets.standardize import batch_standardize
from tpbench.train import train

# the layer-sequence nets (ResNets, LeNet on 32x32 and net=torch: tests/test_resnets.py, ...)
NETS = sorted(p.stem for p in (CONF / "net").glob("*.yaml") if p.stem not in NOT_LAYER_SEQUENCES)
SHAPES = [(1, 28, 28), (3, 32, 32)]


def build(name: str, shape=(1, 28, 28), classes: int = 10, **overrides):
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "net" / f"{name}.yaml"), overrides)
    return instantiate(cfg, in_shape=shape, num_classes=classes)


def add_all_feedback(net, classes: int) -> None:
    for layer in net:
        layer.build_inverse("identity")
        layer.build_fixed_feedback("B")
        DirectFeedback(classes).build(layer, layer.in_shape, layer.weight.device)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NETS)
def test_every_net_on_every_data_shape(name, shape):
    """Shapes of every block, inverses out_shape -> in_shape, disjoint parameter sets."""
    torch.manual_seed(0)
    net = build(name, shape, classes=7, init="glorot")  # QR-based orthogonal init is slow on CPU
    x = torch.randn(3, *shape)
    hs = net.forward_all(x, detach=True)
    out = math.prod(shape) if "autoencoder" in name else 7
    assert hs[-1].shape == (3, out)
    assert [h.shape[1:] for h in hs] == [layer.out_shape for layer in net]
    assert net[0].in_shape == shape
    add_all_feedback(net, 7)
    for layer, h_in, h in zip(net, [x, *hs], hs, strict=False):
        assert layer.linear(h_in).shape[1:] == layer.linear_shape
        assert layer.inverse(torch.randn_like(h)).shape[1:] == layer.in_shape
        assert layer.feedback["B"].weight.shape == layer.weight.shape
        assert layer.feedback["D"].weight.shape == (7, *layer.in_shape)
    forward = {id(p) for p in net.forward_parameters()}
    feedback = {id(p) for p in net.feedback_parameters()}
    assert forward and feedback and not forward & feedback
    assert forward | feedback == {id(p) for p in net.parameters()}
    assert not any(b is p for b in net.buffers() for p in net.parameters())  # B, D: buffers


SPATIAL = [(7, 3, 1), (8, 3, 2), (9, 5, 2), (11, 9, 4), (6, 1, 3), (5, 3, 3)]  # (H, k, s)


def vjp(layer, x, y_grad):
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(layer.linear(x), x, y_grad)
    return grad


@pytest.mark.parametrize("kind", ["dense", "lc", "conv"])
@pytest.mark.parametrize("height,kernel,stride", SPATIAL)
def test_linear_transpose_is_the_vjp_and_inverse_with_v_eq_w_computes_wt(
    kind, height, kernel, stride
):
    torch.manual_seed(1)
    in_shape = (2, height, height + 1)
    layer = {
        "dense": lambda: Dense(in_shape, 5),
        "lc": lambda: LocallyConnected2d(in_shape, 3, kernel, stride),
        "conv": lambda: Conv2d(in_shape, 3, kernel, stride),
    }[kind]()
    x = torch.randn(4, *in_shape)
    y_grad = torch.randn(4, *layer.out_shape)
    expected = vjp(layer, x, y_grad)
    torch.testing.assert_close(layer.linear_transpose(y_grad), expected)
    # G with V = W, identity σ_g and zero bias is Wᵀ·
    layer.build_inverse("identity")
    torch.testing.assert_close(layer.inverse(y_grad, weight=layer.weight), expected)
    with torch.no_grad():
        layer.feedback["inverse"].weight.copy_(layer.weight)
    torch.testing.assert_close(layer.inverse(y_grad), expected)
    # any weight of W's shape, e.g. a fixed feedback B
    b = layer.build_fixed_feedback("B")
    with torch.no_grad():
        layer.weight.copy_(b)
    torch.testing.assert_close(layer.linear_transpose(y_grad, b), vjp(layer, x, y_grad))


@pytest.mark.parametrize("height,kernel,stride", SPATIAL)
@pytest.mark.parametrize("pool", [None, (2, 2), (3, 2)])
def test_lc_with_equal_position_weights_is_a_conv(height, kernel, stride, pool):
    torch.manual_seed(2)
    if pool and math.ceil(height / stride) < pool[0]:
        pytest.skip("map too small to pool")
    shape = (3, height, height)
    conv_layer = Conv2d(shape, 4, kernel, stride, pool=pool)
    lc_layer = LocallyConnected2d(shape, 4, kernel, stride, pool=pool)
    with torch.no_grad():
        conv_layer.bias.normal_()
        lc_layer.weight.copy_(conv_layer.weight.reshape(1, 4, -1).expand_as(lc_layer.weight))
        lc_layer.bias.copy_(conv_layer.bias.expand_as(lc_layer.bias))
    x = torch.randn(5, *shape)
    torch.testing.assert_close(lc_layer(x), conv_layer(x))
    assert lc_layer.out_shape == conv_layer.out_shape
    g = torch.randn(5, *conv_layer.conv_shape)
    lc_t = lc_layer.linear_transpose(g)
    torch.testing.assert_close(lc_t, conv_layer.linear_transpose(g))


def test_spatial_layers_keep_the_shape_at_stride_1_and_divide_it_by_the_stride():
    for height in (7, 8, 28, 32):
        for stride in (1, 2, 4):
            layer = LocallyConnected2d((1, height, height), 2, 3, stride)
            assert layer.out_shape == (2, -(-height // stride), -(-height // stride))


@pytest.mark.parametrize("kernel,stride,ceil", [(2, 2, False), (2, 2, True), (3, 2, False)])
@pytest.mark.parametrize("height", [7, 8, 13])
def test_unpool_max_is_the_vjp_of_max_pooling_and_nearest_fills_the_map(
    kernel, stride, ceil, height
):
    torch.manual_seed(3)
    pool = MaxPool((2, height, height), kernel, stride, ceil, unpool="max")
    z = torch.randn(3, 2, height, height, requires_grad=True)
    out = pool(z)
    assert out.shape[1:] == pool.out_shape
    h = torch.randn_like(out)
    (expected,) = torch.autograd.grad(out, z, h)
    torch.testing.assert_close(pool.unpool(h), expected)
    with pytest.raises(RuntimeError, match="forward pass"):
        pool.unpool(torch.randn(5, *pool.out_shape))  # no forward pass on a batch of 5
    nearest = MaxPool((2, height, height), kernel, stride, ceil, unpool="nearest")
    assert nearest.unpool(h).shape == z.shape


def test_pooled_block_inverse_unpools_then_applies_the_transposed_conv():
    torch.manual_seed(4)
    layer = Conv2d((3, 9, 9), 4, 3, 1, pool=2, pool_ceil=True, unpool="max")
    layer.build_inverse("identity")
    x = torch.randn(2, 3, 9, 9)
    h = layer(x)
    assert h.shape[1:] == layer.out_shape == (4, 5, 5)
    expected = layer.linear_transpose(layer.pool.unpool(h), layer.feedback["inverse"].weight)
    torch.testing.assert_close(layer.inverse(h), expected)
    assert layer.inverse(h).shape[1:] == layer.in_shape


@pytest.mark.parametrize("name", ["ernoult_vgg", "lenet"])
def test_max_unpool_nets_invert_after_a_forward_pass(name):
    net = build(name, (3, 32, 32), unpool="max")
    add_all_feedback(net, 10)
    hs = net.forward_all(torch.randn(2, 3, 32, 32))
    for layer, h in zip(net, hs, strict=True):
        assert layer.inverse(h).shape[1:] == layer.in_shape


def test_fwdtp_nets_have_the_posters_parameter_counts():
    """0.5M (MNIST / F-MNIST) and 6.3M (CIFAR), at the poster's precision."""
    with torch.device("meta"):  # shapes only
        mnist = build("fwdtp_mnist_fc", (1, 28, 28))
        cifar = build("fwdtp_cifar_fc", (3, 32, 32))
    count = lambda net: sum(p.numel() for p in net.forward_parameters())  # noqa: E731
    assert count(mnist) == 784 * 256 + 4 * 256 * 256 + 256 * 10  # 465,408
    assert round(count(mnist) / 1e6, 1) == 0.5
    assert count(cifar) == 3072 * 1024 + 3 * 1024 * 1024 + 1024 * 10  # 6,301,696
    assert round(count(cifar) / 1e6, 1) == 6.3


def spatial_specs(net):
    return [(layer.kernel_size, layer.conv_shape[0], layer.stride) for layer in net[:-1]
            if hasattr(layer, "kernel_size")]  # fmt: skip


@pytest.mark.parametrize(
    "name,shape,specs,dense,out_shapes",
    [
        ("bartunov_mnist_fc", (1, 28, 28), [], [256] * 6 + [10], None),
        ("bartunov_cifar_fc", (3, 32, 32), [], [1024] * 3 + [10], None),
        ("bartunov_mnist_lc", (1, 28, 28), [(3, 32, 2), (3, 64, 2)], [1024, 10],
         [(32, 14, 14), (64, 7, 7)]),
        ("bartunov_cifar_lc", (3, 32, 32), [(5, 64, 2), (5, 128, 2), (3, 256, 1)], [1024, 10],
         [(64, 16, 16), (128, 8, 8), (256, 8, 8)]),
        ("bartunov_imagenet_lc", (3, 224, 224),
         [(9, 48, 4), (3, 48, 2), (5, 96, 1), (3, 96, 2), (3, 192, 1), (3, 192, 2), (3, 384, 1)],
         [1000], [(48, 56, 56), (48, 28, 28), (96, 28, 28), (96, 14, 14), (192, 14, 14),
                  (192, 7, 7), (384, 7, 7)]),
    ],
)  # fmt: skip
def test_bartunov_nets_have_table_3_shapes(name, shape, specs, dense, out_shapes):
    classes = dense[-1]
    with torch.device("meta"):  # ImageNet LC at 224x224 has ~2.4e8 weights: shapes only
        net = build(name, shape, classes)
    assert spatial_specs(net) == specs
    assert [layer.out_shape[0] for layer in net if isinstance(layer, Dense)] == dense
    spatial = [layer for layer in net if isinstance(layer, LocallyConnected2d)]
    assert [layer.out_shape for layer in spatial] == (out_shapes or [])
    for layer in spatial:  # unshared: one (C_out, C_in·k·k) matrix per output position
        positions = math.prod(layer.out_shape[1:])
        fan_in = layer.in_shape[0] * layer.kernel_size**2
        assert layer.weight.shape == (positions, layer.out_shape[0], fan_in)
        assert layer.bias.shape == layer.out_shape


def test_convnet_has_the_lc_nets_shapes_with_shared_weights():
    lc_net = build("bartunov_cifar_lc", (3, 32, 32))
    conv_net = build("bartunov_cifar_conv", (3, 32, 32))
    assert [layer.out_shape for layer in lc_net] == [layer.out_shape for layer in conv_net]
    conv_weights = [tuple(layer.weight.shape) for layer in conv_net if isinstance(layer, Conv2d)]
    assert conv_weights == [(64, 3, 5, 5), (128, 64, 5, 5), (256, 128, 3, 3)]


def test_vgg_and_lenet_are_the_papers_blocks():
    vgg = build("ernoult_vgg", (3, 32, 32))
    assert [layer.out_shape for layer in vgg] == [
        (128, 16, 16), (128, 8, 8), (256, 4, 4), (256, 2, 2), (512, 1, 1), (10,),
    ]  # fmt: skip
    assert all(layer.activation_name == "elu" for layer in vgg[:-1])
    lenet = build("lenet", (3, 32, 32))
    assert [layer.out_shape for layer in lenet] == [(32, 15, 15), (64, 7, 7), (512,), (10,)]


def test_autoencoder_reconstructs_the_input_size():
    net = build("bartunov_mnist_autoencoder", (1, 28, 28))
    assert [layer.out_shape for layer in net] == [(512,), (64,), (512,), (784,)]


def test_widths_activations_and_init_are_configurable():
    net = fc((1, 4, 4), 3, hidden=[5, 6], activation=["relu", "elu"], init="lecun", bias=False)
    assert [layer.out_shape for layer in net] == [(5,), (6,), (3,)]
    assert [layer.activation_name for layer in net] == ["relu", "elu", "identity"]
    assert all(layer.bias is None for layer in net)
    bound = math.sqrt(3 / 16)
    assert net[0].weight.abs().max() <= bound
    net = lc((1, 8, 8), 3, blocks=[[3, 4]], hidden=[], activation="relu", init="orthogonal")
    assert net[0].stride == 1 and net[0].out_shape == (4, 8, 8)


@pytest.mark.parametrize("kind", ["dense", "lc", "conv"])
def test_orthogonal_init_gives_orthonormal_rows_or_columns_per_matrix(kind):
    layer = {
        "dense": lambda: Dense((1, 4, 5), 7, init="orthogonal"),
        "lc": lambda: LocallyConnected2d((2, 6, 6), 5, 3, 2, init="orthogonal"),
        "conv": lambda: Conv2d((2, 6, 6), 30, 3, 2, init="orthogonal"),
    }[kind]()
    m = layer.weight_matrices()  # (B, out, in)
    gram = m @ m.transpose(1, 2) if m.shape[1] <= m.shape[2] else m.transpose(1, 2) @ m
    torch.testing.assert_close(gram, torch.eye(min(m.shape[1:])).expand_as(gram))


@pytest.mark.parametrize(
    "build_bad,match",
    [
        (lambda: fc((1, 4, 4), 3, hidden=[5, 6], activation=["relu"]), "activation"),
        (lambda: lc((1, 8, 8), 3, blocks=[[4, 4, 1]]), "odd"),
        (lambda: conv((1, 8, 8), 3, blocks=[[3]]), "kernel, channels"),
        (lambda: conv((1, 4, 4), 3, blocks=[[3, 4, 1]] * 3, pool=2), "does not fit"),
        (lambda: lc((16,), 3), "image input"),
        (lambda: fc((1, 4, 4), 3, init="he"), "init"),
        (lambda: conv((1, 8, 8), 3, blocks=[[3, 4]], pool=2, unpool="bilinear"), "unpool"),
    ],
)
def test_user_mistakes_are_one_sentence_config_errors(build_bad, match):
    with pytest.raises(ConfigError, match=match):
        build_bad()


FAMILIES = {
    "fc": ["net=bartunov_mnist_fc", "net.hidden=[32,32]"],
    "lc": ["net=bartunov_mnist_lc", "net.blocks=[[3,8,2],[3,8,2]]", "net.hidden=[32]"],
    "conv": ["net=bartunov_mnist_conv", "net.blocks=[[3,8,2],[3,8,2]]", "net.hidden=[32]"],
    # one pooled ELU block: fake data has no spatial structure, deeper pooling discards it
    "vgg": ["net=ernoult_vgg", "net.blocks=[[3,16]]"],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_bp_trains_each_architecture_family_on_fake_data(make_cfg, family):
    # lr 1e-3 (Bartunov's scale): the weight-shared conv net learns fake data slower than the rest
    overrides = ["algo=bp", "algo.optimizer.lr=1e-3", "data.train_size=960", "test=false"]
    cfg = make_cfg([*FAMILIES[family], *overrides])
    assert train(cfg) < 0.6  # validation error; chance is 0.9


@pytest.mark.slow
@pytest.mark.parametrize("name", NETS)
def test_bp_runs_every_net_config_at_full_size(make_cfg, name):
    """`python train.py algo=bp net=<name> data=fake`, one short epoch."""
    cfg = make_cfg([f"net={name}", "algo=bp", "trainer.max_epochs=1", "data.train_size=320"])
    train(cfg)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "leaky_relu", "elu", "identity"])
def test_activation_difference_is_accurate_for_tiny_and_large_steps(name):
    """σ(a + d) − σ(a) in float32 within float32 precision of the float64 value, for |d| ≪ |a|
    (where subtracting the two values loses most digits) and for |d| ~ |a| (across kinks)."""
    activation = make_activation(name)
    a = torch.randn(10_000, dtype=torch.float64) * 3
    for d in (torch.randn_like(a) * 1e-6, torch.randn_like(a)):
        exact = activation(a + d) - activation(a)
        ours = activation_difference(activation, a.float(), d.float()).double()
        assert ((ours - exact).norm() / exact.norm()).item() < 1e-6


@pytest.mark.parametrize("shape", [(128, 256), (32, 4, 6, 6)])
def test_batch_standardize_is_the_authors_formula(shape):
    """BN(v) = (v − mean_n v) / (std_n v + 1e-12) with the unbiased std (the FW-DTP code's BN):
    the centred-sums form equals the Tensor.std form in float64, values and vector-Jacobian
    products."""
    v = (torch.randn(shape, dtype=torch.float64) * 3 + 1).requires_grad_()
    ours = batch_standardize(v)
    theirs = (v - v.mean(0)) / (v.std(0) + 1e-12)
    probe = torch.randn_like(v)
    (grad_ours,) = torch.autograd.grad(ours, v, probe)
    (grad_theirs,) = torch.autograd.grad(theirs, v, probe)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-10, atol=1e-10)
