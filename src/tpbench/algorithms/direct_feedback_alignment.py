"""Direct feedback alignment (Nøkland 2016): the output error goes straight to every hidden layer.

e = ∂ℓ/∂h_L (the gradient of the task loss w.r.t. the logits) reaches every weight layer's input
through a fixed random D of shape (num_outputs, *input shape): the `DirectFeedback` route
(tpbench.nets.routes) sends ∂ℓ/∂x = e·D in place of Wᵀ·δ. The output layer gets its true
gradient, and in a chain h_l = σ(a_l) each hidden layer gets

    δ_l = (e·D_{l+1}) ⊙ σ′(a_l),

D_{l+1} mapping the outputs to h_l: Nøkland's rule, with the matrix stored on the layer that
reads h_l. One forward and one backward pass, like backprop, with no Wᵀ anywhere.

Pooling: a spatial layer may end with max-pooling, h_l = pool(σ(a_l)). The next layer's input is
the pooled map, so D maps e to the pooled units (the smaller D) and the pool's max switch, then
σ′, carries e·D down to a_l: δ_l = S_lᵀ(e·D) ⊙ σ′(a_l), S_l selecting each window's maximum.
Residual blocks and batch norm: e·D enters the input of every convolution in the block (and of a
projection shortcut); the identity shortcut, σ′ and the normalisation carry it down, weight-free.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

from tpbench.algorithms.base import LearningRule
from tpbench.nets import Network
from tpbench.nets.routes import DirectFeedback, routed_layers

log = logging.getLogger(__name__)


def direct_feedback_bytes(net: Network, element_size: int = 4) -> int:
    """Memory of all D for `net`: num_outputs · Σ |x_l| · element_size over the weight layers
    whose input x_l is not the data (for a chain: the hidden layers' outputs)."""
    num_outputs = math.prod(net.out_shape)
    units = sum(math.prod(layer.in_shape) for layer in routed_layers(net)[1:])
    return num_outputs * units * element_size


def probe(net, in_shape: tuple[int, ...], route) -> None:
    """One forward pass of a 2-sample zero batch with `route`, in eval mode (running statistics
    untouched) and with gradients on, so a route can build what it needs per layer."""
    training = net.training
    param = next(net.parameters())
    net.eval()
    with torch.enable_grad():
        net(torch.zeros(2, *in_shape, device=param.device, dtype=param.dtype), route=route)
    net.train(training)


class DirectFeedbackAlignment(LearningRule):
    """DFA; D ~ U(−s, s) or N(0, s²), s = Glorot bound of (num_outputs, |x|) by default."""

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
        self.route = DirectFeedback(num_outputs, feedback_distribution, feedback_scale, generator)
        probe(net, net.in_shape, self.route)  # builds every D now: in checkpoints from the start
        stored = sum(m.feedback["D"].weight.nbytes for m in routed_layers(net) if "D" in m.feedback)
        log.info(
            "DFA: matrices D (%d outputs -> each weight layer's input) take %.1f MB",
            num_outputs, stored / 2**20,
        )  # fmt: skip

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One forward, e = ∂ℓ/∂h_L caught on its way back, e·D to every layer, one step."""
        optimizer = self.forward_optimizer
        logits = self.route.watch(self.net(x, route=self.route))  # (N, C)
        loss = self.task_loss(logits, y)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return logits, loss
