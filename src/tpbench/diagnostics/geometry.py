"""Angles and distances between two tensors of the same shape, seen as flat vectors."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def angle_degrees(u: Tensor, v: Tensor) -> float:
    """∠(u, v) in degrees, via 2·atan2(‖û − v̂‖, ‖û + v̂‖) with û = u/‖u‖: exact 0 for u ∥ v,
    where acos of the cosine loses ~1e-3 degrees to rounding. NaN if either vector is zero."""
    u, v = u.detach().flatten(), v.detach().flatten()
    nu, nv = u.norm(), v.norm()
    if nu == 0 or nv == 0:
        return math.nan
    u_hat, v_hat = u / nu, v / nv
    return math.degrees(2 * torch.atan2((u_hat - v_hat).norm(), (u_hat + v_hat).norm()).item())


def norm_ratio(u: Tensor, v: Tensor) -> float:
    """‖u‖ / ‖v‖."""
    return (u.detach().norm() / v.detach().norm()).item()


def relative_distance(u: Tensor, v: Tensor) -> float:
    """‖u − v‖ / ‖v‖."""
    u, v = u.detach(), v.detach()
    return ((u - v).norm() / v.norm()).item()
