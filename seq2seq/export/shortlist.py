"""A vocabulary shortlist: the target pieces worth scoring for a batch, so that the exported step
graph computes the output layer for those columns only (as CTranslate2's vocabulary map and
Marian's lexical shortlist do).

What it holds: the `frequent` target pieces, always scored (function words, punctuation, EOS), and
for each source piece its `per_source` candidate translations. A batch scores the union of the
frequent pieces and its source pieces' candidates.

How the candidates are learned: from co-occurrence in the training pairs. A source piece s and a
target piece t co-occur when a pair holds both; they are ranked by the Dice coefficient
2·c(s, t) / (c(s) + c(t)), over pieces that are not frequent (those are scored anyway). Why
co-occurrence rather than the model's attention: it needs the training text and the tokenizer
alone, so it is built in seconds at export time for any model, including one without attention
(`attention: none`); and Dice, unlike p(t | s), does not rank a common target piece high for every
source piece. Why not a word aligner (fast_align, as Marian): it would be one more tool to install
for a gain the BLEU check below would have to show.

What it costs: the search's scores are normalised over the batch's columns rather than the whole
vocabulary, and a piece outside them cannot be chosen; docs/guides/export.md gives the BLEU measured
on test_2016_flickr with every command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SHORTLIST_FILE = "shortlist.npz"
FREQUENT = 300  # target pieces always scored
PER_SOURCE = 60  # candidate target pieces per source piece
# Pairs are counted this many at a time, so a large corpus does not hold every co-occurrence at once.
_CHUNK_PAIRS = 20000


@dataclass(frozen=True)
class Shortlist:
    frequent: np.ndarray  # (F,) target ids always scored, ascending
    offsets: np.ndarray  # (V_src + 1,) int64: the candidates of source id s are candidates[offsets[s]:offsets[s + 1]]
    candidates: np.ndarray  # (total,) int64 target ids
    per_source: int

    def ids(self, src: np.ndarray, also: Iterable[int] = ()) -> np.ndarray:
        """src (B, S) source ids (any padding) → the target ids to score for the batch, ascending (C,):
        the frequent ones, each source id's candidates, and `also` (e.g. a forced prefix's ids)."""
        sources = np.unique(src)
        candidates, _ = self._candidates_of(sources[sources < self.offsets.size - 1])
        return np.unique(np.concatenate([self.frequent, candidates, np.fromiter(also, dtype=np.int64)]))

    def masks(self, src: np.ndarray, also: Sequence[Iterable[int]], size: int) -> np.ndarray:
        """src (B, S) source ids (any padding), also: () or B iterables of target ids (a forced prefix's)
        → (B, size) bool: row b marks the ids that `ids(src[b:b + 1], also[b])` gives, for a target
        vocabulary of `size` ids. One pass over the batch: calling `ids` per sentence cost the exported
        runtime 2.7 ms for a batch of 18 sentences."""
        B, n_sources = src.shape[0], self.offsets.size - 1
        known = src < n_sources  # an id the shortlist never saw adds nothing
        present = np.zeros((B, n_sources), dtype=bool)
        present[np.nonzero(known)[0], src[known]] = True
        rows, sources = np.nonzero(present)  # each sentence's distinct source ids
        candidates, lengths = self._candidates_of(sources)
        mask = np.zeros((B, size), dtype=bool)
        mask[:, self.frequent] = True
        mask[np.repeat(rows, lengths), candidates] = True
        for b, ids in enumerate(also):
            mask[b, np.fromiter(ids, dtype=np.int64)] = True
        return mask

    def _candidates_of(self, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sources (n,) known source ids → their candidates one run after another, and each run's length (n,)."""
        starts, lengths = self.offsets[sources], self.offsets[sources + 1] - self.offsets[sources]
        # Every candidate position at once: the start of each run, then + 0, 1, …
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        return self.candidates[positions], lengths

    def save(self, path: Path) -> None:
        np.savez(path, frequent=self.frequent, offsets=self.offsets, candidates=self.candidates, per_source=np.int64(self.per_source))

    @classmethod
    def load(cls, path: Path) -> Shortlist:
        with np.load(path) as f:
            return cls(f["frequent"], f["offsets"], f["candidates"], int(f["per_source"]))


def learn_shortlist(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    *,
    src_vocab_size: int,
    tgt_vocab_size: int,
    frequent: int = FREQUENT,
    per_source: int = PER_SOURCE,
) -> Shortlist:
    """Learn a shortlist from tokenized training pairs (ids without BOS/EOS), as the module says."""
    if len(src_ids) != len(tgt_ids) or not src_ids:
        raise ValueError(f"a shortlist is learned from pairs: got {len(src_ids)} source and {len(tgt_ids)} target sentences")
    tgt_count = np.bincount(np.concatenate([np.asarray(t, dtype=np.int64) for t in tgt_ids]), minlength=tgt_vocab_size)
    tgt_count[[PAD_ID, BOS_ID]] = 0
    kept = np.argsort(-tgt_count, kind="stable")[:frequent]
    always = np.unique(np.concatenate([kept[tgt_count[kept] > 0], [EOS_ID, UNK_ID]]))
    pair_keys, pair_counts, src_docs, tgt_docs = _cooccurrences(src_ids, tgt_ids, src_vocab_size, tgt_vocab_size)
    s, t = pair_keys // tgt_vocab_size, pair_keys % tgt_vocab_size
    dice = 2 * pair_counts / (src_docs[s] + tgt_docs[t])
    useful = ~np.isin(t, always) & (t != PAD_ID) & (t != BOS_ID)
    s, t, dice = s[useful], t[useful], dice[useful]
    order = np.lexsort((t, -dice, s))  # by source, best first, ties to the lower target id
    s, t = s[order], t[order]
    first = np.searchsorted(s, s, side="left")  # the position of each source's first candidate
    rank = np.arange(s.size) - first
    s, t = s[rank < per_source], t[rank < per_source]
    offsets = np.zeros(src_vocab_size + 1, dtype=np.int64)
    np.add.at(offsets, s + 1, 1)
    return Shortlist(always.astype(np.int64), np.cumsum(offsets), t.astype(np.int64), per_source)


def _cooccurrences(
    src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], src_vocab_size: int, tgt_vocab_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(s·V_tgt + t keys, ascending; how many pairs hold both), and how many pairs hold each source id
    (V_src,) and each target id (V_tgt,)."""
    keys, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    src_docs, tgt_docs = np.zeros(src_vocab_size, dtype=np.int64), np.zeros(tgt_vocab_size, dtype=np.int64)
    for start in range(0, len(src_ids), _CHUNK_PAIRS):
        chunk = []
        for src, tgt in zip(src_ids[start : start + _CHUNK_PAIRS], tgt_ids[start : start + _CHUNK_PAIRS]):
            s, t = np.unique(np.asarray(src, dtype=np.int64)), np.unique(np.asarray(tgt, dtype=np.int64))
            src_docs[s] += 1
            tgt_docs[t] += 1
            chunk.append((s[:, None] * tgt_vocab_size + t[None, :]).ravel())
        new_keys, new_counts = np.unique(np.concatenate(chunk), return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, new_keys]), return_inverse=True)
        merged = np.zeros(keys.size, dtype=np.int64)
        np.add.at(merged, inverse, np.concatenate([counts, new_counts]))
        counts = merged
    return keys, counts, src_docs, tgt_docs
