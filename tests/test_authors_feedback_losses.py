"""What the FW-DTP authors' L-DRL and "DRL" feedback losses teach G (float64, one tanh layer).

Both compare G at points σ apart and carry no 1/σ² (their code/models/tp_net.py:129-150). The
gradient in G's weights then has an O(σ) part that is odd in the noise (zero mean) and an O(σ²)
part, the learning signal; the noise is drawn in antithetic pairs (ε, −ε) here, so the odd part
cancels exactly and the signal is what is measured. DTP's noise-preserving loss reconstructs h
itself, so its signal does not vanish as σ → 0. Hence hparams_search=fwdtp_grid_drl searches a
feedback lr 1/σ² larger than fwdtp_grid_feedback. Their "DRL" takes the clean h as target, so it
is minimised by a G that is flat along the noise: descending it shrinks G instead of inverting F.
"""

from __future__ import annotations

import pytest
import torch

from tpbench.algorithms.feedback_losses import (
    clean_target_drl_loss,
    ldrl_loss,
    noise_preserving_loss,
)

N, IN, OUT = 64, 12, 10


def layer_pair(sigma: float):
    """F(x) = tanh(W x), G(y) = tanh(V y) with V a leaf, h, and antithetic noise ε, η of scale σ."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(OUT, IN, generator=gen, dtype=torch.float64) / IN**0.5
    v = (0.3 * torch.randn(IN, OUT, generator=gen, dtype=torch.float64)).requires_grad_()
    h = torch.tanh(torch.randn(N, IN, generator=gen, dtype=torch.float64)).repeat(2, 1)
    eps = sigma * torch.randn(N, IN, generator=gen, dtype=torch.float64)
    eta = sigma * torch.randn(N, OUT, generator=gen, dtype=torch.float64)
    noise = {"eps": torch.cat([eps, -eps]), "eta": torch.cat([eta, -eta])}
    return (lambda x: torch.tanh(x @ w.T)), (lambda y: torch.tanh(y @ v.T)), v, h, noise


LOSSES = {  # (f, g, h, noise) -> loss
    "ldrl (authors')": lambda f, g, h, n: ldrl_loss(
        f, g, h, n["eps"], n["eta"], f(h), stop_reference=True
    ),
    "clean-target drl (authors')": lambda f, g, h, n: clean_target_drl_loss(
        g, f(h + n["eps"]), f(h)
    ),
    "dtp": lambda f, g, h, n: noise_preserving_loss(f, g, h, n["eps"]),
}


def signal_norm(name: str, sigma: float) -> float:
    f, g, v, h, noise = layer_pair(sigma)
    (grad,) = torch.autograd.grad(LOSSES[name](f, g, h, noise), v)
    return grad.norm().item()


@pytest.mark.parametrize(("name", "ratio"), [
    ("ldrl (authors')", 100.0), ("clean-target drl (authors')", 100.0), ("dtp", 1.0),
])  # fmt: skip
def test_learning_signal_scales_with_sigma_squared_for_the_difference_losses(name, ratio):
    assert signal_norm(name, 1e-2) / signal_norm(name, 1e-3) == pytest.approx(ratio, rel=0.02)


def test_authors_drl_shrinks_g_instead_of_inverting_f():
    f, g, v, h, noise = layer_pair(0.1)
    start = v.detach().norm()
    optimizer = torch.optim.SGD([v], lr=50.0)
    for _ in range(200):
        optimizer.zero_grad()
        clean_target_drl_loss(g, f(h + noise["eps"]), f(h)).backward()
        optimizer.step()
    assert v.detach().norm() < 0.5 * start
