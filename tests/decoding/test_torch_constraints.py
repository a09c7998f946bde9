"""The decoding controls (seq2seq/decoding/torch_constraints.py and their use in seq2seq/decoding/torch_search.py): each does what
it says, scores stay the model's, greedy = beam 1 = a plain step-by-step reference with the same
rules, and the output does not depend on the batch.

The models are test_search's tiny models overfit to reverse a few sequences (V = 24; ids 4..23
are words), so that unconstrained outputs are known: the reversed source.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from test_torch_search import TRAIN_SEQS, V, random_sentences, teacher_forced_log_prob, trained_model

from seq2seq.data.batching import pad_sources
from seq2seq.decoding.torch_constraints import Limits, constrain, sentence_limits
from seq2seq.decoding.torch_search import beam_search, decode_sources, greedy_search, nucleus, sample, search
from seq2seq.options import SearchOptions
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEG = float("-inf")


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def has_repeat(tokens: list[int], n: int) -> bool:
    grams = ngrams(tokens, n)
    return len(grams) != len(set(grams))


def all_hyps(results):
    return [h for hyps in results for h in hyps]


# --- constrain on hand-made scores ----------------------------------------------------------


def test_constrain_rules_and_their_order() -> None:
    """One sentence, K=2 hypotheses of 3 tokens, V=8: each rule, and which wins."""
    history = torch.tensor([[[5, 6, 5], [4, 4, 4]]])  # (B=1, K=2, t=3)
    x = torch.zeros(2, 8)
    limits = Limits(max_len=torch.tensor([10]), min_len=torch.tensor([5]))
    out = constrain(x.clone(), 3, history, limits, SearchOptions(ban_unk=True, no_repeat_ngram=2, min_len_ratio=1.0))
    # PAD, BOS, UNK never; EOS not before the minimum length; (5, 6) was seen, so after "... 5" 6 is banned;
    # after "4 4" the only seen 2-gram starting with 4 is (4, 4): 4 is banned.
    assert torch.isinf(out[0]).nonzero().flatten().tolist() == [PAD_ID, UNK_ID, BOS_ID, EOS_ID, 6]
    assert torch.isinf(out[1]).nonzero().flatten().tolist() == [PAD_ID, UNK_ID, BOS_ID, EOS_ID, 4]
    # Off, the controls cost nothing and change nothing: only PAD and BOS go.
    plain = constrain(x.clone(), 3, history, limits, SearchOptions())
    assert torch.isinf(plain).nonzero()[:, 1].tolist() == [PAD_ID, BOS_ID, PAD_ID, BOS_ID]
    # At the maximum length only EOS, whatever the minimum says (it never exceeds the maximum in a search).
    at_max = constrain(x.clone(), 3, history, Limits(max_len=torch.tensor([3])), SearchOptions(ban_unk=True))
    assert (torch.isfinite(at_max).nonzero()[:, 1] == EOS_ID).all() and torch.isfinite(at_max).sum() == 2


def test_a_forced_prefix_token_wins_with_its_own_score() -> None:
    history = torch.zeros(1, 2, 1, dtype=torch.long)
    x = torch.arange(16, dtype=torch.float).view(2, 8)
    limits = Limits(max_len=torch.tensor([1]), prefix=torch.tensor([[7, UNK_ID]]), prefix_len=torch.tensor([2]))
    out = constrain(x.clone(), 1, history, limits, SearchOptions(ban_unk=True))  # at t=1 the prefix says UNK, and t is the maximum
    assert torch.isfinite(out).nonzero().tolist() == [[0, UNK_ID], [1, UNK_ID]]
    assert out[:, UNK_ID].tolist() == [x[0, UNK_ID].item(), x[1, UNK_ID].item()]


def test_a_hypothesis_with_nothing_left_may_end() -> None:
    """no_repeat_ngram=1 after every word has been used, before the minimum length: EOS comes back."""
    history = torch.arange(4, 8).view(1, 1, 4)  # V=8: 4..7 all used
    x = torch.randn(1, 8)
    out = constrain(
        x.clone(), 4, history, Limits(max_len=torch.tensor([20]), min_len=torch.tensor([10])), SearchOptions(no_repeat_ngram=1, ban_unk=True, min_len_ratio=1.0)
    )
    assert torch.isfinite(out).nonzero().tolist() == [[0, EOS_ID]] and out[0, EOS_ID] == x[0, EOS_ID]


def test_repetition_penalty_scales_the_scores_of_held_tokens_only() -> None:
    """P = 2: a held token's positive score halves, a negative one doubles; tokens not held, and
    EOS, keep theirs; a token held twice is penalised once; P = 1 changes nothing."""
    history = torch.tensor([[[5, 6, 5], [4, 7, 7]]])  # (B=1, K=2, t=3)
    x = torch.tensor([[0.0, 1.0, 0.0, 2.0, 3.0, 4.0, -1.0, 0.5], [0.0, 1.0, 0.0, 2.0, -3.0, 4.0, 1.0, -0.5]])
    limits = Limits(max_len=torch.tensor([10]))
    out = constrain(x.clone(), 3, history, limits, SearchOptions(repetition_penalty=2.0))
    expected = x.clone()
    expected[:, [PAD_ID, BOS_ID]] = NEG
    expected[0, 5], expected[0, 6] = 2.0, -2.0  # row 0 holds 5 (twice) and 6
    expected[1, 4], expected[1, 7] = -6.0, -1.0  # row 1 holds 4 and 7 (twice)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    plain = constrain(x.clone(), 3, history, limits, SearchOptions(repetition_penalty=1.0))
    assert torch.equal(torch.isinf(plain), torch.isinf(out)) and torch.equal(plain[:, 3:], x[:, 3:])
    # Below 1 it rewards repeats; at t = 0 nothing is held.
    assert constrain(x.clone(), 3, history, limits, SearchOptions(repetition_penalty=0.5))[0, 5] == 8.0
    first = constrain(x.clone(), 0, history[:, :, :0], limits, SearchOptions(repetition_penalty=2.0))
    assert torch.equal(first[:, 3:], x[:, 3:])


def test_sentence_limits() -> None:
    src_len = torch.tensor([5, 2, 11])  # EOS included: 4, 1 and 10 tokens
    limits = sentence_limits(src_len, SearchOptions(max_len_ratio=1.0, max_len_offset=2, min_len_ratio=1.5), [None, [4, 5, 6, 7, 8], []])
    assert limits.max_len.tolist() == [6, 5, 12]  # the 5-token prefix raises the second one's from 3
    assert limits.min_len.tolist() == [6, 2, 12]  # ceil(1.5 * S), at most the maximum
    assert limits.prefix_len.tolist() == [0, 5, 0] and limits.prefix.shape == (3, 5)
    assert sentence_limits(src_len, SearchOptions(), [None, None, None]).prefix is None


def test_nucleus_keeps_the_fewest_most_likely_tokens_reaching_p() -> None:
    logp = torch.tensor([0.1, 0.5, 0.05, 0.3, 0.05]).log()
    kept = lambda p: torch.isfinite(nucleus(logp, p)).nonzero().flatten().tolist()  # noqa: E731
    assert kept(0.5) == [1]
    assert kept(0.51) == [1, 3]
    assert kept(0.79) == [1, 3]
    assert kept(0.85) == [0, 1, 3]
    assert kept(1e-6) == [1]
    assert kept(0.999) == [0, 1, 2, 3, 4]


# --- the controls in a search -------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram(n: int) -> None:
    model = trained_model()
    sentences = random_sentences(12, seed=11, max_len=14)
    src, src_len = pad_sources(sentences)
    plain = all_hyps(beam_search(model, src, src_len, SearchOptions(beam_size=4, nbest=4)))
    assert any(has_repeat(h.tokens, n) for h in plain)  # the unconstrained outputs repeat n-grams, so the test can fail
    for mode in ("beam", "sample"):
        options = SearchOptions(mode=mode, beam_size=4, nbest=4, no_repeat_ngram=n, seed=3)
        for sent, hyps in zip(sentences, search(model, src, src_len, options)):
            assert len(hyps) == 4
            for h in hyps[:1]:
                assert not has_repeat(h.tokens, n)
                assert h.log_prob == pytest.approx(teacher_forced_log_prob(model, sent, h.tokens), abs=1e-4)  # the model's score, not renormalised
            assert not any(has_repeat(h.tokens, n) for h in hyps[1:])


def test_repetition_penalty_in_a_search() -> None:
    """A strong penalty leaves fewer repeated tokens than none, in beam search and sampling, and the
    scores it reports are the penalised ones (below the model's own log-probability where it acted)."""
    model = trained_model()
    sentences = random_sentences(12, seed=11, max_len=14)
    src, src_len = pad_sources(sentences)

    def repeats(results) -> int:
        return sum(len(h.tokens) - len(set(h.tokens)) for h in all_hyps(results))

    for mode in ("beam", "sample"):
        plain = search(model, src, src_len, SearchOptions(mode=mode, beam_size=4, nbest=2, seed=3))
        assert repeats(plain) > 0  # the unpenalised outputs repeat tokens, so the test can fail
        assert search(model, src, src_len, SearchOptions(mode=mode, beam_size=4, nbest=2, seed=3, repetition_penalty=1.0)) == plain
        penalised = search(model, src, src_len, SearchOptions(mode=mode, beam_size=4, nbest=2, seed=3, repetition_penalty=5.0))
        assert repeats(penalised) < repeats(plain)
    best = [hyps[0] for hyps in beam_search(model, src, src_len, SearchOptions(beam_size=4, repetition_penalty=5.0, length_penalty=0))]
    for sent, h in zip(sentences, best):
        if len(set(h.tokens)) < len(h.tokens):
            assert h.log_prob < teacher_forced_log_prob(model, sent, h.tokens)


def unk_loving(model):
    """The model with <unk> made likely: a bias of +4 on its logit."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.decoder.generator.bias[UNK_ID] += 4.0
    return model


def test_ban_unk() -> None:
    model = unk_loving(trained_model())
    src, src_len = pad_sources(random_sentences(16, seed=12, max_len=10))
    for mode in ("beam", "sample"):
        plain = all_hyps(search(model, src, src_len, SearchOptions(mode=mode, beam_size=3, nbest=3)))
        assert any(UNK_ID in h.tokens for h in plain)
        banned = all_hyps(search(model, src, src_len, SearchOptions(mode=mode, beam_size=3, nbest=3, ban_unk=True)))
        assert not any(UNK_ID in h.tokens for h in banned)


def test_min_len_ratio() -> None:
    model = trained_model()
    sentences = TRAIN_SEQS + random_sentences(8, seed=13, max_len=10)
    src, src_len = pad_sources(sentences)
    plain = beam_search(model, src, src_len, SearchOptions(beam_size=3))
    assert [h[0].tokens for h in plain[:3]] == [list(s[::-1]) for s in TRAIN_SEQS[:3]]  # S tokens out for S in
    for mode in ("beam", "sample"):
        results = search(model, src, src_len, SearchOptions(mode=mode, beam_size=3, nbest=3, min_len_ratio=1.5))
        for sent, hyps in zip(sentences, results):
            assert len(hyps) == 3
            for h in hyps:
                assert math.ceil(1.5 * len(sent)) <= len(h.tokens) <= math.ceil(2 * len(sent)) + 10
                assert h.log_prob == pytest.approx(teacher_forced_log_prob(model, sent, h.tokens), abs=1e-4)


def test_forced_prefix() -> None:
    model = trained_model()
    sentences = TRAIN_SEQS[:4]
    src, src_len = pad_sources(sentences)
    natural = [list(s[::-1]) for s in sentences]
    # sentence 0: its own first two tokens (nothing changes); 1: other words; 2: none; 3: longer than its maximum length
    prefixes = [natural[0][:2], [7, 7, 9], None, list(range(4, 24))]
    options = SearchOptions(beam_size=3, nbest=3, max_len_ratio=1.0, max_len_offset=2)
    plain = beam_search(model, src, src_len, options)
    forced = beam_search(model, src, src_len, options, prefixes=prefixes)
    assert forced[0][0].tokens == natural[0]
    assert [h.tokens for h in forced[2]] == [h.tokens for h in plain[2]]  # no prefix: as without prefixes
    for sent, prefix, hyps in zip(sentences, prefixes, forced):
        for h in hyps:
            assert h.tokens[: len(prefix or [])] == (prefix or [])
            assert h.log_prob == pytest.approx(teacher_forced_log_prob(model, sent, h.tokens), rel=1e-6, abs=1e-4)  # the prefix is in the score
    assert any(len(h.tokens) > 3 for h in forced[1]) and len({tuple(h.tokens) for h in forced[1]}) == 3  # search went on after the prefix
    assert [h.tokens for h in forced[3]] == [prefixes[3]]  # the prefix, then EOS: one hypothesis
    drawn = sample(model, src, src_len, SearchOptions(mode="sample", nbest=3, seed=1), prefixes=prefixes)
    assert all(h.tokens[:3] == [7, 7, 9] for h in drawn[1])


def test_forced_prefix_checks() -> None:
    model = trained_model()
    src, src_len = pad_sources(TRAIN_SEQS[:2])
    with pytest.raises(ValueError, match="prefixes has 1 entries for a batch of 2"):
        beam_search(model, src, src_len, SearchOptions(), prefixes=[[5]])
    with pytest.raises(ValueError, match=r"prefixes\[1\] holds PAD, BOS or EOS"):
        beam_search(model, src, src_len, SearchOptions(), prefixes=[[5], [6, EOS_ID]])


def test_top_p_samples_only_from_the_nucleus() -> None:
    """Every sampled token lies in the nucleus of the model's distribution at its step (PAD and BOS
    removed, temperature 1), recomputed here by teacher forcing; a tiny top_p is greedy search."""
    model = trained_model()
    sentences = random_sentences(10, seed=14, max_len=12)
    src, src_len = pad_sources(sentences)
    top_p = 0.6
    results = sample(model, src, src_len, SearchOptions(mode="sample", nbest=6, top_p=top_p, seed=5))
    outside_plain = 0
    plain = sample(model, src, src_len, SearchOptions(mode="sample", nbest=6, seed=5))
    for sent, hyps, plain_hyps in zip(sentences, results, plain):
        for h in hyps:
            assert all(in_nucleus(model, sent, h.tokens, top_p)[: 2 * len(sent) + 10])  # at the maximum length EOS is forced, nucleus or not
        outside_plain += sum(not ok for h in plain_hyps for ok in in_nucleus(model, sent, h.tokens, top_p))
    assert outside_plain > 0  # without top_p, samples do leave the nucleus: the test can fail
    greedy = greedy_search(model, src, src_len)
    tiny = sample(model, src, src_len, SearchOptions(mode="sample", nbest=2, top_p=1e-6))
    assert all(h.tokens == g[0].tokens for g, hyps in zip(greedy, tiny) for h in hyps)


def in_nucleus(model, src_ids: np.ndarray, tokens: list[int], top_p: float) -> list[bool]:
    """For each token of tokens + EOS: is it among the fewest most likely tokens reaching top_p?"""
    src, src_len = pad_sources([src_ids])
    tgt_in = torch.tensor([[BOS_ID, *tokens]])
    with torch.no_grad():
        logits = model.decoder.logits(model(src, src_len, tgt_in)).float()[0]  # (T, V)
    logits[:, [PAD_ID, BOS_ID]] = NEG
    probs = logits.softmax(-1)
    out = []
    for t, token in enumerate([*tokens, EOS_ID]):
        more_likely = probs[t][probs[t] > probs[t, token]].sum().item()
        out.append(more_likely < top_p + 1e-5)
    return out


# --- greedy = beam 1 = reference, and batch independence, with every control on -------------


CONTROLS = SearchOptions(beam_size=1, no_repeat_ngram=2, ban_unk=True, min_len_ratio=1.2, max_len_ratio=1.5, max_len_offset=3)


def reference_greedy(model, src_ids: np.ndarray, options: SearchOptions, prefix: list[int]) -> list[int]:
    """Argmax decoding of one sentence, one step at a time, with the rules written out in plain Python."""
    S = len(src_ids)
    max_len = max(math.ceil(options.max_len_ratio * S) + options.max_len_offset, len(prefix))
    min_len = min(math.ceil(options.min_len_ratio * S), max_len)
    src, src_len = pad_sources([src_ids])
    tokens: list[int] = []
    with torch.inference_mode():
        memory = model.encode(src, src_len)
        state = model.init_state(memory)
        y = torch.tensor([BOS_ID])
        for t in range(max_len + 1):
            logits, state, _ = model.decoder.step(y, state, memory)
            scores = logits[0].float().tolist()
            if t < len(prefix):
                token = prefix[t]
            elif t == max_len:
                token = EOS_ID
            else:
                n = options.no_repeat_ngram
                seen = {g[-1] for g in ngrams(tokens, n) if list(g[:-1]) == tokens[len(tokens) - n + 1 :]} if n <= t else set()
                banned = {PAD_ID, BOS_ID, UNK_ID} | seen | ({EOS_ID} if t < min_len else set())
                allowed = [i for i in range(V) if i not in banned] or [EOS_ID]
                token = max(allowed, key=lambda i: scores[i])
            if token == EOS_ID:
                return tokens
            tokens.append(token)
            y = torch.tensor([token])
    raise AssertionError("no EOS at the maximum length")


@pytest.mark.parametrize("attention,input_feeding", [("bahdanau", True), ("none", False)])
def test_greedy_equals_beam_one_and_the_reference_with_controls(attention: str, input_feeding: bool) -> None:
    model = unk_loving(trained_model(attention, input_feeding))
    sentences = TRAIN_SEQS[:3] + random_sentences(9, seed=15, max_len=10)
    prefixes = [None, [9, 9], None, [5]] + [None] * 8
    src, src_len = pad_sources(sentences)
    greedy = greedy_search(model, src, src_len, CONTROLS, prefixes=prefixes)
    assert greedy == beam_search(model, src, src_len, CONTROLS, prefixes=prefixes)
    for sent, prefix, (g,) in zip(sentences, prefixes, greedy):
        assert g.tokens == reference_greedy(model, sent, CONTROLS, prefix or [])


def test_the_output_does_not_depend_on_the_batch_with_controls_on() -> None:
    model = unk_loving(trained_model())
    sentences = random_sentences(24, seed=16, max_len=12)
    rng = np.random.default_rng(0)
    prefixes = [None if i % 3 else list(rng.integers(4, V, size=int(rng.integers(1, 4)))) for i in range(len(sentences))]
    cpu = torch.device("cpu")
    for options in (
        SearchOptions(beam_size=4, nbest=2, no_repeat_ngram=2, ban_unk=True, min_len_ratio=1.0, repetition_penalty=1.5),
        SearchOptions(mode="sample", nbest=2, no_repeat_ngram=3, ban_unk=True, min_len_ratio=0.5, top_p=0.7, top_k=5, seed=2),
    ):
        with torch.inference_mode():
            runs = [decode_sources(model, sentences, cpu, options, batch_size, prefixes=prefixes) for batch_size in (1, 7, 64)]
        assert [[h.tokens for h in hyps] for hyps in runs[0]] == [[h.tokens for h in hyps] for hyps in runs[1]]
        assert [[h.tokens for h in hyps] for hyps in runs[0]] == [[h.tokens for h in hyps] for hyps in runs[2]]
        for prefix, hyps in zip(prefixes, runs[0]):
            assert all(h.tokens[: len(prefix or [])] == list(prefix or []) for h in hyps)
