"""The vocabulary shortlist: what it learns from pairs, and which ids a batch scores."""

import numpy as np
import pytest

from seq2seq.export import shortlist as shortlist_module
from seq2seq.export.shortlist import Shortlist, learn_shortlist
from seq2seq.tokenizer import EOS_ID, UNK_ID

# Source ids 10-12, target ids 20-25. Target 20 is in every pair (the frequent piece); source 10 is
# translated by 21 three times in four, source 11 by 22 (once beside 21), source 12 by 24 or 25.
SRC = [[10], [10, 11], [10], [11], [10, 12], [12], [12]]
TGT = [[20, 21], [20, 21, 22], [20, 23], [20, 22], [20, 21, 24], [20, 24], [20, 25]]


def test_the_frequent_pieces_and_each_sources_best_partners_by_dice():
    learned = learn_shortlist(SRC, TGT, src_vocab_size=16, tgt_vocab_size=32, frequent=1, per_source=2)
    assert learned.frequent.tolist() == sorted([EOS_ID, UNK_ID, 20])
    candidates = {s: learned.candidates[learned.offsets[s] : learned.offsets[s + 1]].tolist() for s in range(16)}
    # Dice of 10: 21 → 2·3/(4+3), 23 → 2·1/(4+1), 22 and 24 → 2·1/(4+2): the best two, 20 left out (always scored).
    assert candidates[10] == [21, 23]
    # 11: 22 → 2·2/(2+2) = 1, then 21 → 2·1/(2+3) and 23 → 0: two at most.
    assert candidates[11] == [22, 21]
    # 12: 24 → 2·2/(3+2), 25 → 2·1/(3+1), 21 → 2·1/(3+3).
    assert candidates[12] == [24, 25]
    assert all(candidates[s] == [] for s in range(16) if s not in (10, 11, 12))


def test_ties_go_to_the_lower_target_id_and_counting_in_chunks_changes_nothing(monkeypatch):
    src, tgt = [[5], [5]], [[9, 7], [8, 9, 7]]
    learned = learn_shortlist(src, tgt, src_vocab_size=8, tgt_vocab_size=12, frequent=0, per_source=3)
    assert learned.candidates[learned.offsets[5] : learned.offsets[6]].tolist() == [7, 9, 8]  # 7 and 9 tie at 1
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 40, rng.integers(1, 8)).tolist() for _ in range(300)]
    tgt = [rng.integers(4, 50, rng.integers(1, 8)).tolist() for _ in range(300)]
    whole = learn_shortlist(src, tgt, src_vocab_size=40, tgt_vocab_size=50, frequent=5, per_source=4)
    monkeypatch.setattr(shortlist_module, "_CHUNK_PAIRS", 7)
    chunked = learn_shortlist(src, tgt, src_vocab_size=40, tgt_vocab_size=50, frequent=5, per_source=4)
    for name in ("frequent", "offsets", "candidates"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name))


def test_a_batch_scores_the_frequent_ids_its_sources_candidates_and_the_extra_ones(tmp_path):
    rng = np.random.default_rng(1)
    src = [rng.integers(4, 30, rng.integers(1, 9)).tolist() for _ in range(200)]
    tgt = [rng.integers(4, 60, rng.integers(1, 9)).tolist() for _ in range(200)]
    learned = learn_shortlist(src, tgt, src_vocab_size=30, tgt_vocab_size=60, frequent=6, per_source=3)
    learned.save(tmp_path / "s.npz")
    loaded = Shortlist.load(tmp_path / "s.npz")
    assert loaded.per_source == 3
    batch = np.array([[4, 9, 9, 3], [17, 3, 0, 0], [29, 5, 3, 0]])  # ids, EOS (3), PAD (0)
    want = set(learned.frequent.tolist()) | {57, 58}
    for s in batch.ravel().tolist():
        want |= set(learned.candidates[learned.offsets[s] : learned.offsets[s + 1]].tolist())
    got = loaded.ids(batch, also=[57, 58])
    assert got.tolist() == sorted(want)
    assert loaded.ids(np.array([[4, 99]])).tolist() == loaded.ids(np.array([[4]])).tolist()  # an id the shortlist never saw adds nothing

    # masks: the same sets, each sentence its own, in one pass over the batch.
    batch = np.array([[4, 9, 9, 3], [17, 3, 0, 0], [29, 5, 99, 3]])
    also = [(57, 58), (), (4,)]
    masks = loaded.masks(batch, also, 60)
    assert masks.shape == (3, 60) and masks.dtype == bool
    for row, extra, mask in zip(batch, also, masks):
        assert np.flatnonzero(mask).tolist() == loaded.ids(row[None], also=extra).tolist()
    for row, mask in zip(batch, loaded.masks(batch, (), 60)):
        assert np.flatnonzero(mask).tolist() == loaded.ids(row[None]).tolist()


def test_pairs_must_be_pairs():
    with pytest.raises(ValueError, match="learned from pairs: got 2 source and 1 target"):
        learn_shortlist([[4], [5]], [[6]], src_vocab_size=8, tgt_vocab_size=8)
