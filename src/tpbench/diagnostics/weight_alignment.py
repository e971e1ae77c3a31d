"""Weight alignment (Lillicrap et al. 2016): how close each layer's feedback weights are to W.

The feedback tensor has W's shape and is applied with the layer's transposed structure, so it
plays the role of Wᵀ: B_l for FA-type rules and FW-DTP, V_l of the learned inverse
G_l(h) = σ_g(V_lᵀ·h + c_l) for the TP family. Per layer:

    diag/weight_angle/L<l>     ∠(W_l, B_l) in degrees   (FA with B = W: 0; random B: ≈ 90)
    diag/weight_rel_dist/L<l>  ‖B_l − W_l‖ / ‖W_l‖

Layers without such a tensor (DFA's D_l, a DTP layer without inverse) are skipped, and so is the
first layer: its input is the data, so its feedback weights carry nothing anywhere.
"""

from __future__ import annotations

import lightning as L
from torch import Tensor

from tpbench.diagnostics.base import DiagnosticCallback, layer_key
from tpbench.diagnostics.feedback import feedback_weight
from tpbench.diagnostics.geometry import angle_degrees, relative_distance


class WeightAlignment(DiagnosticCallback):
    """Angle and relative distance between forward and feedback weights, per layer."""

    name = "weight_alignment"

    def __init__(self, every_n_steps: int = 50, plot: bool = True):
        super().__init__(every_n_steps, num_samples=1, plot=plot)

    def measure(self, rule: L.LightningModule, x: Tensor, y: Tensor) -> dict[str, float]:
        metrics = {}
        for i, layer in enumerate(rule.net):
            feedback = feedback_weight(rule, layer) if i > 0 else None
            if feedback is None:
                continue
            metrics[layer_key("weight_angle", i)] = angle_degrees(layer.weight, feedback)
            metrics[layer_key("weight_rel_dist", i)] = relative_distance(feedback, layer.weight)
        return metrics
