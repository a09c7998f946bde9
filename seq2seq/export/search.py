"""Greedy search, batched beam search and sampling in numpy, over an exported model's graphs.

Why a second copy of seq2seq/search.py rather than one backend-agnostic search: the torch
search runs on CUDA and keeps every array on the device (topk, gather, masked_fill on tensors);
a search written against an array abstraction would need a shim over torch and numpy that the
torch path pays for on every step (dispatch, conversions) and that hides what each step does.
The torch search must not get slower, so it stays as it is, and this module is a line-by-line
port of it: the same driver (`_search`), the same named steps (`_select_topk`, `_select_sample`,
`_set_aside`, `_rows`, `_length_penalty`), the same float32 arithmetic in the same order, and
the same length sorting in `decode_sources`. tests/export/test_search.py holds the two to
identical hypotheses and scores on a real model; the exported-versus-torch tests hold the
translations byte-identical.

What is not copied exactly: sampling draws from numpy's generator (PCG64 seeded with
options.seed, one per sentence), not torch's, so seeded samples are reproducible and follow the
same distribution but are not the torch path's samples.

Per-step constraints on the log-probabilities live in one place, `_constrain`, which both
selection steps call; an option this module does not implement is refused by
`check_supported` (every SearchOptions field not in SUPPORTED must keep its default), so a new
option added to SearchOptions is never silently ignored here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from seq2seq.options import BATCH_SIZE, SearchOptions, check_batch_size
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from seq2seq.export.runtime import ExportedModel

NEG_INF = np.float32(-np.inf)

# The SearchOptions fields this search implements; any other must keep its default.
SUPPORTED = frozenset({"mode", "beam_size", "nbest", "length_penalty", "max_len_ratio", "max_len_offset", "early_stop", "temperature", "top_k", "seed"})

# (scores (B, K), logits (B*K, V), at_max (B,), ids (B,)) → origin beam, token, new score: (B, K) each
Select = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Hypothesis:
    """One output of a search, ranked by `score` (as seq2seq.search.Hypothesis, without attention)."""

    tokens: list[int]  # target ids, without BOS and EOS
    score: float  # log_prob after the length penalty
    log_prob: float  # summed log-probability of tokens + EOS


def check_supported(options: SearchOptions) -> None:
    """Refuse options this search does not implement, naming each one and what to do."""
    unsupported = [f.name for f in fields(options) if f.name not in SUPPORTED and getattr(options, f.name) != f.default]
    if unsupported:
        raise ValueError(
            f"the exported (onnxruntime) search does not implement {', '.join(unsupported)}; leave "
            f"{'it' if len(unsupported) == 1 else 'them'} at the default or translate with the torch model directory"
        )


def decode_sources(model: ExportedModel, sources: list[np.ndarray], options: SearchOptions, batch_size: int = BATCH_SIZE) -> list[list[Hypothesis]]:
    """Search for each source (token ids without EOS) in batches of similar length; results in input order.

    As seq2seq.search.decode_sources: longest first, a sentence's result never depends on its batch.
    """
    check_batch_size(batch_size)
    check_supported(options)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        src, src_len = pad_sources([sources[i] for i in chunk])
        for i, h in zip(chunk, search(model, src, src_len, options)):
            results[i] = h
    return results


def pad_sources(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Source ids + EOS, right-padded: (B, S) ids and (B,) lengths (as seq2seq.batching.pad_sources)."""
    lens = np.fromiter((len(s) + 1 for s in seqs), dtype=np.int64, count=len(seqs))
    out = np.full((len(seqs), int(lens.max())), PAD_ID, dtype=np.int64)
    for row, s in enumerate(seqs):
        out[row, : len(s)] = s
        out[row, len(s)] = EOS_ID
    return out, lens


def search(model: ExportedModel, src: np.ndarray, src_len: np.ndarray, options: SearchOptions) -> list[list[Hypothesis]]:
    """Beam search or sampling, as options.mode says: src (B, S), src_len (B,) → B n-best lists, best first."""
    check_supported(options)
    if options.mode == "beam":
        return _search(model, src, src_len, options, _select_topk, K=options.beam_size, one_start=True, early_stop=options.early_stop)
    elif options.mode == "sample":
        rngs = [np.random.default_rng(options.seed) for _ in range(src.shape[0])]
        select = partial(_select_sample, temperature=options.temperature, top_k=options.top_k, rngs=rngs)
        return _search(model, src, src_len, options, select, K=options.nbest, one_start=False, early_stop=False)
    raise ValueError(f"mode must be one of beam, sample; got {options.mode!r}")


