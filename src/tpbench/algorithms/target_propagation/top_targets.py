"""Top-target parts: where the first target comes from, and what the last layer learns from.

Notation (Bartunov et al. 2018): h_l = F_l(h_{l-1}), h_L the logits, Δ_l = t_l − h_l the target
step of layer l, e = ∂ℓ_n/∂h_L the output error of one sample's loss (`Task.error`), so a step of
size α or β is the same for every batch size. Each part fills Δ_L (in the output space G_L
inverts, None when there is none) and Δ_{L-1}; the engine propagates the rest down.

- `GradientStep` (Lee et al. 2015, Bartunov's DTP): t_{L-1} = h_{L-1} − α ∂ℓ_n/∂h_{L-1}; the last
  layer learns on the task loss; no G_L.
- `OutputStep` (Meulemans 2020, Ernoult 2022, Shibuya 2023): t_L = h_L − β e.
- `LabelTarget` (SDTP, Bartunov Alg. 1): output o = softmax(h_L), t_L = o + β(onehot(y) − o);
  β = 1 is t_L = onehot(y), no gradient anywhere.
- `AuxLabelTarget` (AO-SDTP, Bartunov Alg. 2): output [o, z], z = σ_z(R·h_{L-1}) with R fixed
  random; o's target as SDTP's, z keeps its value, so G_L([o, z]) sees more than the label.
The output-space parts train the last layer on the task loss, or, with `last_layer_on_target`,
on the local loss c‖out(h_L) − t_L‖² like every hidden layer. With `batch_mean` a gradient step
is taken on the batch-mean loss (1/N) Σ_n ℓ_n, as Meulemans et al.'s code does: e/N per sample.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tpbench.algorithms.targets import (
    gradient_step,
    label_step_target,
    linearized_difference,
    local_loss,
    output_step_target,
)
from tpbench.errors import ConfigError
from tpbench.nets import Layer
from tpbench.nets.activations import make_activation
from tpbench.nets.feedback import glorot_bound


class TopTarget:
    """Base of the top-target parts; the defaults are those of a target in the logits' space."""

    name = "top target"
    min_layers = 2  # the layers it learns inverses of, plus one
    learns_last_inverse = True  # is G_L learned (a target in the output space)?

    def build(self, rule) -> None:
        """Build what the part adds to the net (AO-SDTP's auxiliary outputs)."""

    def check(self, rule) -> None:
        """One ConfigError sentence when the part cannot serve this rule's task or feedback."""

    def output(self, rule, logits: Tensor, h_in: Tensor) -> Tensor:
        """The last layer's output in the space G_L inverts: the logits h_L."""
        return logits

    def last_inverse_linear(self, layer: Layer, y: Tensor) -> Tensor:
        """G_L's inner part Vᵀ·σ_in(y) (the layer's own, by default)."""
        return layer.inverse_linear(y)

    def last_inverse_linear_difference(self, layer: Layer, y: Tensor, step: Tensor) -> Tensor:
        """last_inverse_linear(y + Δ) − last_inverse_linear(y), without cancellation."""
        return layer.inverse_linear_difference(y, step)

    def fill_top_steps(self, rule, y: Tensor, ins: list[Tensor], hs: list[Tensor], steps) -> None:
        raise NotImplementedError

    def last_layer_loss(self, rule, y: Tensor, hs: list[Tensor], step: Tensor | None) -> Tensor:
        raise NotImplementedError


class GradientStep(TopTarget):
    """t_{L-1} = h_{L-1} − α ∂ℓ_n/∂h_{L-1} (Lee et al. 2015); the last layer on the task loss."""

    name = "gradient_step"
    min_layers = 3
    learns_last_inverse = False

    def __init__(self, alpha: float = 0.1, batch_mean: bool = False):
        self.alpha = alpha  # α
        self.batch_mean = batch_mean  # step on (1/N) Σ_n ℓ_n: e/N

    def fill_top_steps(self, rule, y, ins, hs, steps) -> None:
        # ∂ℓ_n/∂h_{L-1} = J_{F_L}ᵀ e, e = softmax(h_L) − onehot(y) or h_L − x
        error = rule.task.error(hs[-1], y) / (len(y) if self.batch_mean else 1)
        grad = linearized_difference(rule.net[-1], ins[-1], error)
        steps[-2] = gradient_step(grad, self.alpha)  # Δ_{L-1} = −α ∂ℓ_n/∂h_{L-1}

    def last_layer_loss(self, rule, y, hs, step) -> Tensor:
        return rule.task_loss(hs[-1], y)


