"""What every search returns, `Hypothesis`, and the length batching both searches share.

Imports no torch: the exported runtime's numpy search uses both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seq2seq.options import check_batch_size

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
    sources: Sequence[Any], batch_size: int, prefixes: Sequence[Any] | None, search_batch: Callable[[list[Any], list[Any] | None], list[list[Hypothesis]]]
) -> list[list[Hypothesis]]:
    """Search each source (token ids without EOS) in batches of similar length, longest first;
    results in input order. Both searches, torch's and the exported runtime's, batch this way.

    search_batch(sources, prefixes or None) searches one batch. Sorting by length keeps padding low;
    a sentence's result never depends on its batch. prefixes: None, or one per source.
    """
    check_batch_size(batch_size)
    if prefixes is not None and len(prefixes) != len(sources):
        raise ValueError(f"prefixes has {len(prefixes)} entries for {len(sources)} sources; give one per source (None for no prefix)")
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        found = search_batch([sources[i] for i in chunk], None if prefixes is None else [prefixes[i] for i in chunk])
        for i, hyps in zip(chunk, found):
            results[i] = hyps
    return results
