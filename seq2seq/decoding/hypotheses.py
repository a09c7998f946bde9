"""What every search returns, `Hypothesis`, and the length batching both searches share.

Imports no torch: the exported runtime's numpy search uses both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seq2seq.options import check_batch_size
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Hypothesis:
    """One output of a search (the torch search's and the exported runtime's), ranked by `score`."""

    tokens: list[int]  # target ids, without BOS and EOS
    score: float  # log_prob after the length penalty
    log_prob: float  # summed log-probability of tokens + EOS
    # (T, S_real): a row for each output token, EOS included; only the torch search returns it, when
    # asked. Left out of ==, which tensors would make ambiguous.
    attention: torch.Tensor | None = field(default=None, compare=False)


def in_length_batches(
    sources: Sequence[Any],
    batch_size: int,
    prefixes: Sequence[Any] | None,
    search_batch: Callable[[list[Any], list[Any] | None], list[list[Hypothesis]]],
    *,
    workers: int = 1,
) -> list[list[Hypothesis]]:
    """Search each source (token ids without EOS) in batches of similar length, longest first;
    results in input order. Both searches, torch's and the exported runtime's, batch this way.

    search_batch(sources, prefixes or None) searches one batch. Sorting by length keeps padding low;
    a sentence's result never depends on its batch. prefixes: None, or one per source. workers: how
    many batches to search at once, in threads (search_batch must then release the GIL to gain).
    """
    check_batch_size(batch_size)
    check_prefixes(prefixes, len(sources))
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def search_chunk(chunk: list[int]) -> list[list[Hypothesis]]:
        return search_batch([sources[i] for i in chunk], None if prefixes is None else [prefixes[i] for i in chunk])

    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ThreadPoolExecutor  # only here: the translation path imports little

        with ThreadPoolExecutor(workers, thread_name_prefix="seq2seq-batch") as pool:
            found = list(pool.map(search_chunk, chunks))
    else:
        found = [search_chunk(chunk) for chunk in chunks]
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for chunk, hyps_of_chunk in zip(chunks, found):
        for i, hyps in zip(chunk, hyps_of_chunk):
            results[i] = hyps
    return results


def check_prefixes(prefixes: Sequence[Sequence[int] | None] | None, batch: int) -> None:
    """One prefix (target ids, or None) per sentence, without PAD, BOS or EOS: both searches check this here."""
    if prefixes is None:
        return
    if len(prefixes) != batch:
        raise ValueError(f"prefixes has {len(prefixes)} entries for a batch of {batch}; give one per sentence (None for no prefix)")
    for b, prefix in enumerate(prefixes):
        if prefix is not None and any(int(i) in (PAD_ID, BOS_ID, EOS_ID) for i in prefix):
            raise ValueError(f"prefixes[{b}] holds PAD, BOS or EOS ({PAD_ID}, {BOS_ID}, {EOS_ID}); a prefix is target tokens without them")
