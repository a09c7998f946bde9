"""Batches (seq2seq/data/batching.py): token-bucketed batches that cover every pair once, grouped by
length in a shuffled order, streamed batches, collation with BOS, EOS and padding."""

import numpy as np

from seq2seq.data.batching import collate, make_batches, stream_batches
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


def test_batches_cover_every_pair_once_within_budget():
    rng = np.random.default_rng(0)
    tgt_lens = rng.integers(1, 30, size=500)
    src_lens = rng.integers(1, 30, size=500)
    batches = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=1)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for b in batches:
        assert len(b) == 1 or (tgt_lens[b] + 1).sum() <= 300
    again = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=2)
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in zip(batches, other))


def test_batches_group_similar_lengths_in_a_shuffled_order():
    rng = np.random.default_rng(0)
    tgt_lens = rng.integers(1, 50, size=2000)
    src_lens = np.clip(tgt_lens + rng.integers(-3, 4, size=2000), 1, None)  # lengths of a translation pair correlate
    batches = make_batches(src_lens, tgt_lens, 600, seed=1, epoch=1)
    assert max(tgt_lens[b].max() - tgt_lens[b].min() for b in batches) <= 4

    def padding(lens, groups):
        return sum((lens[b].max() - lens[b]).sum() for b in groups) / lens.sum()

    # The same batch sizes drawn at random: what padding would be without the grouping.
    shuffled = np.split(rng.permutation(2000), np.cumsum([len(b) for b in batches])[:-1])
    assert padding(tgt_lens, batches) < 0.05 and padding(tgt_lens, shuffled) > 0.5
    assert padding(src_lens, batches) < 0.15 and padding(src_lens, shuffled) > 0.5
    mean_lens = [tgt_lens[b].mean() for b in batches]
    assert mean_lens != sorted(mean_lens) and mean_lens != sorted(mean_lens, reverse=True)  # updates do not follow the length order


def test_collate_adds_bos_eos_and_padding():
    from seq2seq.data.batching import EncodedSplit

    split = EncodedSplit([np.array([5, 6]), np.array([7])], [np.array([8]), np.array([9, 10, 11])], np.arange(2), 0)
    batch = collate(split, np.array([0, 1]))
    assert batch.src.tolist() == [[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]]
    assert batch.src_len.tolist() == [3, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, PAD_ID, PAD_ID], [BOS_ID, 9, 10, 11]]
    assert batch.tgt_out.tolist() == [[8, EOS_ID, PAD_ID, PAD_ID], [9, 10, 11, EOS_ID]]
    assert batch.num_tokens == 6


def test_stream_batches_cover_every_kept_pair_once():
    pairs = [{"src": "a " * n, "tgt": "b " * (n % 7 + 1)} for n in range(1, 60)]
    words = lambda texts: [[5] * len(t.split()) for t in texts]  # noqa: E731
    batches = list(stream_batches(iter(pairs), words, words, 50, 16, 40, seed=1, epoch=1))
    sizes = sorted(len(s) for src, _ in batches for s in src)
    assert sizes == list(range(1, 51)), "pairs longer than max_len are dropped, the others come once"
    assert list(map(len, batches[0][0])) == list(map(len, next(iter(stream_batches(iter(pairs), words, words, 50, 16, 40, seed=1, epoch=1)))[0]))
