"""Parameter-free batch standardisation, as the FW-DTP authors use it inside activations.

BN(v) = (v − mean_n v) / (std_n v + 1e-12), per unit over the batch dimension n, with the unbiased
standard deviation (N − 1) and the 1e-12 added to the std, not under a square root; no affine
parameters and no running statistics, so evaluation standardises with the evaluation batch's own
statistics (Shibuya et al., Fixed-Weight-Difference-Target-Propagation, code/utils.py:371-376).
`tanh_bn` is BN(tanh(a)) (their `tanh-BN`), `linear_bn` is BN(a) (their `linear-BN`).

Under DDP the statistics are those of the global batch (every rank's shard), as one process on
the whole batch computes them, so a result does not depend on the number of devices: the sums
Σ_n v and Σ_n (v − mean)² are all-reduced over the ranks with a differentiable all-reduce (its
backward sums the gradients over the ranks too, like SyncBatchNorm). Every rank must standardise
the same number of batches, which tpbench's batches guarantee (tpbench.data.batches).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tpbench.distributed import differentiable_sum_over_ranks as all_reduce

EPS = 1e-12


def batch_standardize(v: Tensor) -> Tensor:
    """(v − mean_n v) / (std_n v + 1e-12); v: (N, *units), n over the global batch under DDP.

    The std comes from the centred sums, not from `Tensor.std(0)`, whose reduction over the
    strided batch dimension is slow on a CPU (4x these sums at (128, 256): docs/benchmarks.md)."""
    n = all_reduce(torch.tensor(float(len(v)), device=v.device))  # global batch size
    centred = v - all_reduce(v.sum(0)) / n  # (N, *units)
    std = (all_reduce((centred * centred).sum(0)) / (n - 1)).sqrt()  # unbiased, as Tensor.std
    return centred / (std + EPS)


class BatchStandardize(nn.Module):
    """BN(σ(a)) for an element-wise σ (identity by default)."""

    elementwise = False  # each output depends on the whole batch

    def __init__(self, inner: nn.Module | None = None):
        super().__init__()
        self.inner = inner if inner is not None else nn.Identity()

    def forward(self, a: Tensor) -> Tensor:
        return batch_standardize(self.inner(a))


class TanhBN(BatchStandardize):
    def __init__(self):
        super().__init__(nn.Tanh())


class LinearBN(BatchStandardize):
    def __init__(self):
        super().__init__(nn.Identity())
