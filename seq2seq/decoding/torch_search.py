"""Greedy search, batched beam search and sampling; many sources decoded in length-sorted batches.

One driver, `_search`, keeps K hypotheses for each of B sentences and advances all B×K of them
with one decoder step per time step. Beam search and sampling differ only in how the next K
hypotheses are chosen (`_select_topk`, `_select_sample`); both first pass the step's scores
through `constrain`, the one function that says which tokens may come next (length limits,
decoding controls, forced prefixes). Hypotheses that choose EOS are set aside; sentences that are
done leave the batch, so a long sentence does not keep its finished neighbours computing (on the
CPU in steps of the shape ladder, `_kept_rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import torch

from seq2seq.data.batching import ladder_size, pad_sources
from seq2seq.decoding.hypotheses import Hypothesis, check_prefixes, in_length_batches
from seq2seq.decoding.protocol import Step
from seq2seq.decoding.torch_constraints import NEG_INF, Prefix, constrain, sentence_limits
from seq2seq.model import DecoderState, Ensemble, Memory, Seq2Seq
from seq2seq.options import BATCH_SIZE, MODES, SearchOptions
from seq2seq.tokenizer import BOS_ID, EOS_ID

# (scores (B, K), the model's step for the B*K rows, forbid: `constrain` bound to this step, ids (B,) the sentences'
# rows in the input) → origin beam, token, new score: (B, K) each. The numpy twin's Select has the same signature.
Forbid = Callable[[torch.Tensor], torch.Tensor]
Select = Callable[[torch.Tensor, Step, Forbid, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def decode_sources(
    model: Seq2Seq | Ensemble,
    sources: list[np.ndarray],
    device: torch.device,
    options: SearchOptions,
    batch_size: int = BATCH_SIZE,
    *,
    prefixes: Sequence[Prefix] | None = None,
) -> list[list[Hypothesis]]:
    """Search for each source (token ids without EOS) in batches of similar length; results in input
    order (seq2seq.decoding.hypotheses.in_length_batches). prefixes: None, or one `Prefix` per source."""

    def search_batch(batch: list[np.ndarray], batch_prefixes: list[Prefix | None] | None) -> list[list[Hypothesis]]:
        # On the CPU, to the shape ladder: oneDNN then compiles the encoder for few shapes (seq2seq.devices.size_onednn_cache).
        src, src_len = pad_sources(batch, ladder_size(max(len(s) for s in batch) + 1) if device.type == "cpu" else 0)
        return search(model, src.to(device), src_len.to(device), options, prefixes=batch_prefixes)

    return in_length_batches(sources, batch_size, prefixes, search_batch)


def search(
    model: Seq2Seq | Ensemble,
    src: torch.Tensor,
    src_len: torch.Tensor,
    options: SearchOptions,
    *,
    return_attention: bool = False,
    prefixes: Sequence[Prefix] | None = None,
) -> list[list[Hypothesis]]:
    """Beam search or sampling, as options.mode says: src (B, S) ending in EOS and PAD-padded,
    src_len (B,) → B n-best lists, best first. prefixes: None, or B `Prefix`es: each output
    starts with its sentence's prefix, which counts in its tokens and score."""
    if options.mode == "beam":
        return beam_search(model, src, src_len, options, return_attention=return_attention, prefixes=prefixes)
    elif options.mode == "sample":
        if return_attention:
            raise ValueError("return_attention is for beam search; sampling does not keep attention weights")
        return sample(model, src, src_len, options, prefixes=prefixes)
    raise ValueError(f"mode must be one of {', '.join(MODES)}; got {options.mode!r}")


@torch.inference_mode()
def beam_search(
    model: Seq2Seq | Ensemble,
    src: torch.Tensor,
    src_len: torch.Tensor,
    options: SearchOptions,
    *,
    return_attention: bool = False,
    prefixes: Sequence[Prefix] | None = None,
) -> list[list[Hypothesis]]:
    """Beam search with options.beam_size hypotheses per sentence; shapes as `search`.

    A sentence is done when K of its hypotheses have ended or, with options.early_stop (as in
    OpenNMT-py), as soon as its best candidate ends and options.nbest have ended: the rest of the
    beam is then unlikely to win and costs steps. See `SearchOptions` for the length limit and penalty.
    """
    _check_inputs(model, src, src_len, return_attention, prefixes)
    return _search(
        model,
        src,
        src_len,
        options,
        _select_topk,
        K=options.beam_size,
        one_start=True,
        early_stop=options.early_stop,
        return_attention=return_attention,
        prefixes=prefixes,
    )


