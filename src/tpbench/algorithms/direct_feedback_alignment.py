"""Direct feedback alignment (Nøkland 2016): the output error goes straight to every hidden layer.

e = ∂ℓ/∂h_L (the gradient of the task loss w.r.t. the logits) reaches hidden layer l through a
fixed random D_l of shape (num_classes, *out_shape_l): δ_l = (e·D_l) ⊙ σ′(a_l). The output layer
gets its true gradient. All layers update from the one error at once: every layer's input is
detached, and a single backward of

    ℓ(h_L) + Σ_{l<L} ⟨h_l, sg(e·D_l)⟩

gives ∂/∂W_L = the true gradient and ∂/∂a_l = (e·D_l) ⊙ σ′(a_l) for every hidden l, with no
sequential pass through the net. D_l maps the num_classes outputs to the layer's output, nothing
bigger, so all D_l take num_classes · Σ_{l<L} |h_l| floats.

Pooling: a spatial layer may end with max-pooling, h_l = pool(σ(a_l)). Its units are the pooled
ones, so D_l maps e to the pooled output (the smaller D) and the layer's own local Jacobian — the
pool's max switch, then σ′ — carries e·D_l down to a_l: δ_l = S_lᵀ(e·D_l) ⊙ σ′(a_l), where S_l
selects each window's maximum. Without pooling S_l = I and this is the formula above. The switch
involves no weights, so no weight transport enters.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

from tpbench.algorithms.base import LearningRule
from tpbench.nets import Network

log = logging.getLogger(__name__)


def direct_feedback_bytes(net: Network, element_size: int = 4) -> int:
    """Memory of all D_l for `net`: num_classes · Σ_{hidden l} |h_l| · element_size."""
    num_outputs = math.prod(net.out_shape)
    units = sum(math.prod(layer.out_shape) for layer in list(net)[:-1])
    return num_outputs * units * element_size


def direct_signal(e: Tensor, feedback: Tensor) -> Tensor:
    """e·D_l: e (N, C), D_l (C, *out_shape) -> (N, *out_shape)."""
    return (e @ feedback.flatten(1)).view(e.shape[0], *feedback.shape[1:])


class DirectFeedbackAlignment(LearningRule):
    """DFA; D_l ~ U(−s, s) or N(0, s²), s = Glorot bound of (num_classes, |h_l|) by default."""

    low_precision_safe = True  # updates are error x activation products, like backprop's

    def __init__(
        self,
        net: Network,
        optimizer,
        feedback_distribution: str = "uniform",
        feedback_scale: float | None = None,
        feedback_seed: int = 0,
        **kwargs,
    ):
        super().__init__(net, optimizer, **kwargs)
        num_outputs = math.prod(net.out_shape)
        generator = torch.Generator().manual_seed(feedback_seed)
        for layer in list(net)[:-1]:
            layer.build_direct_feedback(
                num_outputs, feedback_distribution, feedback_scale, generator
            )
        log.info(
            "DFA: %d matrices D_l (%d outputs -> each hidden layer's output) take %.1f MB",
            len(net) - 1, num_outputs, direct_feedback_bytes(net) / 2**20,
        )  # fmt: skip

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One forward, e = ∂ℓ/∂h_L, one backward of ℓ + Σ_l ⟨h_l, sg(e·D_l)⟩, one step."""
        optimizer = self.forward_optimizer
        hs = self.net.forward_all(x, detach=True)  # [h_1, ..., h_L], inputs cut from the graph
        logits = hs[-1]  # (N, C)
        loss = self.task_loss(logits, y)
        (e,) = torch.autograd.grad(loss, logits, retain_graph=True)  # ∂ℓ/∂h_L: (N, C)
        surrogate = loss
        for layer, h in zip(list(self.net)[:-1], hs[:-1]):
            surrogate = surrogate + (h * direct_signal(e, layer.feedback["D"].weight)).sum()
        optimizer.zero_grad()
        self.manual_backward(surrogate)
        optimizer.step()
        return logits, loss
