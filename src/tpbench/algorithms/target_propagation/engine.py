"""The engine of the target-propagation family: one training step, asking its four parts.

One training step (Bartunov et al. 2018 notation, h_l = F_l(h_{l-1}), G_l ≈ F_l⁻¹):
1. one forward pass with every layer's input detached, so h_l has a graph to θ_l only;
2. feedback training, in epochs the schedule gives to feedback: K_l steps on every learned
   inverse, the inverse losses of all layers summed into ONE backward per step. This equals
   Ernoult's K steps per layer done bottom-up: G_l's loss depends only on h_{l-1}, F_l and G_l
   (noise-preserving, de-noising, L-DRL), and for DRL the upper G's it propagates through are
   used at their start-of-batch values (its references are computed before any step). With
   `schedule.sequential` the layers step one by one, top-down (the FW-DTP authors' order);
3. forward training, in epochs the schedule gives to forward weights: target steps
   Δ_l = t_l − h_l for every layer top-down without gradient (the top target gives Δ_L and
   Δ_{L-1}, the feedback map carries each step down; computed before step 2 with
   `schedule.targets_before_feedback`), then all layer-local losses L_l = c‖h_l − t_l‖²
   (c = `local_loss_scale`, ½ by default) summed into ONE backward and one step; each reaches
   only its own layer.
   Steps, not targets, go down the net: a step can be 10⁻⁶ of h_l (FW-DTP's small fixed G), and
   t_l = h_l + Δ_l in float32 would round it away.
No host synchronisation happens in a step; inverse losses are accumulated on the device and logged
as `fb/loss/L{l}` (paper numbering, l = 2..L) once per epoch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tpbench.algorithms.base import LearningRule
from tpbench.algorithms.target_propagation.checks import check_net, per_layer
from tpbench.algorithms.target_propagation.feedback_maps import FeedbackMap
from tpbench.algorithms.target_propagation.inverse_losses import InverseLoss
from tpbench.algorithms.target_propagation.schedules import Schedule
from tpbench.algorithms.target_propagation.top_targets import TopTarget
from tpbench.algorithms.targets import local_loss
from tpbench.errors import ConfigError
from tpbench.nets.activations import activation_difference


class TargetPropagation(LearningRule):
    """A target-propagation rule from its parts; the rule modules name the parts of each paper."""

    rule_name = "target propagation"

    def __init__(
        self,
        net,
        optimizer,
        feedback_optimizer=None,
        scheduler=None,
        num_classes=None,
        nan_check_every: int = 50,
        task: str = "classification",
        *,
        top_target: TopTarget,
        feedback: FeedbackMap,
        inverse_loss: InverseLoss | None,
        schedule: Schedule,
        feedback_lr: float | list[float] | None = None,
        local_loss_scale: float = 0.5,
    ):
        super().__init__(
            net, optimizer, feedback_optimizer, scheduler, num_classes, nan_check_every, task
        )
        self.top_target, self.feedback_map = top_target, feedback
        self.inverse_loss, self.schedule = inverse_loss, schedule
        self.num_classes = net.out_shape[-1]
        self.local_loss_scale = local_loss_scale  # c of L_l = c‖h_l − t_l‖²
        check_net(self.rule_name, net, top_target)
        # 0-based indices i of the layers whose G_i exists (paper layers 2..L, or 2..L-1)
        self.inverse_ids = list(range(1, len(net) - (0 if top_target.learns_last_inverse else 1)))
        n = len(self.inverse_ids)
        self.feedback_lrs = (
            None if feedback_lr is None else per_layer("feedback_lr", feedback_lr, n, float, 0.0)
        )
        schedule.bind(n)
        self._check_feedback(has_optimizer=feedback_optimizer is not None)
        top_target.check(self)
        schedule.check(self)
        feedback.build(self)
        top_target.build(self)
        self._fb_sum: Tensor | None = None
        self._fb_count: Tensor | None = None

    @property
    def display_name(self) -> str:
        """The class and its feedback loss where they differ, e.g. DTP (LDRL feedback loss): the
        FW-DTP authors' L-DRL and DRL are DTP with another loss."""
        name = type(self).__name__
        loss = type(self.inverse_loss).__name__ if self.inverse_loss is not None else name
        return name if loss == name else f"{name} ({loss} feedback loss)"

    def _check_feedback(self, has_optimizer: bool) -> None:
        """Learned feedback needs an inverse loss and an optimizer; fixed feedback neither."""
        learned = self.feedback_map.learned
        if learned and (self.inverse_loss is None or not has_optimizer):
            raise ConfigError(
                f"algo '{self.rule_name}' learns its feedback weights; set algo/inverse_loss "
                "and algo.feedback_optimizer."
            )
        if not learned and (self.inverse_loss is not None or has_optimizer):
            raise ConfigError(
                f"algo '{self.rule_name}' trains no feedback weights; set algo.inverse_loss=null "
                "and algo.feedback_optimizer=null."
            )
        if self.inverse_loss is not None:
            self.inverse_loss.bind(len(self.inverse_ids))
            self.inverse_loss.check(self)

    def check_trainer(self, trainer) -> None:
        super().check_trainer(trainer)
        self.schedule.check(self, trainer.max_epochs)

    # --- feedback pathway -------
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
        """Vᵀ·y, the linear part of G_i (the top target decides G_L's, e.g. AO-SDTP's [o, z])."""
        layer = self.net[i]
        if i == len(self.net) - 1:
            return self.top_target.last_inverse_linear(layer, y)
        return layer.inverse_linear(y)

    def inverse_difference(self, i: int, y: Tensor, step: Tensor) -> Tensor:
        """G_i(y + Δ) − G_i(y) = σ_g(a + d) − σ_g(a), a = Vᵀ·σ_in(y) + c and d its change
        (Vᵀ·Δ, for the identity σ_in), computed without subtracting two nearly equal values (see
        `activation_difference`)."""
        layer = self.net[i]
        g = layer.feedback["inverse"]
        a = g.add_bias(self.inverse_linear(i, y))
        if i == len(self.net) - 1:  # the top target decides G_L (e.g. AO-SDTP's [o, z])
            d = self.top_target.last_inverse_linear_difference(layer, y, step)
        else:
            d = layer.inverse_linear_difference(y, step)
        return activation_difference(g.activation, a, d)

    def output_repr(self, logits: Tensor, h_in: Tensor) -> Tensor:
        """The last layer's output in the space G_L inverts (the top target's choice)."""
        return self.top_target.output(self, logits, h_in)

    def forward_map(self, i: int):
        """F_i as target propagation sees it (the last layer maps into its output space)."""
        layer = self.net[i]
        if i < len(self.net) - 1:
            return layer
        return lambda h: self.output_repr(layer(h), h)

    # --- targets and forward losses -------
    @torch.no_grad()
    def target_steps(self, x: Tensor, y: Tensor, hs: list[Tensor]) -> list[Tensor | None]:
        """[Δ_1, ..., Δ_L], Δ_l = t_l − h_l, top-down; Δ_L is in the output space, None when the
        top target has none."""
        ins = [x, *hs[:-1]]
        steps: list[Tensor | None] = [None] * len(hs)
        self.top_target.fill_top_steps(self, y, ins, hs, steps)  # Δ_L, Δ_{L-1}
        for i in range(len(hs) - 2, 0, -1):
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
        """Δ_{l-1} from Δ_l through layer i's feedback map."""
        return self.feedback_map.propagate(self, i, h_in, h_out, step)

    def forward_losses(self, x: Tensor, y: Tensor, hs: list[Tensor], steps) -> list[Tensor]:
        """[L_1, ..., L_L]: c‖h_l − t_l‖² per hidden layer; the top target's last-layer loss."""
        c = self.local_loss_scale
        losses = [local_loss(h, s, c) for h, s in zip(hs[:-1], steps[:-1], strict=True)]
        return [*losses, self.top_target.last_layer_loss(self, y, hs, steps[-1])]

    # --- inverse losses -------
    def draw_noise(self, j: int, ins: list[Tensor], outs: list[Tensor]) -> dict[str, Tensor]:
        """The noise (and DRL's reference) of inverse j for one feedback step."""
        return self.inverse_loss.draw(self, j, ins, outs)

    def feedback_loss(self, j: int, h_in: Tensor, y_out: Tensor, noise: dict[str, Tensor]):
        """Inverse loss of G_l, l = inverse_ids[j] (+1 in paper numbering), with the given noise."""
        return self.inverse_loss(self, j, h_in, y_out, noise)

    # --- the training step -------
    def phase(self) -> tuple[bool, bool]:
        """(train feedback, train forward weights) in the current epoch."""
        return self.schedule.phase(self.current_epoch, self.feedback_map.learned)

    def trains_forward_weights(self) -> bool:
        return self.phase()[1]

    def forward_epochs(self, epoch: int) -> int:
        learned = self.feedback_map.learned
        return sum(self.schedule.phase(e, learned)[1] for e in range(epoch + 1))

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        train_feedback, train_forward = self.phase()
        with torch.set_grad_enabled(train_forward):
            hs = self.net.forward_all(x, detach=True)  # [h_1, ..., h_L]
        self.net.pin_pool_indices()  # max-un-pooling: targets use this clean pass's switches
        early = train_forward and self.schedule.targets_before_feedback
        steps = self.target_steps(x, y, hs) if early else None
        if train_feedback:
            self.feedback_step(x, hs)
            self.net.restore_pool_indices()  # the noisy passes of the inverse losses moved them
        if train_forward:
            self.forward_step(x, y, hs, steps)
        logits = hs[-1].detach()
        return logits, self.task_loss(logits, y)

    def forward_step(self, x: Tensor, y: Tensor, hs: list[Tensor], steps=None) -> None:
        """One step on all layer-local losses (targets computed now unless given)."""
        steps = self.target_steps(x, y, hs) if steps is None else steps
        optimizer = self.forward_optimizer
        optimizer.zero_grad()
        self.manual_backward(torch.stack(self.forward_losses(x, y, hs, steps)).sum())
        optimizer.step()

    def feedback_step(self, x: Tensor, hs: list[Tensor]) -> None:
        """K_l steps on every inverse loss; each step sums the losses of the layers still active."""
        ins = [x, *(h.detach() for h in hs[:-1])]  # h_0 .. h_{L-1}
        outs = [*ins[1:], self.output_repr(hs[-1].detach(), ins[-1])]  # h_1 .. out(h_L)
        iterations = self.schedule.iterations(self.current_epoch)
        if self.schedule.sequential:
            return self.sequential_feedback_steps(ins, outs, iterations)
        steps = max(iterations)
        drawn = (  # DRL: all references from the start-of-batch G's, so draw them first
            [self._step_noise(k, ins, outs, iterations) for k in range(steps)]
            if (self.inverse_loss.references_first and steps > 1)
            else None
        )
        optimizer = self.feedback_optimizer
        for k in range(steps):
            noise = drawn[k] if drawn else self._step_noise(k, ins, outs, iterations)
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

    def _step_noise(self, k: int, ins, outs, iterations: list[int]) -> dict[int, dict]:
        """{j: noise} for every inverse j with more than k feedback iterations."""
        return {j: self.draw_noise(j, ins, outs) for j, n in enumerate(iterations) if n > k}

    def sequential_feedback_steps(self, ins, outs, iterations: list[int]) -> None:
        """K steps; in each, the layers top-down, one optimizer step per layer: a layer's noise
        and loss see the upper layers' G's of this step (the FW-DTP authors' code)."""
        optimizer = self.feedback_optimizer
        for k in range(max(iterations)):
            for j in reversed(range(len(self.inverse_ids))):
                if iterations[j] <= k:
                    continue
                i = self.inverse_ids[j]
                loss = self.feedback_loss(j, ins[i], outs[i], self.draw_noise(j, ins, outs))
                optimizer.zero_grad()  # set to None: only G_l's parameters take this step
                self.manual_backward(loss)
                optimizer.step()
                self._record_feedback_losses([j], loss.detach().view(1))

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
