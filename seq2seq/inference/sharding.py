"""Translating one file with several processes: `torchrun --nproc_per_node=N --no-python seq2seq-translate`.

The input is cut into chunks of `chunk_lines` lines; chunk c belongs to rank c mod N. Every rank
streams the whole input but translates only its own chunks, writing them in order to a part file
beside the output (OUT.part-RANK) and counting the lines it wrote for each chunk. When all ranks
are done, rank 0 interleaves the parts chunk by chunk into OUT and removes them, so OUT is what
one process writes: a sentence's translation never depends on the batch it came in. Nothing
holds more than a chunk at a time, so memory stays flat however large the input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# The barrier at the end waits for the slowest rank's share; torchrun ends the group if a rank dies.
JOIN_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class Shard:
    rank: int
    world: int
    local_rank: int
    local_world: int  # processes on this machine, which share its CPU cores


@dataclass
class ChunkCounts:
    """Output lines per chunk of this rank's share, in the order the chunks came."""

    chunk_lines: int
    counts: list[int] = field(default_factory=list)
    current: int = -1

    def add(self, line_no: int, lines_out: int) -> None:
        chunk = line_no // self.chunk_lines
        if chunk != self.current:
            self.counts.append(0)
            self.current = chunk
        self.counts[-1] += lines_out


def shard_from_env() -> Shard | None:
    """This process's place among the translating processes torchrun started; None for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return None
    return Shard(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))


def cpu_threads(shard: Shard) -> int:
    """The machine's cores split between the processes on it."""
    return max(1, (os.cpu_count() or 1) // shard.local_world)


def own_lines(lines: Iterable[T], shard: Shard, chunk_lines: int) -> Iterator[tuple[int, T]]:
    """(line number from 0, line) for the lines of this rank's chunks, streaming."""
    for line_no, line in enumerate(lines):
        if (line_no // chunk_lines) % shard.world == shard.rank:
            yield line_no, line


def share_size(total_lines: int, shard: Shard, chunk_lines: int) -> int:
    """How many of `total_lines` lines belong to this rank."""
    full, rest = divmod(total_lines, chunk_lines)
    mine = len(range(shard.rank, full, shard.world)) * chunk_lines
    return mine + (rest if full % shard.world == shard.rank else 0)


def part_path(output: str | Path, rank: int) -> Path:
    return Path(f"{output}.part-{rank}")


def open_group() -> None:
    """Join torchrun's process group (gloo: it only carries the chunk counts at the end)."""
    import torch.distributed as torch_dist

    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="gloo", timeout=JOIN_TIMEOUT)


def join_parts(shard: Shard, counts: ChunkCounts, output: str | Path) -> None:
    """Wait for every rank; rank 0 then writes OUT from the parts and removes them."""
    import torch.distributed as torch_dist

    every: list[list[int] | None] = [None] * shard.world
    torch_dist.all_gather_object(every, counts.counts)
    if shard.rank == 0:
        merge_parts([part_path(output, r) for r in range(shard.world)], [c or [] for c in every], Path(output))
    torch_dist.barrier()  # the parts are gone before any rank reports success
    torch_dist.destroy_process_group()


def merge_parts(parts: list[Path], counts: list[list[int]], output: Path) -> None:
    """Interleave the parts chunk by chunk (chunk c is part c mod N's next `counts` lines) into
    output, written atomically, and remove the parts."""
    from seq2seq.atomic import atomic_write

    def write(tmp: Path) -> None:
        files = [open(p, "rb") for p in parts]
        try:
            with open(tmp, "wb") as out:
                for chunk in range(sum(len(c) for c in counts)):
                    rank, index = chunk % len(parts), chunk // len(parts)
                    for _ in range(counts[rank][index]):
                        out.write(files[rank].readline())
        finally:
            for f in files:
                f.close()

    atomic_write(output, write)
    for p in parts:
        p.unlink()
