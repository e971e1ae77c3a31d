"""Options of the target-propagation family and their validation against the net.

One dataclass holds every choice the papers make differently (top target, last-layer loss, target
rule, feedback loss, schedule, noise, iterations); each rule in `tp_rules.py` only changes the
defaults. Mistakes a user can make raise ConfigError with one sentence naming the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from tpbench.errors import ConfigError

CHOICES = {
    # t_L / t_{L-1}: Lee's gradient step on h_{L-1}; SDTP's one-hot label of the softmax output;
    # AO-SDTP's [one-hot, z]; Ernoult's/Meulemans' step t_L = h_L − β(softmax(h_L) − onehot).
    "top_target": ("gradient", "label", "aux_label", "output_step"),
    # last layer trained on the task loss ℓ, or on ½‖out(h_L) − t_L‖² like the hidden layers
    "last_layer_loss": ("task", "target"),
    # t_{l-1} = h_{l-1} + G(t_l) − G(h_l) (DTP) or t_{l-1} = G(t_l) (vanilla TP)
    "target_rule": ("difference", "vanilla"),
    "feedback_loss": ("noise_preserving", "denoising", "drl", "ldrl"),
    "schedule": ("parallel", "alternating"),
}


@dataclass
class TPOptions:
    """Every option of the target-propagation machinery (see the README's table)."""

    top_target: str = "gradient"
    top_step: float = 0.1  # α (gradient) or β (output_step); unused by label targets
    last_layer_loss: str = "task"
    target_rule: str = "difference"
    feedback_loss: str = "noise_preserving"
    noise: float | Sequence[float] = 0.1  # σ_l, one per learned inverse (bottom-up) or one for all
    feedback_iterations: int | Sequence[int] = 1  # K_l feedback steps per batch
    feedback_lr: float | Sequence[float] | None = (
        None  # per-inverse learning rates (else optimizer's)
    )
    schedule: str = "parallel"
    warmup_epochs: int = 0  # feedback-only epochs before the schedule starts
    hybrid: float = 0.0  # λ of G = λ·g_bp + (1 − λ)·g_tp (Bartunov §5.6)
    inverse_activation: str | None = None  # σ_g; None: the activation of the layer below
    inverse_init_scale: float | None = None  # U(−s, s) init of V; None: Glorot like W
    aux_size: int = 512  # AO-SDTP: number of auxiliary outputs z
    aux_activation: str = "tanh"  # AO-SDTP: z = σ_z(R·h_{L-1}), R fixed random

    @classmethod
    def from_kwargs(cls, rule: str, defaults: dict, options: dict) -> TPOptions:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(
                f"Unknown option '{unknown[0]}' for algo '{rule}'; "
                f"valid: {', '.join(sorted(names))}."
            )
        opts = cls(**{**defaults, **options})
        for name, valid in CHOICES.items():
            if getattr(opts, name) not in valid:
                raise ConfigError(
                    f"algo.{name}='{getattr(opts, name)}' is not valid for '{rule}'; "
                    f"valid: {', '.join(valid)}."
                )
        opts._check_combinations(rule)
        return opts

    def _check_combinations(self, rule: str) -> None:
        if self.top_target == "gradient" and self.last_layer_loss == "target":
            raise ConfigError(
                f"algo '{rule}': last_layer_loss=target needs an output target; top_target="
                "gradient has none (use output_step, label or aux_label)."
            )
        if self.top_target == "gradient" and self.feedback_loss == "drl":
            raise ConfigError(
                f"algo '{rule}': feedback_loss=drl propagates through the last layer's inverse, "
                "which top_target=gradient does not learn (use output_step, label or aux_label)."
            )
        if not 0.0 <= self.hybrid <= 1.0:
            raise ConfigError(f"algo.hybrid={self.hybrid} must lie in [0, 1].")
        if self.hybrid > 0 and self.target_rule == "vanilla":
            raise ConfigError(
                "algo.hybrid > 0 mixes difference targets; use target_rule=difference."
            )
        if self.warmup_epochs < 0 or self.aux_size < 1:
            raise ConfigError(
                f"algo.warmup_epochs={self.warmup_epochs} must be ≥ 0 and "
                f"algo.aux_size={self.aux_size} ≥ 1."
            )


def per_layer(name: str, value, n: int, kind: type, minimum: float) -> list:
    """A scalar broadcast to n inverses, or a list that must have exactly n entries."""
    values = [value] * n if isinstance(value, int | float) else list(value)
    if len(values) != n:
        raise ConfigError(
            f"algo.{name} has {len(values)} entries; expected {n} (one per learned inverse "
            f"G_2..G_{n + 1}, bottom-up) or a single value."
        )
    values = [kind(v) for v in values]
    if any(v < minimum for v in values):
        raise ConfigError(f"algo.{name}={values} must be ≥ {minimum} everywhere.")
    return values


def check_net(rule: str, net, opts: TPOptions) -> None:
    """The net has enough layers, and every layer has weights and a stateless inverse."""
    need = 3 if opts.top_target == "gradient" else 2
    if len(net) < need:
        raise ConfigError(
            f"algo '{rule}' with top_target={opts.top_target} needs a net of at least {need} "
            f"layers (it learns inverses of the upper layers); this net has {len(net)}."
        )
    for i, layer in enumerate(net):
        if getattr(layer, "weight", None) is None:
            raise ConfigError(
                f"algo '{rule}' cannot train this net: layer {i + 1} ({type(layer).__name__}) "
                "has no weights and so no inverse G; use blocks that own their weights "
                "(e.g. pooled conv blocks)."
            )
        if getattr(getattr(layer, "pool", None), "unpool_mode", "nearest") != "nearest":
            raise ConfigError(
                f"algo '{rule}' cannot train this net: layer {i + 1} un-pools with the indices "
                "of its latest forward pass (unpool=max), which the noisy and batched passes of "
                "target propagation overwrite; use net.unpool=nearest."
            )


def check_feedback(
    rule: str, opts: TPOptions, noise: list[float], learned: bool, has_optimizer: bool
) -> None:
    """The feedback options fit the rule: DRL's σ > 0; fixed feedback has no optimizer/schedule."""
    if opts.feedback_loss == "drl" and min(noise) <= 0:
        raise ConfigError(f"algo '{rule}': feedback_loss=drl divides by σ², so noise must be > 0.")
    if learned:
        if not has_optimizer:
            raise ConfigError(
                f"algo '{rule}' learns feedback weights; set algo.feedback_optimizer."
            )
        return
    if has_optimizer:
        raise ConfigError(
            f"algo '{rule}' trains no feedback weights; set algo.feedback_optimizer=null."
        )
    if opts.top_target == "aux_label":
        raise ConfigError(
            f"algo '{rule}' has fixed feedback; top_target=aux_label needs a learned G_L "
            "(use output_step, label or gradient)."
        )
    if opts.schedule != "parallel" or opts.warmup_epochs:
        raise ConfigError(
            f"algo '{rule}' has fixed feedback, so schedule={opts.schedule} and "
            f"warmup_epochs={opts.warmup_epochs} mean nothing; use parallel and 0."
        )


def check_task(rule: str, task: str, opts: TPOptions) -> None:
    """AO-SDTP's auxiliary outputs enrich low-entropy label targets; a reconstruction has none."""
    if task != "classification" and opts.top_target == "aux_label":
        raise ConfigError(
            f"algo '{rule}': top_target=aux_label adds auxiliary outputs to label targets and "
            f"cannot train task={task}; use top_target=label (SDTP), gradient or output_step."
        )
