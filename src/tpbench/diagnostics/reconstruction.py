"""Reconstruction: how well each layer's feedback map G_l inverts its forward map F_l.

On the fixed batch, with h_0 = x and h_l = F_l(h_{l-1}) (the net's own activations), per layer
with a G_l:

    diag/reconstruction/L<l>  ‖G_l(F_l(h_{l-1})) − h_{l-1}‖_F / ‖h_{l-1}‖_F   (batch-wide norms)

0 is a perfect inverse on the data; about 1 means G_l carries no information about h_{l-1}.
With hybrid targets this is the learned part g_tp alone (g_bp is a linearisation, not an inverse).
"""

from __future__ import annotations

import lightning as L
from torch import Tensor

from tpbench.diagnostics.base import DiagnosticCallback, layer_key
from tpbench.diagnostics.feedback import feedback_pairs
from tpbench.diagnostics.geometry import relative_distance


class Reconstruction(DiagnosticCallback):
    """Relative inverse reconstruction error of every layer with a feedback map."""

    name = "reconstruction"

    def __init__(self, every_n_steps: int = 50, num_samples: int = 128, plot: bool = True):
        super().__init__(every_n_steps, num_samples, plot)

    def measure(self, rule: L.LightningModule, x: Tensor, y: Tensor) -> dict[str, float]:
        pairs = feedback_pairs(rule)
        if not pairs:
            return {}  # no layer has a G (BP, FA, DFA)
        inputs = [x, *rule.net.forward_all(x)[:-1]]  # h_0 .. h_{L-1}: (n, *in_shape_l)
        return {
            layer_key("reconstruction", i): relative_distance(g(f(inputs[i])), inputs[i])
            for i, (f, g) in pairs.items()
        }
