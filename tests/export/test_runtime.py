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
