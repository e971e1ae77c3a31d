"""Backpropagation: the baseline every other rule is compared with."""

from __future__ import annotations

from torch import Tensor

from tpbench.algorithms.base import LearningRule


class Backprop(LearningRule):
    low_precision_safe = True  # updates are error x activation products, like backprop's

    def train_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """W ← W − η ∂ℓ/∂W, gradients from autograd through the whole net."""
        optimizer = self.forward_optimizer
        logits = self.net(x)
        loss = self.task_loss(logits, y)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return logits, loss