def greedy_search(
    model: Seq2Seq | Ensemble,
    src: torch.Tensor,
    src_len: torch.Tensor,
    options: SearchOptions | None = None,
    *,
    return_attention: bool = False,
    prefixes: Sequence[Prefix] | None = None,
) -> list[list[Hypothesis]]:
    """Greedy search: beam search with one beam, so the two agree exactly; options' length limits and controls apply."""
    one_beam = replace(options or SearchOptions(), mode="beam", beam_size=1, nbest=1)
    return beam_search(model, src, src_len, one_beam, return_attention=return_attention, prefixes=prefixes)


@torch.inference_mode()
def sample(
    model: Seq2Seq | Ensemble, src: torch.Tensor, src_len: torch.Tensor, options: SearchOptions, *, prefixes: Sequence[Prefix] | None = None
) -> list[list[Hypothesis]]:
    """Ancestral sampling: options.nbest independent samples per sentence, sorted by score; shapes as `search`.

    Tokens are drawn from softmax(logits / temperature) over the tokens `constrain` allows, cut
    to the `top_k` most likely when top_k > 0, then to the nucleus of probability `top_p` when
    top_p < 1; `log_prob` and `score` are the model's own (temperature 1, no cut), so samples
    rank as beam search would rank them. Each sentence draws from a generator of its own seeded
    with options.seed, so its samples depend on the sentence and the options alone, never on
    the batch it came in.
    """
    _check_inputs(model, src, src_len, False, prefixes)
    generators = [torch.Generator(device=src.device).manual_seed(options.seed) for _ in range(src.size(0))]
    select = partial(_select_sample, temperature=options.temperature, top_k=options.top_k, top_p=options.top_p, generators=generators)
    return _search(model, src, src_len, options, select, K=options.nbest, one_start=False, early_stop=False, return_attention=False, prefixes=prefixes)


def _check_inputs(model: Seq2Seq | Ensemble, src: torch.Tensor, src_len: torch.Tensor, return_attention: bool, prefixes: Sequence[Prefix] | None) -> None:
    """Checks of what the options do not cover; each error names the argument and what is valid."""
    if src.dim() != 2 or src_len.shape != src.shape[:1]:
        raise ValueError(f"src must be (B, S) and src_len (B,); got {tuple(src.shape)} and {tuple(src_len.shape)}")
    if return_attention and not model.has_attention:
        raise ValueError("return_attention needs a model with attention; this one (or one in the ensemble) has attention 'none'")
    check_prefixes(prefixes, src.size(0))


def _search(
    model: Seq2Seq | Ensemble,
    src: torch.Tensor,
    src_len: torch.Tensor,
    options: SearchOptions,
    select: Select,
    *,
    K: int,
    one_start: bool,
    early_stop: bool,
    return_attention: bool,
    prefixes: Sequence[Prefix] | None,
) -> list[list[Hypothesis]]:
    """The driver: src (B, S), src_len (B,) → B lists of the options.nbest finished hypotheses, best first.

    K hypotheses per sentence, chosen by `select`; `one_start`: all K grow from one live
    hypothesis (beam search) rather than K independent ones (sampling). Rows of the decoder batch
    are sentence-major: row b*K + k is hypothesis k of active sentence b.
    """
    B, S = src.shape
    if B == 0:
        return []
    nbest, alpha = options.nbest, options.length_penalty
    lengths = src_len.tolist()
    limits = sentence_limits(src_len, options, prefixes)
    ids = torch.arange(B, device=src.device)  # (B,) each active sentence's row in src
    memory, state, scores = _start(model, src, src_len, K, one_start)
    tokens = torch.zeros(B, K, 0, dtype=torch.long, device=src.device)  # (B, K, t)
    attn = torch.zeros(B, K, 0, S, device=src.device) if return_attention else None  # (B, K, t, S)
    n_finished = torch.zeros(B, dtype=torch.long, device=src.device)  # (B,)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    y = torch.full((B * K,), BOS_ID, dtype=torch.long, device=src.device)  # (B*K,)
    for t in range(int(limits.max_len.max()) + 1):
        step = model.step(y, state, memory)  # logits (B*K, V)
        forbid = partial(constrain, t=t, history=tokens, limits=limits, options=options)
        origin, y_k, scores = select(scores, step, forbid, ids)  # (B, K) each
        tokens, attn = _extend(tokens, attn, origin, y_k, step.weights)
        ended = (y_k == EOS_ID) & torch.isfinite(scores)  # (B, K)
        _set_aside(finished, ids, tokens, attn, scores, ended, lengths, _length_penalty(t + 1, alpha))
        scores = scores.masked_fill(ended, NEG_INF)
        n_finished += ended.sum(1)
        done = (n_finished >= K) | ~torch.isfinite(scores).any(1)  # (B,)
        if early_stop:  # candidates come best first from _select_topk
            done |= ended[:, 0] & (n_finished >= nbest)
        if bool(done.all()):
            break
        scores = scores.masked_fill(done.unsqueeze(1), NEG_INF)  # a done sentence kept as a spare row adds nothing
        keep = _kept_rows(done, ladder=src.device.type == "cpu")  # (B',)
        state = model.reorder_state(step.state, _rows(keep, origin[keep], K))
        if keep.numel() < done.numel():
            memory = model.select_memory(memory, _rows(keep, torch.arange(K, device=keep.device).expand(keep.numel(), K), K))
            ids, limits, scores, n_finished, tokens = ids[keep], limits.keep(keep), scores[keep], n_finished[keep], tokens[keep]
            attn = None if attn is None else attn[keep]
        y = y_k[keep].flatten()
    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]


