"""Data parallelism facts and the two collectives the models need outside DDP's gradient all-reduce.

``torchrun`` describes the process group in the environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``); :func:`setup_distributed` joins it (NCCL on GPUs, gloo on CPUs). Without
torchrun every helper here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    """Process-group facts: ``rank`` 0 of ``world`` 1 when not launched by torchrun."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the process group that ``torchrun`` describes in the environment (or none)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        rank = dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        return Distributed(rank, world, device)
    return Distributed(0, 1, torch.device("cuda" if cuda else "cpu"))


def world_size() -> int:
    """Number of data-parallel processes (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def broadcast_from_rank0(*tensors: torch.Tensor) -> None:
    """Copy rank 0's values of ``tensors`` (in place, same shapes on every rank) to all processes."""
    if world_size() > 1:
        for t in tensors:
            dist.broadcast(t, src=0)


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Replace each tensor (in place) by its sum over all processes."""
    if world_size() > 1:
        for t in tensors:
            dist.all_reduce(t)
