"""Data-parallel training under torchrun: process group, batch shards, collectives.

`torchrun --nproc_per_node=N --no-python seq2seq-train RECIPE` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set. Each builds the same global batches (same seed) and trains on its
own slice of every batch; DistributedDataParallel averages the gradients. With one process every
helper here is a no-op, so the single-process path pays nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and metrics."""
        return self.rank == 0

    def shard(self, items: list[Any]) -> list[Any]:
        """This rank's part of a global batch: every world-th sentence, so shards never overlap
        and together cover the batch."""
        return items[self.rank :: self.world]

    def sum(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch_dist.all_reduce(t)
        return float(t.item())

    def any(self, flag: bool) -> bool:
        return self.sum(1.0 if flag else 0.0) > 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's object on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's object, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        torch_dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPUs); one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank), device


def shut_down(dist: Dist) -> None:
    if dist.world > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
