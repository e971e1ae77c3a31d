"""Data-parallel training (DDP) for every learning rule, without DistributedDataParallel's reducer.

The rules optimise by hand: several optimizers, several backward passes per step (K feedback
iterations, then the forward losses). DDP's reducer averages gradients from autograd hooks during
*each* backward and expects every parameter to take part in every backward pass, which does not fit.
Instead, `GradientSyncDDP` keeps the LightningModule unwrapped and averages gradients in the one
place every rule goes through to change its weights: `optimizer.step()` (Lightning's
`Strategy.optimizer_step`). Just before an optimizer steps, the gradients of exactly the parameters
it owns are averaged over the ranks with a few bucketed all-reduces:

    ∇θ ← (1/R) Σ_r ∇θ^(r)      (R ranks; = the gradient of the loss averaged over the global batch
                                 when each rank's loss is a mean over its equal-sized shard)

Randomness under DDP:
- the module's state (weights, learned inverses, fixed random feedback B_l, D_l, FW-DTP's B_l,
  AO-SDTP's feature matrix R, metric states) is broadcast from rank 0 when fitting starts, so
  every fixed random tensor built when the rule is constructed is identical on every rank;
- the global torch RNG is then re-seeded per rank (seed + rank·1_000_003, rank 0 unchanged), so
  per-sample noise drawn during training (DTP's ε, L-DRL's ε and η, ...) differs between ranks as
  it does between the samples of one big batch. Randomness that must agree across ranks during
  training uses its own seeded generator (brSF's magnitudes: seeded by (feedback_seed, step)).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, ParallelStrategy, Strategy
from torch import Tensor, nn

from tpbench.errors import ConfigError

RANK_SEED_STRIDE = 1_000_003


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _buckets(tensors: list[Tensor], bucket_bytes: int) -> Iterable[list[Tensor]]:
    """Consecutive groups of tensors of one dtype and device, each at most ~bucket_bytes."""
    bucket: list[Tensor] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        same_kind = not bucket or (t.dtype, t.device) == (bucket[0].dtype, bucket[0].device)
        if bucket and (size + nbytes > bucket_bytes or not same_kind):
            yield bucket
            bucket, size = [], 0
        bucket.append(t)
        size += nbytes
    if bucket:
        yield bucket


def average_gradients(params: Iterable[nn.Parameter], bucket_mb: float = 25.0) -> None:
    """∇θ ← mean over ranks of ∇θ, for every parameter that has a gradient; in place.

    Gradients are packed into flat buckets (one all-reduce each, all in flight at once), summed
    over ranks, scaled by 1/R and copied back. Every rank must call this with the same parameters
    holding gradients (the rules' control flow is the same on every rank).
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    scale = 1.0 / dist.get_world_size()
    pending = []
    for bucket in _buckets(grads, int(bucket_mb * 2**20)):
        flat = torch.cat([g.reshape(-1) for g in bucket])  # (Σ numel,)
        pending.append((dist.all_reduce(flat, async_op=True), flat, bucket))
    for work, flat, bucket in pending:
        work.wait()
        flat.mul_(scale)
        for g, chunk in zip(bucket, flat.split([g.numel() for g in bucket]), strict=True):
            g.copy_(chunk.view_as(g))


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Every parameter and buffer of `module` takes rank `src`'s value (identical init)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src)


def seed_rank(rank: int) -> None:
    """Give each rank its own stream of per-sample noise: torch seed + rank·1_000_003."""
    torch.manual_seed(torch.initial_seed() + rank * RANK_SEED_STRIDE)


def sum_over_ranks(tensor: Tensor) -> None:
    """tensor ← Σ_r tensor^(r), in place; a no-op outside DDP."""
    if is_distributed():
        dist.all_reduce(tensor)


class _SumOverRanks(torch.autograd.Function):
    """y = Σ_r x^(r); backward: ∂L/∂x = Σ_r ∂L^(r)/∂y (every rank's loss depends on y)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def differentiable_sum_over_ranks(x: Tensor) -> Tensor:
    """Σ_r x^(r), with gradients that flow back to every rank's x (like SyncBatchNorm's); x
    itself outside DDP."""
    return _SumOverRanks.apply(x) if is_distributed() else x


class GradientSyncDDP(DDPStrategy):
    """Lightning's DDP strategy (process launch, process group, rank-aware logging and
    checkpointing, metric sync) with the module left unwrapped: gradients are averaged in
    `optimizer_step` (see the module docstring), never by DistributedDataParallel's hooks."""

    def __init__(self, bucket_mb: float = 25.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.bucket_mb = bucket_mb

    def setup_distributed(self) -> None:
        super().setup_distributed()  # seeds every rank alike, then joins the process group
        seed_rank(self.global_rank)

    def configure_ddp(self) -> None:
        """No DistributedDataParallel wrapper; rank 0's weights and fixed feedback everywhere."""
        broadcast_module(self.model)

    def optimizer_step(
        self, optimizer: torch.optim.Optimizer, closure: Callable[[], Any], model=None, **kwargs
    ) -> Any:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        average_gradients(params, self.bucket_mb)
        return super().optimizer_step(optimizer, closure, model, **kwargs)


def check_strategy(strategy: Strategy) -> None:
    """A multi-process strategy other than GradientSyncDDP would not average the rules' gradients
    correctly (DDP's reducer) or not at all; refuse it at start-up with one sentence."""
    if isinstance(strategy, ParallelStrategy) and not isinstance(strategy, GradientSyncDDP):
        raise ConfigError(
            f"trainer.strategy={type(strategy).__name__} does not fit rules that optimise by hand "
            "with several backward passes per step; use trainer=ddp (or trainer=ddp_cpu), whose "
            "GradientSyncDDP averages each optimizer's gradients before it steps."
        )


def plain_backward(trainer, module) -> bool:
    """Whether Lightning's `manual_backward` would only run `loss.backward()`: 32-bit precision
    (no loss scaling), no backward hook in a callback or the module, and a strategy whose
    backward adds nothing (one device, or GradientSyncDDP, which syncs in optimizer_step)."""
    from lightning import Callback, LightningModule
    from lightning.pytorch.utilities.model_helpers import is_overridden

    hooks = ("on_before_backward", "on_after_backward")
    hooked = any(is_overridden(h, c, Callback) for c in trainer.callbacks for h in hooks) or any(
        is_overridden(h, module, LightningModule) for h in (*hooks, "backward")
    )
    one_device = not isinstance(trainer.strategy, ParallelStrategy)
    plain_strategy = one_device or isinstance(trainer.strategy, GradientSyncDDP)
    return str(trainer.precision) == "32-true" and plain_strategy and not hooked


def rank_reducer(strategy: Strategy) -> Callable[[Tensor], None] | None:
    """`sum_over_ranks` when this strategy trains on several processes, else None."""
    return sum_over_ranks if isinstance(strategy, GradientSyncDDP) else None


def set_threads(threads: int) -> None:
    """Torch CPU threads for this process and the DDP processes it launches: Lightning's launcher
    would otherwise set cores / processes threads itself unless OMP_NUM_THREADS is set."""
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
