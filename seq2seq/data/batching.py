"""Token batches: pairs of similar lengths bucketed to about N target tokens, from a corpus in
memory or a stream, padded and collated into tensors.

Translation imports this module for `pad_sources`; it loads neither `datasets` nor the corpus code.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, pad_with_eos


@dataclass(frozen=True)
class EncodedSplit:
    """Token ids of the kept pairs (no BOS/EOS), with the original row of each."""

    src: list[np.ndarray]
    tgt: list[np.ndarray]
    rows: np.ndarray
    dropped: int

    def __len__(self) -> int:
        return len(self.src)

    def target_tokens(self) -> int:
        """Target tokens per epoch, EOS included, as throughput counts them."""
        return int(sum(len(t) + 1 for t in self.tgt))


def stream_batches(
    stream, encode_src, encode_tgt, max_len: int, buffer_size: int, batch_tokens: int, seed: int, epoch: int, *, ladder: bool
) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Token batches from a stream of pairs, holding only `buffer_size` pairs at a time.

    Each buffer is tokenized, length-filtered and cut into batches of similar lengths, as
    `make_batches` does for a corpus in memory (`ladder` as there); the same seed and epoch give
    the same batches.
    """
    buffer: list[dict[str, str]] = []
    part = 0
    for pair in itertools.chain(stream, [None]):
        if pair is not None:
            buffer.append(pair)
        if buffer and (len(buffer) == buffer_size or pair is None):
            src_arr, tgt_arr, keep = filter_by_length(encode_src([p["src"] for p in buffer]), encode_tgt([p["tgt"] for p in buffer]), max_len)
            src_lens = np.fromiter((len(a) + 1 for a in src_arr), dtype=np.int64, count=len(keep))
            tgt_lens = np.fromiter((len(a) for a in tgt_arr), dtype=np.int64, count=len(keep))
            if keep:
                for indices in make_batches(src_lens, tgt_lens, batch_tokens, seed, epoch, part, ladder=ladder):
                    yield [src_arr[i] for i in indices], [tgt_arr[i] for i in indices]
            buffer, part = [], part + 1


def filter_by_length(src_ids: list[list[int]], tgt_ids: list[list[int]], max_len: int) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """The pairs with 1 to `max_len` tokens on both sides, as arrays, and their row numbers."""
    keep = [i for i, (s, t) in enumerate(zip(src_ids, tgt_ids)) if 0 < len(s) <= max_len and 0 < len(t) <= max_len]
    return [np.asarray(src_ids[i], dtype=np.int64) for i in keep], [np.asarray(tgt_ids[i], dtype=np.int64) for i in keep], keep


def make_batches(src_lens: np.ndarray, tgt_lens: np.ndarray, batch_tokens: int, seed: int, epoch: int, part: int = 0, *, ladder: bool) -> list[np.ndarray]:
    """Batches of about `batch_tokens` target tokens, of similar lengths, in a seeded random order.

    Sorting by length (ties broken at random) keeps padding small; shuffling the batches keeps
    updates from following the length order. The same seed and epoch give the same batches,
    which an exact resume relies on.

    ladder: cut each batch to the largest number of sentences on the shape ladder that fits the
    budget, the rest starting the next batch, so that the CPU's padding to the ladder
    (`collate_pairs`) adds no rows; only the last batch of the sorted order may be off the ladder.
    """
    rng = np.random.default_rng([seed, epoch, part])
    order = np.lexsort((rng.random(len(tgt_lens)), src_lens, tgt_lens))
    ends = [0, *np.cumsum(tgt_lens[order] + 1).tolist()]  # ends[k]: target tokens of order[:k], EOS included
    batches, start = [], 0
    for pos in range(len(order)):
        # Adding order[pos] overruns the budget: close the batch before it (a lone sentence over
        # the budget still makes a batch). A ladder cut leaves sentences over, which may overrun again.
        while ends[pos + 1] - ends[start] > batch_tokens and pos > start:
            end = (start + ladder_size_at_most(pos - start)) if ladder else pos
            batches.append(order[start:end])
            start = end
    batches.append(order[start:])
    rng.shuffle(batches)
    return batches