def _kept_rows(done: torch.Tensor, *, ladder: bool) -> torch.Tensor:
    """The sentences that stay in the batch, done (B,) → (B',) their rows, in order: those not done,
    and with `ladder` (the CPU) as many done ones as bring B' up to the shape ladder
    (seq2seq.data.batching), so that oneDNN meets few batch sizes as sentences finish (issue 34:
    each new size compiled new primitives at every validation). A kept done sentence has no live
    hypothesis left, so it sets nothing aside; rows do not mix, so its neighbours' results are
    unchanged."""
    live = ~done
    if ladder:
        n_live = int(live.sum())
        live |= done & (done.cumsum(0) <= ladder_size(n_live) - n_live)
    return live.nonzero().squeeze(1)


def _start(
    model: Seq2Seq | Ensemble, src: torch.Tensor, src_len: torch.Tensor, K: int, one_start: bool
) -> tuple[Memory | tuple[Memory, ...], DecoderState | tuple[DecoderState, ...], torch.Tensor]:
    """Encode the batch once and give each of its B sentences K decoder rows (sentence-major): the
    memory and initial state of B*K rows, and the scores (B, K), summed log-probs, -inf for no live
    hypothesis. Beam search starts from one live hypothesis, so the K it grows are distinct; samples
    are independent from the start.

    Each row gets its own copy of its sentence's memory, though the decoder can read one copy for a
    sentence's K rows (seq2seq.model.decoder): torch's batched product of K queries per sentence
    gives other last bits with other batch sizes (not so with one query per row), and a sentence's
    translation must not depend on its batch. The exported runtime reads one copy (numpy_search)."""
    B = src.size(0)
    memory, state = model.start(src, src_len)
    rows = torch.arange(B, device=src.device).repeat_interleave(K)  # (B*K,)
    memory, state = model.select_memory(memory, rows), model.reorder_state(state, rows)
    score_dtype = torch.promote_types(next(model.parameters()).dtype, torch.float32)  # float32 unless the model is float64
    scores = torch.zeros(B, K, dtype=score_dtype, device=src.device)
    if one_start:
        scores[:, 1:] = NEG_INF
    return memory, state, scores


