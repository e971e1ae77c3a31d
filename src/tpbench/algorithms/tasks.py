"""What the net's output is trained to match: the task-specific pieces every rule calls.

- classification: the target is the label y, ℓ = cross-entropy of softmax(h_L) and y, scored by
  accuracy (err = 1 − acc);
- reconstruction (Bartunov §5.5 autoencoder): the target is the flat input x, ℓ = ½‖h_L − x‖²
  summed over pixels and averaged over the batch, scored by that error itself (err = ℓ).

Rules receive the task's target (`Task.target(x, y)`) in place of the label, so a rule that only
uses `loss` and `error` (BP, FA, DFA, DTP) trains any task. Shapes: out (N, C) or (N, D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tpbench.errors import ConfigError


class Classification:
    name = "classification"

    def target(self, x: Tensor, y: Tensor) -> Tensor:
        return y

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        """ℓ = (1/N) Σ_n −log softmax(h_L,n)[y_n]."""
        return F.cross_entropy(out, target)

    def error(self, out: Tensor, target: Tensor) -> Tensor:
        """e = ∂ℓ_n/∂h_L = softmax(h_L) − onehot(y) for one sample's loss; (N, C)."""
        return torch.softmax(out, dim=1) - self.argmin(out, target)

    def argmin(self, out: Tensor, target: Tensor) -> Tensor:
        """t_L = argmin ℓ over the output distribution = onehot(y), the correct labels; (N, C)."""
        return F.one_hot(target, out.shape[1]).to(out.dtype)

    def prediction(self, out: Tensor) -> Tensor:
        """The output space SDTP's G_L inverts: the distribution o = softmax(h_L)."""
        return torch.softmax(out, dim=1)

    def sample_scores(self, out: Tensor, target: Tensor) -> Tensor:
        """1 where argmax h_L,n = y_n, else 0; (N,): their mean is the accuracy."""
        return out.argmax(1) == target

    def scores(self, value: Tensor) -> dict[str, Tensor]:
        return {"acc": value, "err": 1 - value}


class Reconstruction:
    name = "reconstruction"

    def target(self, x: Tensor, y: Tensor) -> Tensor:
        """The flat input, (N, D)."""
        return x.flatten(1)

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        """ℓ = (1/N) Σ_n ½ ‖h_L,n − x_n‖²."""
        return 0.5 * (out - target).pow(2).sum() / out.shape[0]

    def error(self, out: Tensor, target: Tensor) -> Tensor:
        """e = ∂ℓ_n/∂h_L = h_L − x; (N, D)."""
        return out - target

    def argmin(self, out: Tensor, target: Tensor) -> Tensor:
        """t_L = argmin ℓ = x itself; (N, D)."""
        return target.to(out.dtype)

    def prediction(self, out: Tensor) -> Tensor:
        """The reconstruction h_L itself is the output space."""
        return out

    def sample_scores(self, out: Tensor, target: Tensor) -> Tensor:
        """½‖h_L,n − x_n‖² per sample, (N,): their mean over the epoch is the error."""
        return 0.5 * (out - target).pow(2).flatten(1).sum(1)

    def scores(self, value: Tensor) -> dict[str, Tensor]:
        return {"err": value}


Task = Classification | Reconstruction
TASKS: dict[str, type[Task]] = {t.name: t for t in (Classification, Reconstruction)}


def make_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"algo.task={name!r} is not a task; valid: {', '.join(TASKS)}.")
    return TASKS[name]()
