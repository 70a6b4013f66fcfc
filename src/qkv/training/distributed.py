"""Processes and devices: one process, or N under ``torchrun`` with DistributedDataParallel.

``torchrun --nproc_per_node N -m qkv train ...`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`setup` then joins the process group -- NCCL when training on CUDA (one GPU per process),
gloo on CPU -- and every other part of the loop asks :class:`Dist` who it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from qkv.errors import UserError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()

    def sum(self, value: float) -> float:
        """Sum a number over processes (identity for one process)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return float(t.item())

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every process."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        torch_dist.broadcast(t, src=0)
        return bool(t.item())


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("training.device=cuda, but no CUDA device is available (use cpu or auto)")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(device_name: str) -> Dist:
    """Join the process group when launched by torchrun; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world > 1 and not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, device)


def teardown(dist: Dist) -> None:
    if dist.enabled and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