@dataclass(frozen=True)
class Batch:
    src: torch.Tensor  # (B, S) source ids + EOS, PAD-padded
    src_len: torch.Tensor  # (B,) int64
    tgt_in: torch.Tensor  # (B, T) BOS + target ids
    tgt_out: torch.Tensor  # (B, T) target ids + EOS
    num_tokens: int  # non-pad target tokens

    def to(self, device: torch.device) -> Batch:
        """Copy to `device`; to a GPU from pinned memory, without blocking the host."""
        nb = device.type == "cuda"
        if nb:
            self = Batch(self.src.pin_memory(), self.src_len.pin_memory(), self.tgt_in.pin_memory(), self.tgt_out.pin_memory(), self.num_tokens)
        return Batch(
            self.src.to(device, non_blocking=nb),
            self.src_len.to(device, non_blocking=nb),
            self.tgt_in.to(device, non_blocking=nb),
            self.tgt_out.to(device, non_blocking=nb),
            self.num_tokens,
        )


# oneDNN (torch's CPU kernels for LSTMs and bf16 products) compiles a primitive for every shape it
# meets and keeps it in a cache keyed by shape. Token-bucketed batches come in hundreds of
# (sentences, source length, target length) shapes, most never seen twice, so a cache either grows
# all run or (capacity 0) compiles anew at every call. On the CPU, each batch's three sizes are kept
# to a ladder with LADDER_STEPS sizes per octave (exact up to 2·LADDER_STEPS, then e.g. 10, 12, 14,
# 16, 20, 24, 28, 32, 40, …), few enough shapes that the cache (seq2seq.devices.size_onednn_cache)
# holds every one. The number of sentences is cut down to the ladder (`make_batches`), since padded
# rows were whole fake sentences of work; source and target lengths are padded up to it, which adds
# at most 25% and on average 8% masked positions.
LADDER_STEPS = 4


def ladder_size(n: int) -> int:
    """The smallest size on the shape ladder that is at least n (n ≥ 1)."""
    step = 1 << max(0, (n - 1).bit_length() - LADDER_STEPS.bit_length())
    return -(-n // step) * step


def ladder_size_at_most(n: int) -> int:
    """The largest size on the shape ladder that is at most n (n ≥ 1)."""
    step = 1 << max(0, n.bit_length() - LADDER_STEPS.bit_length())
    return n // step * step


def pad_sources(seqs: list[np.ndarray], width: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Source ids + EOS, right-padded to the longest (or `width`): (B, S) ids and (B,) lengths."""
    ids, lens = pad_with_eos(seqs, width)
    return torch.from_numpy(ids), torch.from_numpy(lens)


def collate(split: EncodedSplit, indices: np.ndarray, *, ladder: bool) -> Batch:
    return collate_pairs([split.src[i] for i in indices], [split.tgt[i] for i in indices], ladder=ladder)


def collate_pairs(srcs: list[np.ndarray], tgts: list[np.ndarray], *, ladder: bool) -> Batch:
    """Token ids → padded tensors: source + EOS, BOS + target, target + EOS.

    ladder: pad B, S and T up to `ladder_size` (the CPU's oneDNN cache, above). B needs no rows
    when `make_batches` cut the batch to the ladder; where it could not (the last batch of an
    epoch or of a streamed buffer), the extra rows are an EOS-only source and an all-PAD target:
    they add no token to the loss and no gradient.
    """
    B = len(srcs)
    if ladder:
        rows = ladder_size(B) - B
        srcs = [*srcs, *[np.zeros(0, dtype=np.int64)] * rows]
        S = ladder_size(max(len(s) for s in srcs) + 1)
        T = ladder_size(max(len(t) for t in tgts) + 1)
    else:
        rows, S, T = 0, 0, max(len(t) for t in tgts) + 1
    src, src_len = pad_sources(srcs, S)
    tgt_in = np.full((B + rows, T), PAD_ID, dtype=np.int64)
    tgt_out = np.full((B + rows, T), PAD_ID, dtype=np.int64)
    for row, t in enumerate(tgts):
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(t) + 1] = t
        tgt_out[row, : len(t)] = t
        tgt_out[row, len(t)] = EOS_ID
    num_tokens = int(sum(len(t) + 1 for t in tgts))
    return Batch(src, src_len, torch.from_numpy(tgt_in), torch.from_numpy(tgt_out), num_tokens)
