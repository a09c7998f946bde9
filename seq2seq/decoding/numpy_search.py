"""Greedy search, batched beam search and sampling in numpy, over an exported model's graphs.

Why a second copy of seq2seq/decoding/torch_search.py rather than one backend-agnostic search: the torch
search runs on CUDA and keeps every array on the device (topk, gather, masked_fill on tensors);
a search written against an array abstraction would need a shim over torch and numpy that the
torch path pays for on every step (dispatch, conversions) and that hides what each step does.
The torch search must not get slower, so it stays as it is, and this module is a line-by-line
port of it: the same driver (`_search`), the same named steps (`_select_topk`, `_select_sample`,
`_set_aside`, `_rows`, `_length_penalty`), the same float32 arithmetic in the same order (the
log-sum-exp and, on most beam steps, the top k come from the step graph: below), and the same
length sorting in `decode_sources`. tests/export/test_export.py holds the
translations byte-identical to the torch search's (and n-best tokens and scores alike), with the
decoding controls and prefixes on too.

What is not copied exactly: sampling draws from numpy's generator (PCG64 seeded with
options.seed, one per sentence), not torch's, so seeded samples are reproducible and follow the
same distribution but are not the torch path's samples.

Which tokens may come next is decided in one place, seq2seq.decoding.numpy_constraints.constrain (the
numpy twin of seq2seq.decoding.torch_constraints.constrain: length limits, decoding controls, forced
prefixes), which both selection steps call. A decoding option is a SearchOptions field and a rule of
the two `constrain` twins (or of the selection steps here and in torch); tests/export/test_export.py
holds every field either to torch's translations or to a stated reason why not, so a new option
cannot be left out of this search unnoticed.

What the step graph computes for the search: the logits' log-sum-exp, and the top k of the logits
with PAD and BOS left out. A beam step on which `constrain` would do no more than that
(`only_pad_and_bos`: no control on, no sentence at its maximum length, no prefix) takes the graph's
top k and never brings the (N, V) logits into numpy; every other step constrains the logits and
takes `_topk` here, which breaks ties as onnxruntime's TopK does (lower index first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from seq2seq.decoding.hypotheses import Hypothesis, check_batch_size, check_prefixes, in_length_batches
from seq2seq.decoding.numpy_constraints import NEG_INF, Prefix, constrain, only_pad_and_bos, sentence_limits
from seq2seq.decoding.protocol import Step
from seq2seq.options import BATCH_SIZE, SearchOptions
from seq2seq.tokenizer import BOS_ID, EOS_ID, pad_with_eos

if TYPE_CHECKING:
    from seq2seq.export.runtime import ExportedModel, Memory, State

# (scores (B, K), the model's step for the B*K rows, forbid: `constrain` bound to this step, ids (B,))
# → origin beam, token, new score: (B, K) each; as the torch search's Select.
Forbid = Callable[[np.ndarray], np.ndarray]
Select = Callable[[np.ndarray, Step, Forbid, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def decode_sources(
    model: ExportedModel, sources: list[np.ndarray], options: SearchOptions, batch_size: int = BATCH_SIZE, *, prefixes: Sequence[Prefix] | None = None
) -> list[list[Hypothesis]]:
    """Search for each source (token ids without EOS) in batches of similar length; results in input
    order (seq2seq.decoding.hypotheses.in_length_batches), as seq2seq.decoding.torch_search.decode_sources does.

    Several batches are searched model.workers at once, each on one thread (model.one_thread): the
    sessions run without the GIL, and a sentence's result does not depend on its batch or its thread.
    """
    check_batch_size(batch_size)
    workers = min(model.workers, -(-len(sources) // batch_size))
    searcher = model.one_thread if workers > 1 and model.one_thread is not None else model

    def search_batch(batch: list[np.ndarray], batch_prefixes: list[Prefix | None] | None) -> list[list[Hypothesis]]:
        src, src_len = pad_with_eos(batch)
        return search(searcher, src, src_len, options, prefixes=batch_prefixes)

    return in_length_batches(sources, batch_size, prefixes, search_batch, workers=workers)


def search(
    model: ExportedModel, src: np.ndarray, src_len: np.ndarray, options: SearchOptions, *, prefixes: Sequence[Prefix] | None = None
) -> list[list[Hypothesis]]:
    """Beam search or sampling, as options.mode says: src (B, S), src_len (B,) → B n-best lists,
    best first. prefixes: None, or B prefixes (target ids) each output starts with, as in torch."""
    check_prefixes(prefixes, src.shape[0])
    if options.mode == "beam":
        return _search(model, src, src_len, options, _select_topk, K=options.beam_size, one_start=True, early_stop=options.early_stop, prefixes=prefixes)
    elif options.mode == "sample":
        rngs = [np.random.default_rng(options.seed) for _ in range(src.shape[0])]
        select = partial(_select_sample, temperature=options.temperature, top_k=options.top_k, top_p=options.top_p, rngs=rngs)
        return _search(model, src, src_len, options, select, K=options.nbest, one_start=False, early_stop=False, prefixes=prefixes)
    raise ValueError(f"mode must be one of beam, sample; got {options.mode!r}")


def greedy_search(
    model: ExportedModel, src: np.ndarray, src_len: np.ndarray, options: SearchOptions | None = None, *, prefixes: Sequence[Prefix] | None = None
) -> list[list[Hypothesis]]:
    """Beam search with one beam, as seq2seq.decoding.torch_search.greedy_search."""
    return search(model, src, src_len, replace(options or SearchOptions(), mode="beam", beam_size=1, nbest=1), prefixes=prefixes)


def _search(
    model: ExportedModel,
    src: np.ndarray,
    src_len: np.ndarray,
    options: SearchOptions,
    select: Select,
    *,
    K: int,
    one_start: bool,
    early_stop: bool,
    prefixes: Sequence[Prefix] | None,
) -> list[list[Hypothesis]]:
    """The driver, as seq2seq.decoding.torch_search._search: rows of the decoder batch are sentence-major (b*K + k)."""
    B = src.shape[0]
    if B == 0:
        return []
    nbest, alpha = options.nbest, options.length_penalty
    limits = sentence_limits(src_len, options, prefixes)
    ids = np.arange(B)  # (B,) each active sentence's row in src
    # A beam's first step is alike for a sentence's K rows (BOS, one state): run once per sentence.
    first_alone = one_start and K > 1 and only_pad_and_bos(0, limits, options)
    memory, state, scores = _start(model, src, src_len, K, one_start, prefixes or (), spread=not first_alone)
    tokens = np.zeros((B, K, 0), dtype=np.int64)  # (B, K, t)
    n_finished = np.zeros(B, dtype=np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    y = np.full(B * K, BOS_ID, dtype=np.int64)  # (B*K,)
    for t in range(int(limits.max_len.max()) + 1):
        # A beam step on which constrain forbids only PAD and BOS takes the step graph's own top K.
        top_only = one_start and only_pad_and_bos(t, limits, options)
        if t == 0 and first_alone:
            step = _first_step_alone(model, state, memory, B, K)
        else:
            step = model.step_top(y, state, memory, K) if top_only else model.step(y, state, memory)  # logits (B*K, V) or top K
        forbid = partial(constrain, t=t, history=tokens, limits=limits, options=options)
        origin, y_k, scores = select(scores, step, forbid, ids)  # (B, K) each
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
        state = model.reorder_state(step.state, _rows(keep, origin[keep], K))
        if keep.size < done.size:
            memory = model.select_memory(memory, keep)
            ids, limits, scores, n_finished, tokens = ids[keep], limits.keep(keep), scores[keep], n_finished[keep], tokens[keep]
        y = y_k[keep].reshape(-1)
    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]


def _start(
    model: ExportedModel, src: np.ndarray, src_len: np.ndarray, K: int, one_start: bool, prefixes: Sequence[Prefix], *, spread: bool
) -> tuple[Memory, State, np.ndarray]:
    """As seq2seq.decoding.torch_search._start: the memory of the B sentences, the initial state of
    B*K rows (of B rows unless `spread`), and the scores (B, K) float32. prefixes: () or B (a
    shortlist holds each one's ids)."""
    B = src.shape[0]
    memory, state = model.start(src, src_len, prefixes)
    if spread:
        state = model.reorder_state(state, np.repeat(np.arange(B), K))  # (B*K,) rows
    scores = np.zeros((B, K), dtype=np.float32)
    if one_start:
        scores[:, 1:] = NEG_INF
    return memory, state, scores


def _first_step_alone(model: ExportedModel, state: State, memory: Memory, B: int, K: int) -> Step:
    """The first beam step for one row per sentence (a state of B rows), then spread to the B*K rows
    the search follows, as if each row had been computed: the step's top K, log_norm and next state."""
    step = model.step_top(np.full(B, BOS_ID, dtype=np.int64), state, memory, K)
    rows = np.repeat(np.arange(B), K)  # (B*K,)
    values, ids = step.top
    return Step(None, model.reorder_state(step.state, rows), log_norm=step.log_norm[rows], top=(values[rows], ids[rows]))


def _topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of each row of x (N, M), largest first, ties to the lower index → values, indices (N, k).

    Fancy indexing rather than np.take_along_axis, whose Python-level set-up cost more than the
    decoder step itself at batch 1.
    """
    rows = np.arange(x.shape[0])[:, None]  # (N, 1)
    if k == 1:
        idx = x.argmax(axis=1)[:, None]
    elif 2 * k * _CHUNK <= x.shape[1]:
        return _topk_by_chunks(x, k)
    elif k < x.shape[1] and x.shape[1] > 64:  # partition the row, then sort only the k
        kth = -np.partition(-x, k - 1, axis=1)[:, k - 1 : k]  # (N, 1) the k-th largest value
        above, ties = x > kth, x == kth
        # Every value above the k-th, then the lowest-indexed of those equal to it (argpartition would
        # pick any of them): k columns per row, in index order, so the stable sort keeps ties by index.
        chosen = above | (ties & (np.cumsum(ties, axis=1) <= k - above.sum(axis=1, keepdims=True)))
        part = np.nonzero(chosen)[1].reshape(-1, k)  # (N, k)
        idx = part[rows, np.argsort(-x[rows, part], axis=1, kind="stable")]
    else:
        idx = np.argsort(-x, axis=1, kind="stable")[:, :k]
    return x[rows, idx], idx


# Columns per chunk in _topk_by_chunks.
_CHUNK = 128


def _topk_by_chunks(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """_topk of wide rows (a vocabulary): the k largest lie in the k chunks of _CHUNK columns with the
    largest maxima (ties to the lower chunk), so only those k·_CHUNK columns are partitioned.

    Why that holds, ties included: each chunk holding one of the k largest has a maximum at least the
    k-th largest value e, and a chunk whose maximum exceeds e holds one of the fewer than k values above
    e; among chunks whose maximum equals e, the lower ones hold the lower-indexed ties. np.argpartition
    over the whole row cost half the time of a beam search step at batch 64.
    """
    N, M = x.shape
    n_chunks = -(-M // _CHUNK)
    if n_chunks * _CHUNK != M:  # pad the last chunk with -inf: after every real column, never chosen over one
        x = np.concatenate([x, np.full((N, n_chunks * _CHUNK - M), NEG_INF, dtype=x.dtype)], axis=1)
    chunks = x.reshape(N, n_chunks, _CHUNK)  # (N, n_chunks, C)
    _, best = _topk(chunks.max(axis=2), k)  # (N, k) the chunks with the largest maxima
    best.sort(axis=1)  # in column order, so that ties still go to the lower index below
    rows = np.arange(N)[:, None]
    values, pos = _topk(chunks[rows, best].reshape(N, k * _CHUNK), k)  # (N, k) each
    return values, best[rows, pos // _CHUNK] * _CHUNK + pos % _CHUNK


def _select_topk(scores: np.ndarray, step: Step, forbid: Forbid, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beam step, as seq2seq.decoding.torch_search._select_topk: the K best tokens per beam, then the K best of those K·K.

    scores (B, K), step: logits (B*K, V) or the graph's top K, log_norm (B*K, 1) before any -inf;
    forbid: `constrain` for this step → origin beam, token, summed log-prob: (B, K) each.
    """
    B, K = scores.shape
    values, tokens = step.top if step.top is not None else _topk(forbid(step.logits), K)  # (B*K, K) each
    candidates = scores.reshape(B * K, 1) + (values - step.log_norm)  # (B*K, K)
    top, flat = _topk(candidates.reshape(B, K * K), K)  # (B, K)
    return flat // K, tokens.reshape(B, K * K)[np.arange(B)[:, None], flat], top


def _select_sample(
    scores: np.ndarray,
    step: Step,
    forbid: Forbid,
    ids: np.ndarray,
    *,
    temperature: float,
    top_k: int,
    top_p: float,
    rngs: list[np.random.Generator],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampling step, as seq2seq.decoding.torch_search._select_sample: each hypothesis draws from its sentence's generator."""
    B, K = scores.shape
    V = step.logits.shape[-1]
    logp = step.logits - step.log_norm  # (B*K, V)
    logp = forbid(logp).reshape(B, K, V)
    tempered = logp / np.float32(temperature)
    if 0 < top_k < V:
        kth = -np.partition(-tempered, top_k - 1, axis=-1)[..., top_k - 1 : top_k]  # (B, K, 1)
        tempered = np.where(tempered < kth, NEG_INF, tempered)
    if top_p < 1:
        tempered = nucleus(tempered, top_p)
    probs = np.exp(tempered - tempered.max(-1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), axis=-1)  # (B, K, V)
    drawn = np.empty((B, K), dtype=np.int64)
    for b, i in enumerate(ids.tolist()):
        draws = rngs[i].random(K)  # (K,)
        drawn[b] = [min(int(np.searchsorted(cdf[b, k], draws[k], side="right")), V - 1) for k in range(K)]
    new_scores = scores + np.take_along_axis(logp, drawn[:, :, None], axis=2)[:, :, 0]  # dead rows stay -inf
    return np.broadcast_to(np.arange(K), (B, K)), drawn, new_scores


def nucleus(x: np.ndarray, top_p: float) -> np.ndarray:
    """Top-p, as seq2seq.decoding.torch_search.nucleus: x (..., V) log-weights → x with -inf outside the fewest
    most likely tokens whose probabilities sum to at least top_p; ties: the lower id first."""
    probs = np.exp(x - x.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    order = np.argsort(-probs, axis=-1, kind="stable")  # (..., V)
    ranked = np.take_along_axis(probs, order, axis=-1)
    before = np.cumsum(ranked, axis=-1) - ranked  # (..., V) the mass of the more likely tokens
    outside = np.empty_like(before, dtype=bool)
    np.put_along_axis(outside, order, before >= top_p, axis=-1)
    return np.where(outside, NEG_INF, x)


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
