"""Activation functions by name, as nn.Modules (so σ and σ′ come from autograd)."""

from torch import nn

from tpbench.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"Unknown activation '{name}'; valid: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()
