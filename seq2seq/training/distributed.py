"""Data-parallel training under torchrun: process group, batch shards, collectives.

`torchrun --nproc_per_node=N --no-python seq2seq-train RECIPE` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set. Each builds the same global batches (same seed) and trains on its
own slice of every batch; DistributedDataParallel averages the gradients. With one process every
helper here is a no-op, so the single-process path pays nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    # Where collectives' tensors live: NCCL reduces CUDA tensors only, gloo CPU ones.
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, logs and metrics."""
        return self.rank == 0

    def shard(self, items: list[Any]) -> list[Any]:
        """This rank's part of a global batch: every world-th sentence, so shards never overlap
        and together cover the batch."""
        return items[self.rank :: self.world]

    def sum(self, value: float) -> float:
        return self.sums(value)[0]

    def sums(self, *values: float) -> tuple[float, ...]:
        """Each value summed over the ranks, in one all-reduce."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return tuple(t.tolist())

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


class PeerError(ConnectionError):
    """A collective failed: another rank died, hangs or stopped answering."""


def init_distributed(device: torch.device, timeout_minutes: float) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPUs); one process otherwise.

    `timeout_minutes`: how long a collective waits for the other ranks before it fails.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not torch_dist.is_initialized():
        timeout = timedelta(minutes=timeout_minutes)
        torch_dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo", store=attempt_store(rank, world, timeout), rank=rank, world_size=world, timeout=timeout
        )
    return Dist(rank, world, local_rank, device if device.type == "cuda" else torch.device("cpu")), device


def attempt_store(rank: int, world: int, timeout: timedelta) -> torch_dist.Store:
    """The launcher's key-value store, with this group's keys kept apart from those of earlier attempts.

    torchrun keeps one store for every restart of a group: unprefixed, a restarted rank could read
    the address that a rank of the failed attempt published and never connect (gloo: "connectFullMesh
    failed ... Connection refused"), which made elastic restarts fail about one time in three. The
    restart count cannot name the attempt: each node's launcher keeps its own, and a node whose
    workers were healthy restarts them without counting.
    """
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={world} but {name} is not set: start distributed runs with torchrun")
    # Under torchrun the agent serves the store and every rank is a client; otherwise rank 0 serves it.
    agent_serves = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = torch_dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size=world, is_master=rank == 0 and not agent_serves, timeout=timeout
    )
    return torch_dist.PrefixStore(f"seq2seq/group/{agree_on_group_name(store, rank, world, timeout)}", store)


def agree_on_group_name(store: torch_dist.Store, rank: int, world: int, timeout: timedelta) -> str:
    """A name for this group that every rank learns from rank 0 and that no earlier group left in the store.

    Rank 0 draws a fresh random name. Every other rank draws a fresh nonce, posts it, and takes the
    name only from a reply that echoes that nonce, then acknowledges it; rank 0 answers each rank's
    latest nonce until every rank has acknowledged its name. Whatever a failed attempt left in the
    store carries nonces and names drawn then, so none of it is ever taken for this group.
    """
    deadline = time.monotonic() + timeout.total_seconds()

    def wait_or_fail(who: str) -> None:
        if time.monotonic() > deadline:
            raise PeerError(
                f"rank {rank}: {who} did not join the process group within {timeout.total_seconds():.0f} s; "
                "train.dist_timeout_minutes sets how long ranks wait for each other"
            )
        time.sleep(0.02)

    def read(key: str) -> str | None:
        return store.get(key).decode() if store.check([key]) else None

    if rank == 0:
        name = secrets.token_hex(8)
        waiting = set(range(1, world))
        while waiting:
            for r in sorted(waiting):
                if read(f"seq2seq/ack/{r}") == name:
                    waiting.discard(r)
                elif (nonce := read(f"seq2seq/hello/{r}")) is not None:
                    store.set(f"seq2seq/reply/{r}", f"{nonce} {name}")
            if waiting:
                wait_or_fail(f"rank{'s' if len(waiting) > 1 else ''} {', '.join(map(str, sorted(waiting)))}")
        return name
    nonce = secrets.token_hex(8)
    store.set(f"seq2seq/hello/{rank}", nonce)
    while True:
        echoed, _, name = (read(f"seq2seq/reply/{rank}") or "").partition(" ")
        if echoed == nonce:
            store.set(f"seq2seq/ack/{rank}", name)
            return name
        wait_or_fail("rank 0")


@contextlib.contextmanager
def peers_watched(dist: Dist, roll_call_s: float = 10.0) -> Iterator[None]:
    """Turn a failed collective (a peer that died, or hangs past the process group's timeout) into
    a PeerError that names the ranks that did not answer.

    The ranks that see the failure sign in at torchrun's key-value store and wait up to
    `roll_call_s` for the others; whoever has not signed in by then is named.
    """
    try:
        yield
    except (torch_dist.DistError, RuntimeError) as err:
        if dist.world == 1 or not is_collective_failure(err):
            raise
        missing = absent_ranks(dist, roll_call_s)
        who = f"rank{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} did not answer" if missing else "no rank was found missing"
        raise PeerError(
            f"rank {dist.rank}: a collective with the other ranks failed ({who}): {str(err).splitlines()[0]}; "
            "see that rank's log; train.dist_timeout_minutes sets how long ranks wait for each other"
        ) from err


def is_collective_failure(err: BaseException) -> bool:
    if isinstance(err, torch_dist.DistError):
        return True
    text = str(err)
    return any(mark in text for mark in ("Gloo", "gloo", "NCCL", "Connection closed by peer", "Connection reset by peer", "Timed out waiting"))


def absent_ranks(dist: Dist, wait_s: float) -> list[int]:
    """Ranks that have not signed in at the store within wait_s (empty when the store is gone too)."""
    try:
        store = torch_dist.distributed_c10d._get_default_store()
        keys = [f"seq2seq/failed/{r}" for r in range(dist.world)]  # the store is this attempt's (attempt_store)
        store.set(keys[dist.rank], "1")
        deadline = time.monotonic() + wait_s
        while not store.check(keys) and time.monotonic() < deadline:
            time.sleep(0.2)
        return [r for r, key in enumerate(keys) if not store.check([key])]
    except (RuntimeError, ValueError):
        return []


def shut_down(dist: Dist) -> None:
    if dist.world > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
