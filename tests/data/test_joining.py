"""Joined training pairs (seq2seq/data/joining.py): each extra pair is two pairs of the corpus run
together on both sides, the full stop between them dropped from both sides or neither, the same for
the same seed and epoch, within the length limit."""

import numpy as np

from seq2seq.data.joining import add_joined_pairs

STOP = 4


def _corpus(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    # Distinct first tokens (100 + i, 1000 + i) name each pair, so a joined pair shows its two parts.
    src = [np.array([100 + i, *rng.integers(10, 90, size=rng.integers(1, 8)), STOP]) for i in range(n)]
    tgt = [np.array([1000 + i, *rng.integers(10, 90, size=rng.integers(1, 8)), STOP]) for i in range(n)]
    return src, tgt


def _parts(ids: np.ndarray, base: int) -> list[int]:
    return [int(i) - base for i in ids if base <= i < base + 900]


def test_each_joined_pair_is_two_pairs_with_the_stop_dropped_from_both_sides_or_neither():
    src, tgt = _corpus(200)
    out_src, out_tgt = add_joined_pairs(src, tgt, share=0.5, stop_src=STOP, stop_tgt=STOP, max_len=100, seed=1, epoch=3)
    assert len(out_src) == len(out_tgt) == 300
    assert all(a is b for a, b in zip(out_src, src)) and all(a is b for a, b in zip(out_tgt, tgt))
    dropped = 0
    for s, t in zip(out_src[200:], out_tgt[200:]):
        i, j = _parts(s, 100)
        assert _parts(t, 1000) == [i, j]
        kept = np.array_equal(s, np.concatenate([src[i], src[j]])) and np.array_equal(t, np.concatenate([tgt[i], tgt[j]]))
        cut = np.array_equal(s, np.concatenate([src[i][:-1], src[j]])) and np.array_equal(t, np.concatenate([tgt[i][:-1], tgt[j]]))
        assert kept != cut
        dropped += cut
    assert 30 <= dropped <= 70


def test_the_same_seed_and_epoch_join_the_same_pairs_and_another_epoch_others():
    src, tgt = _corpus(100)

    def joined(epoch: int) -> list[list[int]]:
        out, _ = add_joined_pairs(src, tgt, share=0.2, stop_src=STOP, stop_tgt=STOP, max_len=100, seed=1, epoch=epoch)
        return [a.tolist() for a in out[100:]]

    assert joined(1) == joined(1)
    assert joined(1) != joined(2)


def test_no_stop_piece_keeps_every_stop_and_long_joins_are_left_out():
    src, tgt = _corpus(100)
    out_src, _ = add_joined_pairs(src, tgt, share=1.0, stop_src=None, stop_tgt=STOP, max_len=100, seed=2, epoch=1)
    assert len(out_src) == 200
    assert all(int(s[-1]) == STOP and list(s).count(STOP) == 2 for s in out_src[100:])
    short, _ = add_joined_pairs(src, tgt, share=1.0, stop_src=STOP, stop_tgt=STOP, max_len=12, seed=2, epoch=1)
    assert 100 < len(short) < 200
    assert all(len(s) <= 12 for s in short[100:])


def test_share_zero_returns_the_corpus_itself():
    src, tgt = _corpus(10)
    assert add_joined_pairs(src, tgt, share=0.0, stop_src=STOP, stop_tgt=STOP, max_len=100, seed=1, epoch=1) == (src, tgt)
