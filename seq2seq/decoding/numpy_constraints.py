"""Which tokens may come next, in numpy: the exported search's twin of seq2seq/decoding/torch_constraints.py.

seq2seq.decoding.torch_constraints.constrain is the one place that says which tokens may come next in the
torch search; this module applies the same rules in the same order to numpy arrays, so the
exported model translates byte for byte as the torch model does with the decoding controls on
and with forced prefixes (tests/export/test_export.py). It imports no torch. A rule added there
belongs here too: tests/decoding/test_numpy_constraints.py holds the two to the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seq2seq.options import SearchOptions
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEG_INF = np.float32(-np.inf)

# Target token ids a sentence's output must start with (no BOS, no EOS); None or empty: no prefix.
Prefix = Sequence[int] | np.ndarray | None


@dataclass(frozen=True)
class Limits:
    """As seq2seq.decoding.torch_constraints.Limits: max_len (B,), min_len (B,) or None, prefix (B, P) PAD-padded
    with prefix_len (B,), or both None."""

    max_len: np.ndarray
    min_len: np.ndarray | None = None
    prefix: np.ndarray | None = None
    prefix_len: np.ndarray | None = None

    def keep(self, rows: np.ndarray) -> Limits:
        """The limits of the sentences that stay in the batch, rows (B',)."""
        return Limits(*(None if x is None else x[rows] for x in (self.max_len, self.min_len, self.prefix, self.prefix_len)))


def sentence_limits(src_len: np.ndarray, options: SearchOptions, prefixes: Sequence[Prefix] | None) -> Limits:
    """src_len (B,), EOS included, and each sentence's prefix → its `Limits`, computed as
    seq2seq.decoding.torch_constraints.sentence_limits computes them (float64 ceil, then the integers)."""
    sources = src_len.astype(np.float64) - 1
    max_len = np.ceil(options.max_len_ratio * sources).astype(np.int64) + options.max_len_offset  # (B,)
    prefix = prefix_len = None
    if prefixes is not None and any(p is not None and len(p) > 0 for p in prefixes):
        prefix_len = np.array([0 if p is None else len(p) for p in prefixes], dtype=np.int64)
        prefix = np.full((len(prefixes), int(prefix_len.max())), PAD_ID, dtype=np.int64)
        for b, p in enumerate(prefixes):
            if prefix_len[b]:
                prefix[b, : prefix_len[b]] = np.asarray(p, dtype=np.int64)
        max_len = np.maximum(max_len, prefix_len)
    min_len = None
    if options.min_len_ratio > 0:
        min_len = np.minimum(np.ceil(options.min_len_ratio * sources).astype(np.int64), max_len)
    return Limits(max_len, min_len, prefix, prefix_len)


def constrain(x: np.ndarray, t: int, history: np.ndarray, limits: Limits, options: SearchOptions) -> np.ndarray:
    """Step t's scores x (B*K, V) float32, logits or log-probabilities, → x with -inf for every
    token that may not come next; history (B, K, t). x is written in place; use the returned array.

    The rules of seq2seq.decoding.torch_constraints.constrain, in its order, a later one overriding an earlier:
    1. PAD and BOS never; 2. repetition_penalty P ≠ 1: each token the hypothesis holds scores ×1/P
    where positive, ×P where negative; 3. ban_unk: no <unk>; 4. t < min_len: no EOS;
    5. no_repeat_ngram N: no token completing an N-gram the hypothesis holds; 6. t == max_len: EOS
    only; 7. a row that 3–6 left empty may end (EOS at its score); 8. t < prefix_len: the prefix's
    token only, at its own score. With no control on and no prefix, only 1 and 6 run, the work the
    search did before.
    """
    B, K = history.shape[:2]
    forcing = limits.prefix is not None and t < limits.prefix.shape[1]
    if forcing:
        forced = np.repeat(limits.prefix[:, t], K)  # (B*K,)
        forced_score = x[np.arange(B * K), forced]  # (B*K,) a copy
    x[:, PAD_ID] = NEG_INF
    x[:, BOS_ID] = NEG_INF
    if options.constrains_steps:
        p = options.repetition_penalty
        if p != 1 and t > 0:
            rows, held = np.arange(B * K)[:, None], history.reshape(B * K, t)  # (B*K, 1), (B*K, t)
            scores = x[rows, held]  # (B*K, t) a copy; a token held twice is written twice, with the same value
            x[rows, held] = np.where(scores < 0, scores * np.float32(p), scores * np.float32(1 / p))
        eos = x[:, EOS_ID].copy()  # (B*K,)
        if options.ban_unk:
            x[:, UNK_ID] = NEG_INF
        if limits.min_len is not None:
            x[np.repeat(t < limits.min_len, K), EOS_ID] = NEG_INF
        n = options.no_repeat_ngram
        if 0 < n <= t:
            windows = sliding_window_view(history, n, axis=2)  # (B, K, t-n+1, n): every n-gram the hypothesis holds
            seen = (windows[..., :-1] == history[:, :, None, t - n + 1 :]).all(-1)  # (B, K, t-n+1): starts as its last n-1 tokens
            b, k, w = np.nonzero(seen)
            x[b * K + k, windows[b, k, w, -1]] = NEG_INF
    at_max = limits.max_len == t  # (B,)
    if at_max.any():
        rows = np.repeat(at_max, K)  # (B*K,)
        at_eos = x[rows, EOS_ID]  # a copy
        x[rows] = NEG_INF
        x[rows, EOS_ID] = at_eos
    if options.constrains_steps:
        stuck = ~np.isfinite(x).any(-1)  # (B*K,)
        x[stuck, EOS_ID] = eos[stuck]
    if forcing:
        inside = np.repeat(t < limits.prefix_len, K)  # (B*K,)
        if inside.any():
            x[inside] = NEG_INF
            x[inside, forced[inside]] = forced_score[inside]
    return x


def only_pad_and_bos(t: int, limits: Limits, options: SearchOptions) -> bool:
    """Whether `constrain` at step t forbids nothing but PAD and BOS (rule 1): no control is on, no
    sentence is at its maximum length and no prefix is being forced. The exported step graph's own
    top k leaves out PAD and BOS, so on such a step it is the top k of the constrained logits."""
    forcing = limits.prefix is not None and t < limits.prefix.shape[1]
    return not options.constrains_steps and not forcing and not (limits.max_len == t).any()
