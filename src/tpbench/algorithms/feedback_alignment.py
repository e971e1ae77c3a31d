"""Feedback alignment (Lillicrap et al. 2016) and its sign-symmetry variants (Liao et al. 2016).

One forward and one backward pass, like backprop, except that each layer sends the error down
with a feedback tensor B_l of W_l's shape in place of W_l: ∂ℓ/∂h_{l-1} = B_lᵀ·δ_l, applied with
the layer's own transposed structure, so dense, locally-connected and conv layers all work. The
weight gradient ∂ℓ/∂W_l = δ_l·h_{l-1}ᵀ is the true one. The net runs its own forward pass with
the `AlignedFeedback` route (tpbench.nets.routes), so whatever a block adds (a skip connection,
a normalisation) is kept. Every layer with weights gets its B, also the ones inside a residual
block and the converted nn.Linear / nn.Conv2d of a torch model (`routed_layers`).

`feedback` picks B_l:
- `fa`:   B_l fixed random (distribution and scale configurable; default like W's init);
- `usf`:  B_l = s_l·sign(W_l), follows W's signs as W changes (s_l: W's std at init by default);
- `frsf`: B_l = |R_l| ⊙ sign(W_l), R_l fixed random;
- `brsf`: B_l = |R_l| ⊙ sign(W_l), R_l redrawn every training step.
Every random tensor comes from `feedback_seed`, so runs are reproducible and DDP ranks agree.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tpbench.algorithms.base import LearningRule
from tpbench.errors import ConfigError
from tpbench.nets import Layer, Network
from tpbench.nets.alignment import build_aligned_feedback, redraw
from tpbench.nets.routes import ROUTE_KINDS, AlignedFeedback, routed_layers


class FeedbackAlignment(LearningRule):
    """FA and the sign-symmetry variants; see the module docstring for `feedback`."""

    low_precision_safe = True  # updates are error x activation products, like backprop's
    NAMES = {"fa": "FeedbackAlignment", "usf": "uSF", "frsf": "frSF", "brsf": "brSF"}

    @property
    def display_name(self) -> str:
        return self.NAMES[self.feedback_kind]

    def __init__(
        self,
        net: Network,
        optimizer,
        feedback: str = "fa",
        feedback_distribution: str = "uniform",
        feedback_scale: float | None = None,
        feedback_seed: int = 0,
        **kwargs,
    ):
        super().__init__(net, optimizer, **kwargs)
        if feedback not in ROUTE_KINDS:
            raise ConfigError(
                f"Unknown feedback '{feedback}' for FeedbackAlignment; valid: "
                f"{', '.join(ROUTE_KINDS)}."
            )
        self.feedback_kind, self.feedback_seed = feedback, feedback_seed
        self.route = AlignedFeedback(feedback)
        self.feedback_distribution = feedback_distribution
        self.layers = routed_layers(self.net)  # every layer with weights, inside blocks too
        self.scales = build_aligned_feedback(
            self.layers, feedback, feedback_distribution, feedback_scale, feedback_seed
        )  # per layer: R's scale (fa, frsf, brsf) or s (usf)

    def feedback_weight(self, layer: Layer) -> Tensor:
        """B_l for this step (W's shape): B, or s·sign(W) (uSF), or |R| ⊙ sign(W) (fr/brSF)."""
        return self.route.feedback_weight(layer)

    def redraw_magnitudes(self) -> None:
        """brSF: new |R_l| for every layer but the first (whose B is never used: its input is
        the data), from a generator seeded by (feedback_seed, step), so a resumed run and every
        DDP rank draw the same."""
        device = self.layers[0].weight.device
        seed = self.feedback_seed * 1_000_003 + self.global_step
        generator = torch.Generator(device=device).manual_seed(seed)
        redraw(self.layers[1:], self.scales[1:], self.feedback_distribution, generator)

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One forward, one backward with B_l in place of W_l, one optimizer step."""
        if self.feedback_kind == "brsf":
            self.redraw_magnitudes()
        optimizer = self.forward_optimizer
        h = self.net(x, route=self.route)  # the net's own forward; B_lᵀ·δ on the way back
        loss = self.task_loss(h, y)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return h, loss
