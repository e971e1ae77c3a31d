"""The output layer as target propagation sees it: its output space, top target and inverse.

The net's last layer computes logits. Depending on `top_target`, the space G_L inverts is
- gradient, output_step: the logits h_L;
- label (SDTP): the prediction o = softmax(h_L) (reconstruction: h_L), t_L = argmin ℓ;
- aux_label (AO-SDTP, Bartunov Alg. 2): [o, z], z = σ_z(R·h_{L-1}) with R fixed random, so that
  G_L([o, z]) = σ_g(Vᵀ·o + V_zᵀ·z + c) sees richer information than the label alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tpbench.algorithms.targets import label_step_target, output_step_target
from tpbench.algorithms.tasks import Task
from tpbench.nets import Layer
from tpbench.nets.activations import make_activation
from tpbench.nets.feedback import glorot_bound


class AuxiliaryOutput(nn.Module):
    """AO-SDTP's fixed random features z = σ_z(R·h_{L-1}) and their learned inverse weights V_z.
    Lives in the last layer's `feedback` dict: R is a buffer, V_z a feedback parameter."""

    def __init__(self, layer: Layer, size: int, activation: str, init_scale: float | None):
        super().__init__()
        n_in = math.prod(layer.in_shape)
        bound = glorot_bound(n_in, size)
        # R: (size, n_in), fixed; V_z: (size, n_in), learned like V (z-part of G_L)
        self.register_buffer("features", (torch.rand(size, n_in) * 2 - 1) * bound)
        scale = init_scale if init_scale is not None else bound
        self.weight = nn.Parameter((torch.rand(size, n_in) * 2 - 1) * scale)
        self.activation = make_activation(activation)

    def forward(self, h_in: Tensor) -> Tensor:
        """z = σ_z(R·h_{L-1}); (N, *in_shape) -> (N, size)."""
        return self.activation(h_in.flatten(1) @ self.features.t())

    def inverse_linear(self, layer: Layer, y: Tensor, num_classes: int) -> Tensor:
        """Vᵀ·o + V_zᵀ·z, the linear part of G_L([o, z]) = σ_g(Vᵀ·o + V_zᵀ·z + c);
        y: (N, C + size) -> (N, *in_shape)."""
        o, z = y[:, :num_classes], y[:, num_classes:]
        return layer.inverse_linear(o) + (z @ self.weight).view(-1, *layer.in_shape)


def output_representation(
    kind: str, task: Task, logits: Tensor, h_in: Tensor, layer: Layer
) -> Tensor:
    """The last layer's output in the space G_L inverts (see the module docstring)."""
    if kind == "label":
        return task.prediction(logits)
    if kind == "aux_label":
        return torch.cat([task.prediction(logits), layer.feedback["aux"](h_in)], dim=1)
    return logits


def output_target(
    kind: str, task: Task, logits: Tensor, y_out: Tensor, y: Tensor, step: float
) -> Tensor:
    """t_L in the output space: o + β(argmin ℓ − o) with argmin ℓ = onehot(y) or x (label; β = 1:
    the argmin itself), the same for o in [o, z] (aux_label: z keeps its value), or
    h_L − β ∂ℓ_n/∂h_L (output_step); y is the task's target."""
    if kind == "label":
        return label_step_target(y_out, task.argmin(logits, y), step)
    if kind == "aux_label":
        n = logits.shape[1]
        o = label_step_target(y_out[:, :n], task.argmin(logits, y), step)
        return torch.cat([o, y_out[:, n:]], 1)
    return output_step_target(logits, task.error(logits, y), step)
