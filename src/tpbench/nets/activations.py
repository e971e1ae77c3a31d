"""Activation functions by name, as nn.Modules (so σ and σ′ come from autograd)."""

import torch
from torch import Tensor, nn

from tpbench.errors import ConfigError
from tpbench.nets.standardize import LinearBN, TanhBN

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
    "tanh_bn": TanhBN,  # BN(tanh(a)), parameter-free batch standardisation (standardize.py)
    "linear_bn": LinearBN,  # BN(a)
}
STANDARDIZED = {"tanh": "tanh_bn", "identity": "linear_bn"}  # σ -> BN(σ(·)), by name


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"Unknown activation '{name}'; valid: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def activation_difference(activation: nn.Module, a: Tensor, d: Tensor) -> Tensor:
    """σ(a + d) − σ(a), accurate also where |d| ≪ |a|. Subtracting the two values would cancel:
    DTP's target steps through a fixed G with small weights (FW-DTP) shrink ~10x per layer, and in
    float32 the lowest layer's step was 78 % rounding error that way."""
    if isinstance(activation, nn.Identity):
        return d
    if not getattr(activation, "elementwise", True):  # batch statistics: no closed form
        return activation(a + d) - activation(a)
    if isinstance(activation, nn.Tanh):  # tanh x − tanh y = tanh(x − y)·(1 − tanh x·tanh y)
        return torch.tanh(d) * (1 - torch.tanh(a) * torch.tanh(a + d))
    if isinstance(activation, nn.Sigmoid):  # σ(x) = (1 + tanh(x/2)) / 2
        return 0.5 * torch.tanh(d / 2) * (1 - torch.tanh(a / 2) * torch.tanh((a + d) / 2))
    # piecewise σ: on one piece slope·d, or α·eᵃ·(eᵈ − 1) on ELU's exponential piece; across the
    # kink |d| > |a|, so the plain difference is accurate there
    b = a + d
    if isinstance(activation, nn.ELU):
        within = torch.where(a > 0, d, activation.alpha * torch.exp(a) * torch.expm1(d))
    else:
        slope = activation.negative_slope if isinstance(activation, nn.LeakyReLU) else 0.0
        within = torch.where(a > 0, d, slope * d)
    return torch.where((a > 0) == (b > 0), within, activation(b) - activation(a))


def standardize_activations(net, rule: str, logits: bool) -> None:
    """Put BN after every hidden activation (tanh -> tanh_bn) and, with `logits`, after the
    output layer's (identity -> linear_bn), as the FW-DTP authors' BN rows do (code/Main.py:
    218-257); layers already standardised stay as they are."""
    layers = list(net) if logits else list(net)[:-1]
    for layer in layers:
        name = layer.activation_name
        if name in STANDARDIZED.values():
            continue
        if name not in STANDARDIZED:
            raise ConfigError(
                f"algo '{rule}' standardises tanh (or linear) activations; this net's layer uses "
                f"{name} (use net.activation=tanh)."
            )
        layer.activation_name = STANDARDIZED[name]
        layer.activation = make_activation(layer.activation_name)