def greedy_search(model: ExportedModel, src: np.ndarray, src_len: np.ndarray, options: SearchOptions | None = None) -> list[list[Hypothesis]]:
    """Beam search with one beam, as seq2seq.search.greedy_search."""
    return search(model, src, src_len, replace(options or SearchOptions(), mode="beam", beam_size=1, nbest=1))


def _search(
    model: ExportedModel, src: np.ndarray, src_len: np.ndarray, options: SearchOptions, select: Select, *, K: int, one_start: bool, early_stop: bool
) -> list[list[Hypothesis]]:
    """The driver, as seq2seq.search._search: rows of the decoder batch are sentence-major (b*K + k)."""
    B = src.shape[0]
    if B == 0:
        return []
    nbest, alpha = options.nbest, options.length_penalty
    max_len = _max_lengths(src_len, options.max_len_ratio, options.max_len_offset)  # (B,)
    ids = np.arange(B)  # (B,) each active sentence's row in src
    memory, state = model.encode(src, src_len)
    rows = np.repeat(ids, K)
    memory, state = model.select_memory(memory, rows), model.reorder_state(state, rows)
    scores = np.zeros((B, K), dtype=np.float32)  # (B, K) summed log-probs; -inf: no live hypothesis
    if one_start:
        scores[:, 1:] = NEG_INF
    tokens = np.zeros((B, K, 0), dtype=np.int64)  # (B, K, t)
    n_finished = np.zeros(B, dtype=np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    y = np.full(B * K, BOS_ID, dtype=np.int64)  # (B*K,)
    for t in range(int(max_len.max()) + 1):
        logits, state = model.step(y, state, memory)  # (B*K, V)
        origin, y_k, scores = select(scores, logits, max_len == t, ids)  # (B, K) each
        tokens = np.concatenate([tokens[np.arange(tokens.shape[0])[:, None], origin], y_k[:, :, None]], axis=2)  # (B, K, t+1)
        ended = (y_k == EOS_ID) & np.isfinite(scores)  # (B, K)
        _set_aside(finished, ids, tokens, scores, ended, _length_penalty(t + 1, alpha))
        scores = np.where(ended, NEG_INF, scores)
        n_finished += ended.sum(1)
        done = (n_finished >= K) | ~np.isfinite(scores).any(1)  # (B,)
        if early_stop:  # candidates come best first from _select_topk
            done |= ended[:, 0] & (n_finished >= nbest)
        keep = np.flatnonzero(~done)  # (B',)
        if keep.size == 0:
            break
        state = model.reorder_state(state, _rows(keep, origin[keep], K))
        if keep.size < done.size:
            memory = model.select_memory(memory, _rows(keep, np.broadcast_to(np.arange(K), (keep.size, K)), K))
            ids, max_len, scores, n_finished, tokens = ids[keep], max_len[keep], scores[keep], n_finished[keep], tokens[keep]
        y = y_k[keep].reshape(-1)
    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]


def _max_lengths(src_len: np.ndarray, ratio: float, offset: int) -> np.ndarray:
    """src_len (B,), EOS included → the most tokens each output may have before its EOS (B,)."""
    return np.ceil(ratio * (src_len.astype(np.float64) - 1)).astype(np.int64) + offset


def _constrain(logits: np.ndarray, K: int, at_max: np.ndarray) -> np.ndarray:
    """The one place where per-step constraints change the scores: logits (B*K, V), written in place.

    PAD and BOS are never output; sentences at their maximum length, at_max (B,), may only end.
    A new per-step constraint (a minimum length, banned tokens, …) belongs here, and in
    seq2seq.search._forbid, its torch twin.
    """
    logits[:, PAD_ID] = NEG_INF
    logits[:, BOS_ID] = NEG_INF
    if at_max.any():
        rows = np.repeat(at_max, K)  # (B*K,)
        eos = logits[rows, EOS_ID].copy()
        logits[rows] = NEG_INF
        logits[rows, EOS_ID] = eos
    return logits


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """(N, V) float32 → (N, 1) float32."""
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, np.float32(0))
    return m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True, dtype=np.float32))


