"""Shared machinery of the target-propagation family: TP, DTP, SDTP, AO-SDTP, DRL, L-DRL, FW-DTP.

One training step (Bartunov et al. 2018 notation, h_l = F_l(h_{l-1}), G_l ≈ F_l⁻¹):
1. one forward pass with every layer's input detached, so h_l has a graph to θ_l only;
2. feedback training, in epochs that train feedback: K_l steps on every learned inverse, the
   losses of all layers summed into ONE backward per step. This equals Ernoult's K steps per
   layer done bottom-up: G_l's loss depends only on h_{l-1}, F_l and G_l (noise-preserving,
   de-noising, L-DRL), and for DRL the upper G's it propagates through are used at their
   start-of-batch values (its references r_l are computed before any step), as in bottom-up order;
3. forward training, in epochs that train forward weights: target steps Δ_l = t_l − h_l for every
   layer top-down without gradient, then all layer-local losses summed into ONE backward and one
   step. This is identical to per-layer steps: each loss reaches only its own layer's parameters.
   Steps, not targets, go down the net: a step can be 10⁻⁶ of h_l (FW-DTP's small fixed G), and
   t_l = h_l + Δ_l in float32 would round it away.
No host synchronisation happens in a step; feedback losses are accumulated on the device and logged
as `fb/loss/L{l}` (paper numbering, l = 2..L) once per epoch.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from tpbench.algorithms.base import LearningRule
from tpbench.algorithms.feedback_losses import (
    denoising_loss,
    drl_loss,
    ldrl_loss,
    noise_preserving_loss,
)
from tpbench.algorithms.targets import (
    gradient_step,
    hybrid_difference,
    linearized_difference,
    local_loss,
)
from tpbench.algorithms.tp_options import (
    TPOptions,
    check_feedback,
    check_net,
    check_task,
    per_layer,
)
from tpbench.algorithms.tp_output import AuxiliaryOutput, output_representation, output_target
from tpbench.nets.activations import activation_difference


class TargetPropagation(LearningRule):
    """Configurable target propagation; the rules in `tp_rules.py` only set paper defaults."""

    rule_name = "target propagation"
    defaults: dict = {}
    learned_feedback = True  # False for FW-DTP: fixed G, no feedback optimizer

    def __init__(
        self,
        net,
        optimizer,
        feedback_optimizer=None,
        scheduler=None,
        num_classes=None,
        nan_check_every: int = 50,
        task: str = "classification",
        **options,
    ):
        super().__init__(
            net, optimizer, feedback_optimizer, scheduler, num_classes, nan_check_every, task
        )
        self.opts = TPOptions.from_kwargs(self.rule_name, self.defaults, options)
        self.num_classes = net.out_shape[-1]
        check_net(self.rule_name, net, self.opts)
        check_task(self.rule_name, self.task.name, self.opts)
        # 0-based indices i of the layers whose inverse G_i is learned (paper layers 2..L or L-1)
        top = len(net) - (1 if self.opts.top_target == "gradient" else 0)
        self.inverse_ids = list(range(1, top))
        n = len(self.inverse_ids)
        self.noise = per_layer("noise", self.opts.noise, n, float, 0.0)
        self.iterations = per_layer("feedback_iterations", self.opts.feedback_iterations, n, int, 1)
        lrs = self.opts.feedback_lr
        self.feedback_lrs = None if lrs is None else per_layer("feedback_lr", lrs, n, float, 0.0)
        check_feedback(
            self.rule_name,
            self.opts,
            self.noise,
            self.learned_feedback,
            has_optimizer=feedback_optimizer is not None,
        )
        self.build_feedback()
        self._fb_sum: Tensor | None = None
        self._fb_count: Tensor | None = None

    # --- feedback pathway -------
    def build_feedback(self) -> None:
        """A learned inverse G_i for each layer in `inverse_ids` (+ AO-SDTP's auxiliary output)."""
        for i in self.inverse_ids:
            self.net[i].build_inverse(self.inverse_activation(i), self.opts.inverse_init_scale)
        if self.opts.top_target == "aux_label":
            last = self.net[-1]
            last.feedback["aux"] = AuxiliaryOutput(
                last, self.opts.aux_size, self.opts.aux_activation, self.opts.inverse_init_scale
            ).to(last.weight.device)

    def inverse_activation(self, i: int) -> str:
        """σ_g of G_i: as configured, else the activation of the layer below (G_i's range)."""
        return self.opts.inverse_activation or self.net[i - 1].activation_name

    def feedback_parameters(self) -> list:
        return [p for i in self.inverse_ids for p in self.net[i].feedback_parameters()]

    def feedback_param_groups(self) -> list:
        """One param group per inverse when per-layer feedback learning rates are given."""
        if self.feedback_lrs is None:
            return self.feedback_parameters()
        return [
            {"params": self.net[i].feedback_parameters(), "lr": lr}
            for i, lr in zip(self.inverse_ids, self.feedback_lrs, strict=True)
        ]

    def inverse(self, i: int, y: Tensor) -> Tensor:
        """G_i(y) = σ_g(Vᵀ·y + c): layer i's output space -> its input space."""
        g = self.net[i].feedback["inverse"]
        return g.activation(g.add_bias(self.inverse_linear(i, y)))

    def inverse_linear(self, i: int, y: Tensor) -> Tensor:
        """Vᵀ·y, the linear part of G_i (AO-SDTP's G_L: Vᵀ·o + V_zᵀ·z)."""
        layer = self.net[i]
        if i == len(self.net) - 1 and self.opts.top_target == "aux_label":
            return layer.feedback["aux"].inverse_linear(layer, y, self.num_classes)
        return layer.inverse_linear(y)

    def inverse_difference(self, i: int, y: Tensor, step: Tensor) -> Tensor:
        """G_i(y + Δ) − G_i(y) = σ_g(a + Vᵀ·Δ) − σ_g(a), a = Vᵀ·y + c, computed without subtracting
        two nearly equal values (see `activation_difference`)."""
        g = self.net[i].feedback["inverse"]
        a = g.add_bias(self.inverse_linear(i, y))
        return activation_difference(g.activation, a, self.inverse_linear(i, step))

    def output_repr(self, logits: Tensor, h_in: Tensor) -> Tensor:
        return output_representation(self.opts.top_target, self.task, logits, h_in, self.net[-1])

    def forward_map(self, i: int):
        """F_i as target propagation sees it (the last layer maps into its output space)."""
        layer = self.net[i]
        if i < len(self.net) - 1:
            return layer
        return lambda h: self.output_repr(layer(h), h)

    # --- targets and forward losses -------
    @torch.no_grad()
    def target_steps(self, x: Tensor, y: Tensor, hs: list[Tensor]) -> list[Tensor | None]:
        """[Δ_1, ..., Δ_L], Δ_l = t_l − h_l, top-down; Δ_L is in the output space, None when not
        used."""
        ins, n_layers, opts = [x, *hs[:-1]], len(hs), self.opts
        steps: list[Tensor | None] = [None] * n_layers
        if opts.top_target == "gradient":
            # ∂ℓ_n/∂h_{L-1} = J_{F_L}ᵀ e, e = softmax(h_L) − onehot(y) or h_L − x
            grad = linearized_difference(self.net[-1], ins[-1], self.task.error(hs[-1], y))
            steps[-2] = gradient_step(grad, opts.top_step)
        else:
            y_out = self.output_repr(hs[-1], ins[-1])
            t_out = output_target(opts.top_target, self.task, hs[-1], y_out, y, opts.top_step)
            steps[-1] = t_out - y_out
            steps[-2] = self.propagate_step(n_layers - 1, ins[-1], y_out, steps[-1])
        for i in range(n_layers - 2, 0, -1):
            steps[i - 1] = self.propagate_step(i, ins[i], hs[i], steps[i])
        return steps

    def compute_targets(self, x: Tensor, y: Tensor, hs: list[Tensor]) -> list[Tensor | None]:
        """[t_1, ..., t_L] = h_l + Δ_l (t_L in the output space), to inspect; training uses the
        steps."""
        h_below_top = hs[-2] if len(hs) > 1 else x
        outs = [*hs[:-1], self.output_repr(hs[-1], h_below_top)]
        steps = self.target_steps(x, y, hs)
        return [None if s is None else h.detach() + s for h, s in zip(outs, steps, strict=True)]

    def propagate_step(self, i: int, h_in: Tensor, h_out: Tensor, step: Tensor) -> Tensor:
        """Δ_{l-1} from Δ_l through G_l: vanilla TP's t_{l-1} = G_l(t_l), or DTP's difference
        correction G_l(h_l + Δ_l) − G_l(h_l), or its hybrid with the exact linearisation J_Fᵀ Δ_l.
        """
        if self.opts.target_rule == "vanilla":
            return self.inverse(i, h_out + step) - h_in
        lam = self.opts.hybrid
        g_tp = self.inverse_difference(i, h_out, step) if lam < 1 else None
        g_bp = linearized_difference(self.forward_map(i), h_in, step) if lam > 0 else None
        return hybrid_difference(g_tp, g_bp, lam)

    def forward_losses(self, x: Tensor, y: Tensor, hs: list[Tensor], steps) -> list[Tensor]:
        """[L_1, ..., L_L]: ½‖h_l − t_l‖² per layer; the last layer's task or target loss."""
        losses = [local_loss(h, s) for h, s in zip(hs[:-1], steps[:-1], strict=True)]
        if self.opts.last_layer_loss == "task":
            last = self.task_loss(hs[-1], y)
        else:
            last = local_loss(self.output_repr(hs[-1], hs[-2].detach()), steps[-1])
        return [*losses, last]

    # --- feedback losses -------
    def draw_noise(self, j: int, ins: list[Tensor], outs: list[Tensor]) -> dict[str, Tensor]:
        """Noise for inverse j (layer i = inverse_ids[j]): ε ~ N(0, σ_j²) on h_{l-1}; L-DRL adds
        η ~ N(0, σ_j²) on h_l; DRL adds its reference r_l computed with the current G's."""
        i, sigma = self.inverse_ids[j], self.noise[j]
        noise = {"eps": sigma * torch.randn_like(ins[i])}
        if self.opts.feedback_loss == "ldrl":
            noise["eta"] = sigma * torch.randn_like(outs[i])
        if self.opts.feedback_loss == "drl":
            noise["r"] = self.drl_reference(i, ins[i] + noise["eps"], ins, outs)
        return noise

    def feedback_loss(self, j: int, h_in: Tensor, y_out: Tensor, noise: dict[str, Tensor]):
        """Inverse loss of G_l, l = inverse_ids[j] (+1 in paper numbering), with the given noise;
        for DRL `noise` also holds the reference r_l (see `draw_noise`, `drl_reference`)."""
        i = self.inverse_ids[j]
        f, g, kind = self.forward_map(i), partial(self.inverse, i), self.opts.feedback_loss
        if kind == "noise_preserving":
            return noise_preserving_loss(f, g, h_in, noise["eps"])
        if kind == "denoising":
            return denoising_loss(f, g, h_in, noise["eps"])
        if kind == "ldrl":
            return ldrl_loss(f, g, h_in, noise["eps"], noise["eta"], y_out)
        return drl_loss(g, noise["eps"], noise["r"], y_out, self.noise[j])

    @torch.no_grad()
    def drl_reference(self, i: int, h_noisy: Tensor, ins: list[Tensor], outs: list[Tensor]):
        """r_l for G_l (layer i): h̃_{l-1} sent forward to the output space, then
        r_{k-1} = h_{k-1} + G_k(r_k) − G_k(h_k) for k = L, ..., l+1 with the current G's."""
        r = h_noisy
        for k in range(i, len(self.net)):
            r = self.forward_map(k)(r)
        for k in range(len(self.net) - 1, i, -1):
            r = ins[k] + self.inverse_difference(k, outs[k], r - outs[k])
        return r

    # --- the training step -------
    def phase(self) -> tuple[bool, bool]:
        """(train feedback, train forward weights) in the current epoch."""
        epoch = self.current_epoch - self.opts.warmup_epochs
        if epoch < 0:
            return True, False
        if self.opts.schedule == "alternating":  # a feedback epoch, then a forward epoch, ...
            return epoch % 2 == 0, epoch % 2 == 1
        return self.learned_feedback, True

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        train_feedback, train_forward = self.phase()
        with torch.set_grad_enabled(train_forward):
            hs = self.net.forward_all(x, detach=True)  # [h_1, ..., h_L]
        if train_feedback:
            self.feedback_step(x, hs)
        if train_forward:
            self.forward_step(x, y, hs)
        logits = hs[-1].detach()
        return logits, self.task_loss(logits, y)

    def forward_step(self, x: Tensor, y: Tensor, hs: list[Tensor]) -> None:
        steps = self.target_steps(x, y, hs)
        optimizer = self.forward_optimizer
        optimizer.zero_grad()
        self.manual_backward(torch.stack(self.forward_losses(x, y, hs, steps)).sum())
        optimizer.step()

    def feedback_step(self, x: Tensor, hs: list[Tensor]) -> None:
        """K_l steps on every inverse loss; each step sums the losses of the layers still active."""
        ins = [x, *(h.detach() for h in hs[:-1])]  # h_0 .. h_{L-1}
        outs = [*ins[1:], self.output_repr(hs[-1].detach(), ins[-1])]  # h_1 .. out(h_L)
        steps = max(self.iterations)
        # DRL: all references from the start-of-batch G's (the bottom-up order), so draw them first
        drawn = (
            [self._step_noise(k, ins, outs) for k in range(steps)]
            if (self.opts.feedback_loss == "drl" and steps > 1)
            else None
        )
        optimizer = self.feedback_optimizer
        for k in range(steps):
            noise = drawn[k] if drawn else self._step_noise(k, ins, outs)
            losses = torch.stack(
                [
                    self.feedback_loss(j, ins[self.inverse_ids[j]], outs[self.inverse_ids[j]], n)
                    for j, n in noise.items()
                ]
            )  # (number of inverses still active in step k,)
            optimizer.zero_grad()
            self.manual_backward(losses.sum())
            optimizer.step()
            self._record_feedback_losses(list(noise), losses.detach())

    def _step_noise(self, k: int, ins: list[Tensor], outs: list[Tensor]) -> dict[int, dict]:
        """{j: noise} for every inverse j with more than k feedback iterations."""
        return {j: self.draw_noise(j, ins, outs) for j, n in enumerate(self.iterations) if n > k}

    def _record_feedback_losses(self, active: list[int], losses: Tensor) -> None:
        if self._fb_sum is None or self._fb_sum.device != losses.device:
            self._fb_sum = losses.new_zeros(len(self.inverse_ids))
            self._fb_count = losses.new_zeros(len(self.inverse_ids))
        if len(active) == len(self.inverse_ids):
            self._fb_sum += losses
            self._fb_count += 1
        else:
            index = torch.tensor(active, device=losses.device)
            self._fb_sum.index_add_(0, index, losses)
            self._fb_count.index_add_(0, index, torch.ones_like(losses))

    def on_train_epoch_end(self) -> None:
        if self._fb_sum is not None:
            means = self._fb_sum / self._fb_count.clamp(min=1)
            self.log_dict({f"fb/loss/L{i + 1}": means[j] for j, i in enumerate(self.inverse_ids)})
            self._fb_sum = self._fb_count = None
        super().on_train_epoch_end()