class OutputTarget(TopTarget):
    """A target t_L in the output space, propagated through G_L: Δ_L = t_L − out(h_L),
    Δ_{L-1} = G_L(out(h_L) + Δ_L) − G_L(out(h_L)) (or as the feedback map propagates)."""

    def __init__(self, beta: float, last_layer_on_target: bool):
        self.beta = beta  # β
        self.last_layer_on_target = last_layer_on_target

    def target(self, rule, logits: Tensor, out: Tensor, y: Tensor) -> Tensor:
        """t_L in the output space."""
        raise NotImplementedError

    def fill_top_steps(self, rule, y, ins, hs, steps) -> None:
        out = rule.output_repr(hs[-1], ins[-1])
        steps[-1] = self.target(rule, hs[-1], out, y) - out
        steps[-2] = rule.propagate_step(len(hs) - 1, ins[-1], out, steps[-1])

    def last_layer_loss(self, rule, y, hs, step) -> Tensor:
        """ℓ(h_L, y), or ½‖out(h_L) − t_L‖² with `last_layer_on_target`."""
        if not self.last_layer_on_target:
            return rule.task_loss(hs[-1], y)
        return local_loss(rule.output_repr(hs[-1], hs[-2].detach()), step, rule.local_loss_scale)


class OutputStep(OutputTarget):
    """t_L = h_L − β e, e = ∂ℓ_n/∂h_L (Meulemans 2020; Ernoult 2022; Shibuya 2023)."""

    name = "output_step"

    def __init__(self, beta: float = 0.5, last_layer_on_target: bool = True, batch_mean=False):
        super().__init__(beta, last_layer_on_target)
        self.batch_mean = batch_mean  # step on (1/N) Σ_n ℓ_n: e/N (Meulemans et al.'s code)

    def target(self, rule, logits, out, y) -> Tensor:
        error = rule.task.error(logits, y) / (len(y) if self.batch_mean else 1)
        return output_step_target(logits, error, self.beta)


class LabelTarget(OutputTarget):
    """SDTP (Bartunov Alg. 1): o = softmax(h_L) (a reconstruction: h_L), t_L = o + β(argmin ℓ − o),
    argmin ℓ = onehot(y) (or x); β = 1 is t_L = onehot(y)."""

    name = "label"

    def __init__(self, beta: float = 1.0, last_layer_on_target: bool = False):
        super().__init__(beta, last_layer_on_target)

    def output(self, rule, logits, h_in) -> Tensor:
        return rule.task.prediction(logits)

    def target(self, rule, logits, out, y) -> Tensor:
        return label_step_target(out, rule.task.argmin(logits, y), self.beta)


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


class AuxLabelTarget(LabelTarget):
    """AO-SDTP (Bartunov Alg. 2): output [o, z]; t_L = [o + β(onehot − o), z], so that
    t_{L-1} = h_{L-1} − G_L(o, z) + G_L(ô, z) with G_L([o, z]) = σ_g(Vᵀ·o + V_zᵀ·z + c)."""

    name = "aux_label"

    def __init__(
        self,
        beta: float = 1.0,
        last_layer_on_target: bool = False,
        size: int = 512,
        activation: str = "tanh",
    ):
        super().__init__(beta, last_layer_on_target)
        if size < 1:
            raise ConfigError(f"algo.top_target.size={size} must be ≥ 1 (the number of z units).")
        self.size, self.activation = size, activation  # |z|, σ_z

    def check(self, rule) -> None:
        if rule.task.name != "classification":
            raise ConfigError(
                f"algo '{rule.rule_name}': top_target=aux_label adds auxiliary outputs to label "
                f"targets and cannot train task={rule.task.name}; use top_target=label (SDTP), "
                "gradient_step or output_step."
            )
        if not rule.feedback_map.learned:
            raise ConfigError(
                f"algo '{rule.rule_name}' has fixed feedback; top_target=aux_label needs a "
                "learned G_L (use output_step, label or gradient_step)."
            )

    def build(self, rule) -> None:
        last = rule.net[-1]
        init_scale = getattr(rule.feedback_map, "init_scale", None)
        last.feedback["aux"] = AuxiliaryOutput(last, self.size, self.activation, init_scale).to(
            last.weight.device
        )

    def output(self, rule, logits, h_in) -> Tensor:
        return torch.cat([rule.task.prediction(logits), rule.net[-1].feedback["aux"](h_in)], 1)

    def last_inverse_linear_difference(self, layer, y, step) -> Tensor:
        """Vᵀ·Δ_o + V_zᵀ·Δ_z: G_L's inner part is linear in [o, z]."""
        return self.last_inverse_linear(layer, step)

    def last_inverse_linear(self, layer, y) -> Tensor:
        """Vᵀ·o + V_zᵀ·z; y: (N, C + size) -> (N, *in_shape)."""
        o, z = y[:, : -self.size], y[:, -self.size :]
        return layer.inverse_linear(o) + (z @ layer.feedback["aux"].weight).view(
            -1, *layer.in_shape
        )

    def target(self, rule, logits, out, y) -> Tensor:
        n = logits.shape[1]
        o = label_step_target(out[:, :n], rule.task.argmin(logits, y), self.beta)
        return torch.cat([o, out[:, n:]], 1)
