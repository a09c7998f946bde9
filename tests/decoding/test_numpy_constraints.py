"""seq2seq/decoding/numpy_constraints.py and the exported search's top-p: the numpy twins give exactly what
seq2seq.decoding.torch_constraints.constrain and seq2seq.decoding.torch_search.nucleus give, on random scores, histories, limits
and prefixes with every control on and off."""

import numpy as np
import pytest
import torch

from seq2seq.decoding import numpy_constraints as constraints
from seq2seq.decoding import torch_constraints
from seq2seq.decoding.numpy_search import nucleus
from seq2seq.decoding.torch_search import nucleus as torch_nucleus
from seq2seq.options import SearchOptions
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

V = 12


def case(seed: int):
    """Random step-t scores (B*K, V) with some -inf, histories (B, K, t) over a small alphabet (so
    n-grams repeat), source lengths and prefixes (some None, some longer than t)."""
    rng = np.random.default_rng(seed)
    B, K, t = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(0, 7))
    x = rng.normal(size=(B * K, V)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = -np.inf
    history = rng.integers(3, 7, size=(B, K, t))
    src_len = rng.integers(1, 8, size=B)
    prefixes = [None if rng.random() < 0.4 else list(rng.integers(3, V, size=int(rng.integers(0, 9)))) for _ in range(B)]
    return x, t, history, src_len, prefixes


OPTIONS = [
    SearchOptions(),
    SearchOptions(min_len_ratio=1.0, ban_unk=True),
    SearchOptions(no_repeat_ngram=1),
    SearchOptions(no_repeat_ngram=2, min_len_ratio=2.0, max_len_ratio=0.5, max_len_offset=1),
    SearchOptions(no_repeat_ngram=3, ban_unk=True, max_len_ratio=0.0, max_len_offset=3),
    SearchOptions(repetition_penalty=1.3),
    SearchOptions(repetition_penalty=0.7, no_repeat_ngram=2, min_len_ratio=1.0, ban_unk=True),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("with_prefixes", [False, True])
def test_numpy_constrain_matches_torch(options, with_prefixes):
    differing_rules = 0
    for seed in range(60):
        x, t, history, src_len, prefixes = case(seed)
        prefixes = prefixes if with_prefixes else None
        limits = constraints.sentence_limits(src_len, options, prefixes)
        torch_limits = torch_constraints.sentence_limits(torch.from_numpy(src_len), options, prefixes)
        assert limits.max_len.tolist() == torch_limits.max_len.tolist()
        assert (limits.min_len is None) == (torch_limits.min_len is None)
        got = constraints.constrain(x.copy(), t, history, limits, options)
        want = torch_constraints.constrain(torch.from_numpy(x.copy()), t, torch.from_numpy(history), torch_limits, options).numpy()
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
        differing_rules += not np.array_equal(np.isfinite(got), np.isfinite(x))
    assert differing_rules > 30  # the rules did cut tokens


def test_only_pad_and_bos_is_said_only_of_steps_where_constrain_forbids_nothing_else():
    """The search takes the step graph's own top k (PAD and BOS left out) where only_pad_and_bos says so."""
    said = []
    for options in OPTIONS:
        for seed in range(60):
            x, t, history, src_len, prefixes = case(seed)
            for given in (None, prefixes):
                limits = constraints.sentence_limits(src_len, options, given)
                rule_1 = x.copy()
                rule_1[:, [PAD_ID, BOS_ID]] = -np.inf
                plain = constraints.only_pad_and_bos(t, limits, options)
                if plain:
                    np.testing.assert_array_equal(constraints.constrain(x.copy(), t, history, limits, options), rule_1)
                said.append(plain)
    assert 50 < sum(said) < len(said) - 50  # both answers were given, many times


def test_numpy_constrain_keeps_every_row_able_to_go_on():
    options = SearchOptions(no_repeat_ngram=1, ban_unk=True, min_len_ratio=3.0)
    x = np.full((2, V), -np.inf, dtype=np.float32)
    x[:, UNK_ID] = 0.5
    x[:, EOS_ID] = -1.0  # too short to end, and its only other token is <unk>: stuck, so it may end
    out = constraints.constrain(x, 1, np.full((1, 2, 1), 5), constraints.sentence_limits(np.array([4]), options, None), options)
    assert out[:, EOS_ID].tolist() == [-1.0, -1.0] and np.isfinite(out).sum() == 2


def test_numpy_nucleus_matches_torch():
    rng = np.random.default_rng(0)
    for top_p in (0.1, 0.5, 0.9, 0.999):
        x = rng.normal(size=(3, 4, V)).astype(np.float32) * 2
        x[0, 0, :3] = x[0, 0, 3]  # ties: the lower id first
        x[1, 1, 5] = -np.inf
        got = nucleus(x.copy(), top_p)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(torch_nucleus(torch.from_numpy(x), top_p).numpy()))
        np.testing.assert_array_equal(got[np.isfinite(got)], x[np.isfinite(got)])


@pytest.mark.parametrize("kind", ["normal", "ties", "mostly -inf", "two finite"])
def test_topk_takes_the_largest_and_breaks_ties_by_the_lower_index(kind):
    """The runtime's top-k, on rows narrow and as wide as a vocabulary (where it partitions only the
    chunks that can hold the answer), equals a stable descending sort, exact ties and -inf included."""
    from seq2seq.decoding.numpy_search import _topk

    rng = np.random.default_rng(7)
    for _ in range(150):
        N, M = int(rng.integers(1, 5)), int(rng.integers(1, 9000))
        k = min(int(rng.integers(1, 12)), M)
        if kind == "normal":
            x = rng.normal(size=(N, M)).astype(np.float32)
        elif kind == "ties":
            x = rng.integers(0, 4, size=(N, M)).astype(np.float32)
        elif kind == "mostly -inf":
            x = np.where(rng.random((N, M)) < 0.95, -np.inf, rng.normal(size=(N, M))).astype(np.float32)
        else:
            x = np.full((N, M), -np.inf, dtype=np.float32)
            x[:, rng.integers(0, M, size=2)] = 1.0
        values, idx = _topk(x, k)
        expected = np.argsort(-x, axis=1, kind="stable")[:, :k]
        assert np.array_equal(idx, expected), (N, M, k)
        assert np.array_equal(values, np.take_along_axis(x, expected, axis=1))