def _select_topk(scores: torch.Tensor, step: Step, forbid: Forbid, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Beam step: the K best continuations of each sentence over all its beams (ids: unused, see `Select`).

    scores (B, K), step.logits (B*K, V), forbid: `constrain` for this step → origin beam, token, summed
    log-prob: (B, K) each. Each of a sentence's K best continuations is among the K best of its
    own beam, so the search takes the K best allowed tokens per beam from the raw logits, then the
    K best of those K·K: no (B, K, V) log-probabilities are written. A token's log-probability is
    the model's (not renormalised over the allowed tokens, so scores stay what teacher forcing
    computes). Dead beams (-inf) offer only -inf, so their slots are refilled from live ones. All
    candidates have the same length, so the length penalty cannot change their order and is left
    to `_set_aside`.
    """
    B, K = scores.shape
    logits = step.logits
    log_norm = torch.logsumexp(logits.float(), dim=-1, keepdim=True)  # (B*K, 1) before any -inf
    # The step's logits are fresh and read only here, so forbid may write into them.
    values, tokens = forbid(logits).topk(K, dim=-1)  # (B*K, K)
    candidates = scores.reshape(B * K, 1) + (values.to(scores.dtype) - log_norm)  # (B*K, K)
    top, flat = candidates.view(B, K * K).topk(K, dim=1)  # (B, K)
    return flat // K, tokens.view(B, K * K).gather(1, flat), top


def _select_sample(
    scores: torch.Tensor,
    step: Step,
    forbid: Forbid,
    ids: torch.Tensor,
    *,
    temperature: float,
    top_k: int,
    top_p: float,
    generators: list[torch.Generator],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sampling step: each hypothesis draws its own next token among the allowed ones, from its
    sentence's generator (generators[ids[b]] for sentence b); shapes as `_select_topk`, origin = k.
    Scores are the model's log-probabilities (float32, or float64 for a float64 model)."""
    B, K = scores.shape
    logits = step.logits
    V = logits.size(-1)
    logp = forbid(torch.log_softmax(logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))).view(B, K, V)
    tempered = logp / temperature  # (B, K, V)
    if 0 < top_k < V:
        kth = tempered.topk(top_k, dim=-1).values[..., -1:]  # (B, K, 1)
        tempered = tempered.masked_fill(tempered < kth, NEG_INF)
    if top_p < 1:
        tempered = nucleus(tempered, top_p)
    probs = tempered.softmax(-1)  # (B, K, V)
    y = torch.stack([torch.multinomial(probs[b], 1, generator=generators[i]).squeeze(1) for b, i in enumerate(ids.tolist())])  # (B, K)
    new_scores = scores + logp.gather(2, y.unsqueeze(2)).squeeze(2)  # dead rows stay -inf
    return torch.arange(K, device=y.device).expand(B, K), y, new_scores


def nucleus(x: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p: x (..., V) log-weights → x with -inf outside the nucleus, the fewest most likely
    tokens whose probabilities (softmax of x) sum to at least top_p; the most likely token is
    always in it, and of tokens of equal probability the lower id comes first."""
    probs = x.softmax(-1)
    ranked, order = probs.sort(dim=-1, descending=True, stable=True)  # (..., V) each
    before = ranked.cumsum(-1) - ranked  # (..., V) the mass of the more likely tokens
    outside = torch.zeros_like(before, dtype=torch.bool).scatter_(-1, order, before >= top_p)
    return x.masked_fill(outside, NEG_INF)


def _extend(
    tokens: torch.Tensor, attn: torch.Tensor | None, origin: torch.Tensor, y_k: torch.Tensor, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Follow each new hypothesis back to its origin beam and append its token and attention row.

    tokens (B, K, t), attn (B, K, t, S) or None, origin and y_k (B, K), weights (B*K, S)
    → tokens (B, K, t+1), attn (B, K, t+1, S).
    """
    B, K, t = tokens.shape
    tokens = torch.cat([tokens.gather(1, origin.unsqueeze(2).expand(B, K, t)), y_k.unsqueeze(2)], dim=2)
    if attn is not None:
        history = attn.gather(1, origin[:, :, None, None].expand(attn.shape))
        step = weights.float().view(B, K, -1).gather(1, origin.unsqueeze(2).expand(B, K, attn.size(3)))  # (B, K, S)
        attn = torch.cat([history, step.unsqueeze(2)], dim=2)
    return tokens, attn


def _set_aside(
    finished: list[list[Hypothesis]],
    ids: torch.Tensor,
    tokens: torch.Tensor,
    attn: torch.Tensor | None,
    scores: torch.Tensor,
    ended: torch.Tensor,
    src_lengths: list[int],
    penalty: float,
) -> None:
    """Move the hypotheses that just chose EOS, ended (B, K), into `finished[sentence]`.

    ids (B,) sentence rows in the input, tokens (B, K, t) ending in the new token, attn
    (B, K, t, S) or None, scores (B, K) summed log-probs, penalty: the length penalty for length t.
    """
    b, k = ended.nonzero(as_tuple=True)  # (F,) each
    if b.numel() == 0:
        return
    log_probs = scores[b, k]  # (F,)
    rows = zip(ids[b].tolist(), tokens[b, k, :-1].tolist(), (log_probs / penalty).tolist(), log_probs.tolist())
    for i, (sentence, toks, score, log_prob) in enumerate(rows):
        weights = None if attn is None else attn[b[i], k[i], :, : src_lengths[sentence]].clone()
        finished[sentence].append(Hypothesis(toks, score, log_prob, weights))


def _rows(sentences: torch.Tensor, beams: torch.Tensor, K: int) -> torch.Tensor:
    """Active sentences (B',) and a beam index for each of their K slots (B', K) → decoder rows (B'*K,)."""
    return (sentences.unsqueeze(1) * K + beams).flatten()


def _length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha, length counting EOS; 1 when alpha is 0."""
    return ((5 + length) / 6) ** alpha
