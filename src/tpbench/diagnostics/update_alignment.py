"""Update alignment: how far each layer's update is from the backprop gradient, batch by batch.

On a measured batch, before the rule's step, the true gradient g_l = ∂ℓ/∂θ_l of the task loss is
computed on that batch at the current weights (`torch.autograd.grad`: no `.grad` is touched).
After the step, each forward parameter's `.grad` holds the update u_l the rule handed the forward
optimizer on that same batch at those same weights (rules never clear it after stepping). Per
layer (θ_l = W_l and b_l, flattened together):

    diag/update_angle/L<l>       ∠(u_l, g_l) in degrees   (BP: 0)
    diag/update_norm_ratio/L<l>  ‖u_l‖ / ‖g_l‖            (BP: 1; DTP with g_bp: the top step α)

A layer the rule did not update on that batch (its `.grad` is None, zero, or the very tensor left
from an earlier batch, e.g. in an inverse-only epoch of the alternating schedule), or whose BP
gradient is zero, is skipped.
Under DDP the measurement runs on rank 0 with that rank's batch, while `.grad` may be averaged
over ranks, so there the angle is not exactly 0 for BP.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn

from tpbench.diagnostics.base import DiagnosticCallback, layer_key, measuring
from tpbench.diagnostics.geometry import angle_degrees, norm_ratio


def layer_parameters(rule: L.LightningModule) -> list[list[nn.Parameter]]:
    """Forward parameters of each layer of `rule.net`, in net order (empty for parameter-free)."""
    return [list(layer.forward_parameters()) for layer in rule.net]


def bp_gradients(rule: L.LightningModule, x: Tensor, y: Tensor) -> list[Tensor | None]:
    """Per layer, the flattened ∂ℓ/∂θ_l of the task loss ℓ(rule(x), y); None for no parameters."""
    groups = layer_parameters(rule)
    flat = [p for group in groups for p in group]
    with torch.enable_grad():
        loss = rule.task_loss(rule(x), rule.task.target(x, y))  # y: label, or x (reconstruction)
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    it = iter(torch.zeros_like(p) if g is None else g for p, g in zip(flat, grads))
    return [torch.cat([next(it).flatten() for _ in group]) if group else None for group in groups]


class UpdateAlignment(DiagnosticCallback):
    """Angle and norm ratio between each layer's applied update and the BP gradient."""

    name = "update_alignment"

    def __init__(self, every_n_steps: int = 50, plot: bool = True):
        super().__init__(every_n_steps, num_samples=1, plot=plot)
        self._bp: list[Tensor | None] | None = None
        self._before: list[tuple[Tensor | None, int]] = []  # each .grad (and version) pre-step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._bp = None
        if not self.due(trainer):
            return
        x, y = batch
        with measuring(pl_module):
            self._bp = bp_gradients(pl_module, x, y)
        self._before = [
            (p.grad, p.grad._version if p.grad is not None else -1)
            for group in layer_parameters(pl_module)
            for p in group
        ]

    def _updates(self, rule: L.LightningModule) -> list[Tensor | None]:
        """Per layer, the flattened update the rule applied on this batch, or None if it did not
        update every parameter of the layer on this batch."""
        before = iter(self._before)
        updates = []
        for group in layer_parameters(rule):
            fresh = [
                p.grad is not None and (p.grad is not old or p.grad._version != version)
                for p, (old, version) in ((p, next(before)) for p in group)
            ]
            updates.append(
                torch.cat([p.grad.flatten() for p in group]) if group and all(fresh) else None
            )
        return updates

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._bp is None:
            return
        metrics = {}
        with torch.no_grad():
            for i, (update, grad) in enumerate(zip(self._updates(pl_module), self._bp)):
                if update is None or grad is None or not (update.any() and grad.any()):
                    continue
                metrics[layer_key("update_angle", i)] = angle_degrees(update, grad)
                metrics[layer_key("update_norm_ratio", i)] = norm_ratio(update, grad)
        self._bp, self._before = None, []
        self.record(trainer, metrics)