def _topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of each row of x (N, M), largest first, ties to the lower index → values, indices (N, k).

    Fancy indexing rather than np.take_along_axis, whose Python-level set-up cost more than the
    decoder step itself at batch 1.
    """
    rows = np.arange(x.shape[0])[:, None]  # (N, 1)
    if k == 1:
        idx = x.argmax(axis=1)[:, None]
    elif k < x.shape[1] and x.shape[1] > 64:  # partition the vocabulary, then sort only the k
        part = np.argpartition(-x, k - 1, axis=1)[:, :k]
        part.sort(axis=1)  # index order first, so the stable sort below breaks ties by index
        idx = part[rows, np.argsort(-x[rows, part], axis=1, kind="stable")]
    else:
        idx = np.argsort(-x, axis=1, kind="stable")[:, :k]
    return x[rows, idx], idx


def _select_topk(scores: np.ndarray, logits: np.ndarray, at_max: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beam step, as seq2seq.search._select_topk: the K best tokens per beam, then the K best of those K·K.

    scores (B, K), logits (B*K, V) float32, at_max (B,) → origin beam, token, summed log-prob: (B, K) each.
    """
    B, K = scores.shape
    log_norm = _logsumexp(logits)  # (B*K, 1) before any -inf
    values, tokens = _topk(_constrain(logits, K, at_max), K)  # (B*K, K)
    candidates = scores.reshape(B * K, 1) + (values - log_norm)  # (B*K, K)
    top, flat = _topk(candidates.reshape(B, K * K), K)  # (B, K)
    return flat // K, tokens.reshape(B, K * K)[np.arange(B)[:, None], flat], top


def _select_sample(
    scores: np.ndarray, logits: np.ndarray, at_max: np.ndarray, ids: np.ndarray, *, temperature: float, top_k: int, rngs: list[np.random.Generator]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampling step, as seq2seq.search._select_sample: each hypothesis draws from its sentence's generator."""
    B, K = scores.shape
    V = logits.shape[-1]
    logp = (logits - _logsumexp(logits)).astype(np.float32)
    logp = _constrain(logp, K, at_max).reshape(B, K, V)
    tempered = logp / np.float32(temperature)
    if 0 < top_k < V:
        kth = -np.partition(-tempered, top_k - 1, axis=-1)[..., top_k - 1 : top_k]  # (B, K, 1)
        tempered = np.where(tempered < kth, NEG_INF, tempered)
    probs = np.exp(tempered - tempered.max(-1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), axis=-1)  # (B, K, V)
    y = np.empty((B, K), dtype=np.int64)
    for b, i in enumerate(ids.tolist()):
        draws = rngs[i].random(K)  # (K,)
        y[b] = [min(int(np.searchsorted(cdf[b, k], draws[k], side="right")), V - 1) for k in range(K)]
    new_scores = scores + np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0]  # dead rows stay -inf
    return np.broadcast_to(np.arange(K), (B, K)), y, new_scores


def _set_aside(finished: list[list[Hypothesis]], ids: np.ndarray, tokens: np.ndarray, scores: np.ndarray, ended: np.ndarray, penalty: float) -> None:
    """Move the hypotheses that just chose EOS, ended (B, K), into `finished[sentence]`; tokens (B, K, t)."""
    b, k = np.nonzero(ended)  # (F,) each
    if b.size == 0:
        return
    log_probs = scores[b, k]  # (F,) float32
    penalised = log_probs / np.float32(penalty)
    for sentence, toks, score, log_prob in zip(ids[b].tolist(), tokens[b, k, :-1].tolist(), penalised.tolist(), log_probs.tolist()):
        finished[sentence].append(Hypothesis(toks, score, log_prob))


def _rows(sentences: np.ndarray, beams: np.ndarray, K: int) -> np.ndarray:
    """Active sentences (B',) and a beam index for each of their K slots (B', K) → decoder rows (B'*K,)."""
    return (sentences[:, None] * K + beams).reshape(-1)


def _length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha, length counting EOS; 1 when alpha is 0."""
    return math.pow((5 + length) / 6, alpha)
