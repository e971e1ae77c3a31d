"""The random generators' states in every checkpoint, so a resumed run draws what it would have.

Everything random in a run is either a fixed draw at construction (weights, FA's B, DFA's D,
FW-DTP's B, AO-SDTP's features: in the state_dict), drawn from a generator seeded by what it is
for (the data order and augmentation by (seed, epoch), brSF's magnitudes by (feedback_seed,
step)), or drawn during training from torch's global generator (DTP's ε, L-DRL's ε and η, DRL's
corruptions, ...). Only the last has a state that depends on how far a run has come: `capture`
returns it, CPU and CUDA, for every DDP rank (each rank draws its own noise, tpbench.distributed),
and `restore` gives each rank its own again.

A checkpoint resumed with another number of ranks than it was written by keeps the fresh seeds of
each rank (`seed_rank`): the run continues correctly, its noise just is not the one an
uninterrupted run would have drawn; a warning says so.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

KEY = "tpbench_rng"  # checkpoint key: one state per rank, in rank order


def _this_rank() -> dict[str, object]:
    state: dict[str, object] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this rank's device
    return state


def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def capture(checkpoint: dict) -> None:
    """checkpoint[KEY] = [rank 0's state, rank 1's, ...]; every rank must call it (all-gather)."""
    states: list = [_this_rank()]
    rank, world = _world()
    if world > 1:
        states = [None] * world
        dist.all_gather_object(states, _this_rank())
    checkpoint[KEY] = states


def restore(checkpoint: dict) -> None:
    """Set this rank's generators to the states the checkpoint holds for it."""
    states = checkpoint.get(KEY)
    rank, world = _world()
    if states is None:
        log.warning(
            "The checkpoint holds no random state (written by an older tpbench): the resumed "
            "run's noise differs from an uninterrupted run's."
        )
        return
    if len(states) != world:
        log.warning(
            "The checkpoint was written by %d process(es), this run has %d: each keeps its fresh "
            "noise seed, so the resumed run's noise differs from an uninterrupted run's.",
            len(states),
            world,
        )
        return
    state = states[rank]
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
