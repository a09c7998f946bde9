"""seq2seq.export.runtime's pure parts: how a batch is split into encoder calls."""

from __future__ import annotations

import itertools

import numpy as np

from seq2seq.export.runtime import length_groups


def split_cost(lengths: np.ndarray, groups: list[np.ndarray], call_cost: int) -> int:
    return sum(len(g) * int(lengths[g].max()) + call_cost for g in groups)


def test_length_groups_find_the_cheapest_split_into_calls():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(2, 40, rng.integers(1, 9))
        call_cost = int(rng.integers(0, 30))
        groups = length_groups(lengths, call_cost)
        assert sorted(np.concatenate(groups).tolist()) == list(range(lengths.size))  # every sentence once
        assert all((np.diff(g) > 0).all() for g in groups)
        # Against every split of the sorted lengths into contiguous runs (the best split is one of them).
        ordered = np.sort(lengths)
        best = min(
            sum((b - a) * int(ordered[b - 1]) + call_cost for a, b in itertools.pairwise((0, *cuts, lengths.size)))
            for n in range(lengths.size)
            for cuts in itertools.combinations(range(1, lengths.size), n)
        )
        assert split_cost(lengths, groups, call_cost) == best


def test_similar_lengths_stay_one_call():
    assert [g.tolist() for g in length_groups(np.array([7, 8, 7, 9]), 19)] == [[0, 1, 2, 3]]
    assert [g.tolist() for g in length_groups(np.array([30, 5, 6, 31]), 19)] == [[1, 2], [0, 3]]


def test_a_raw_top_loses_pad_and_bos_and_keeps_its_order():
    """Format 5's step graph gives the top k + P of the raw logits; the runtime drops the columns of PAD
    and BOS and keeps the first k of the rest: the top k with those two forbidden, ties in column order."""
    from seq2seq.export.runtime import _without

    rng = np.random.default_rng(3)
    for _ in range(100):
        logits = rng.integers(-3, 4, (6, 12)).astype(np.float32)  # many ties
        never, k = np.array([0, 2]), 4
        order = np.argsort(-logits, axis=1, kind="stable")  # largest first, ties to the lower column (onnxruntime's TopK)
        raw = order[:, : k + never.size]
        rows = np.arange(6)[:, None]
        values, columns = _without(logits[rows, raw], raw, never, k)
        forbidden = logits.copy()
        forbidden[:, never] = -np.inf
        expected = np.argsort(-forbidden, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(columns, expected)
        np.testing.assert_array_equal(values, forbidden[rows, expected])


def test_a_cpu_saturates_int8_products_when_it_is_x86_without_vnni():
    from seq2seq.export.runtime import saturating_cpu

    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert saturating_cpu("x86_64", avx2)
    assert not saturating_cpu("x86_64", avx2.replace("avx2", "avx2 avx512f avx512_vnni"))
    assert not saturating_cpu("x86_64", avx2.replace("avx2", "avx2 avx_vnni"))
    assert not saturating_cpu("aarch64", "processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert not saturating_cpu("x86_64", "")  # nothing known: no warning
