"""The target-propagation rules: thin subclasses of `TargetPropagation` with each paper's defaults.

Every default can be overridden from the config (`algo.<option>=...`); conf/algo/*.yaml state
them all explicitly. FW-DTP is the one rule with its own code: a fixed random G and no feedback
optimizer.
"""

from __future__ import annotations

import torch

from tpbench.algorithms.target_prop import TargetPropagation
from tpbench.nets.feedback import random_tensor


class TP(TargetPropagation):
    """Vanilla target propagation (LeCun 1986; Lee 2015): t_{l-1} = G_l(t_l)."""

    rule_name = "tp"
    defaults = {
        "top_target": "gradient",
        "target_rule": "vanilla",
        "feedback_loss": "noise_preserving",
    }


class DTP(TargetPropagation):
    """Difference target propagation (Lee et al. 2015, as run by Bartunov et al. 2018):
    t_{L-1} = h_{L-1} − α ∂ℓ/∂h_{L-1}, last layer on the task loss, noise-preserving inverses."""

    rule_name = "dtp"
    defaults = {
        "top_target": "gradient",
        "last_layer_loss": "task",
        "feedback_loss": "noise_preserving",
    }


class SDTP(TargetPropagation):
    """Simplified DTP (Bartunov Alg. 1): no gradient anywhere; softmax output, t_L = onehot(y),
    difference targets through G_L; de-noising inverses."""

    rule_name = "sdtp"
    defaults = {
        "top_target": "label",
        "top_step": 1.0,
        "last_layer_loss": "task",
        "feedback_loss": "denoising",
    }


class AOSDTP(TargetPropagation):
    """Auxiliary-output SDTP (Bartunov Alg. 2): output [o, z], z = fixed random features of
    h_{L-1}; t_{L-1} = h_{L-1} − G_L(o, z) + G_L(ô, z); de-noising inverses."""

    rule_name = "aosdtp"
    defaults = {
        "top_target": "aux_label",
        "top_step": 1.0,
        "last_layer_loss": "task",
        "feedback_loss": "denoising",
        "aux_size": 512,
    }


class DRL(TargetPropagation):
    """DTP with the difference reconstruction loss (Meulemans et al. 2020); output target
    t_L = h_L − β(softmax(h_L) − onehot), every layer on its target loss."""

    rule_name = "drl"
    defaults = {"top_target": "output_step", "last_layer_loss": "target", "feedback_loss": "drl"}


class LDRL(TargetPropagation):
    """DTP with the local difference reconstruction loss (Ernoult et al. 2022): K feedback steps
    per batch, then t_L = h_L − β(softmax(h_L) − onehot) and every layer on its target loss."""

    rule_name = "ldrl"
    defaults = {
        "top_target": "output_step",
        "last_layer_loss": "target",
        "feedback_loss": "ldrl",
        "feedback_iterations": 5,
    }


class FWDTP(TargetPropagation):
    """Fixed-weight DTP (Shibuya et al. 2023): DTP's difference targets with G_l(h) = σ(B_l h),
    B_l fixed random (U(−0.01, 0.01) by default), no feedback training at all."""

    rule_name = "fwdtp"
    learned_feedback = False
    defaults = {"top_target": "output_step", "last_layer_loss": "target"}

    def __init__(
        self,
        net,
        optimizer,
        feedback_optimizer=None,
        scheduler=None,
        feedback_distribution: str = "uniform",
        feedback_scale: float = 0.01,
        feedback_seed: int | None = None,
        **kwargs,
    ):
        self.feedback_distribution, self.feedback_scale = feedback_distribution, feedback_scale
        self.feedback_seed = feedback_seed
        super().__init__(net, optimizer, feedback_optimizer, scheduler, **kwargs)

    def build_feedback(self) -> None:
        """G_l(h) = σ(B_lᵀ·h) with the layer's transposed structure: a LearnedInverse whose
        weight is B_l, with no bias, frozen and in no optimizer (so it never changes)."""
        generator = (
            None
            if self.feedback_seed is None
            else torch.Generator().manual_seed(self.feedback_seed)
        )
        for i in self.inverse_ids:
            g = self.net[i].build_inverse(self.inverse_activation(i))
            with torch.no_grad():
                g.weight.copy_(
                    random_tensor(
                        tuple(g.weight.shape),
                        self.feedback_distribution,
                        self.feedback_scale,
                        generator,
                    )
                )
            g.bias = None
            g.requires_grad_(False)
