"""How a diagnostic finds a rule's feedback pathway without depending on the rule's class.

- `feedback_weight(rule, layer)`: the tensor of W's shape that carries errors or targets down
  through the layer's transposed structure: the rule's own `feedback_weight(layer)` where it has
  one (FA and sign-symmetry: B for this step), else the inverse's V (learned, or FW-DTP's fixed
  B), else a fixed B. None when the layer has none of W's shape (DFA's D_l maps the output error).
- `feedback_pair(rule, i)`: (F_l, G_l) for layer i (0-based) as the rule propagates targets
  through it, or None when the layer has no G. Target-propagation rules say which layers have a
  G (`inverse_ids`) and give F_l (`forward_map(i)`: the last layer maps into the space its G
  inverts, e.g. SDTP's softmax) and G_l (`inverse(i, h)`); for any other rule a layer with a
  learned inverse gives (layer, layer.inverse).
- `hybrid_lambda(rule)`: λ of hybrid targets G = λ·g_bp + (1 − λ)·g_tp (0 when the rule has none).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import lightning as L
from torch import Tensor

from tpbench.nets import Layer

Map = Callable[[Tensor], Tensor]


def feedback_weight(rule: L.LightningModule, layer: Layer) -> Tensor | None:
    weight = getattr(layer, "weight", None)
    if weight is None:
        return None
    own = getattr(rule, "feedback_weight", None)
    if callable(own):
        feedback = own(layer)
    elif "inverse" in layer.feedback:
        feedback = layer.feedback["inverse"].weight
    elif "B" in layer.feedback:
        feedback = layer.feedback["B"].weight
    else:
        return None
    return feedback if feedback is not None and feedback.shape == weight.shape else None


def feedback_pair(rule: L.LightningModule, i: int) -> tuple[Map, Map] | None:
    inverse_ids = getattr(rule, "inverse_ids", None)
    if inverse_ids is not None:
        return (rule.forward_map(i), partial(rule.inverse, i)) if i in inverse_ids else None
    layer = rule.net[i]
    return (layer, layer.inverse) if "inverse" in layer.feedback else None


def feedback_pairs(rule: L.LightningModule) -> dict[int, tuple[Map, Map]]:
    """{i: (F_l, G_l)} for every layer with a G (empty for BP, FA, DFA)."""
    pairs = {i: feedback_pair(rule, i) for i in range(len(rule.net))}
    return {i: pair for i, pair in pairs.items() if pair is not None}


def hybrid_lambda(rule: L.LightningModule) -> float:
    return float(getattr(getattr(rule, "feedback_map", None), "hybrid", 0.0))
