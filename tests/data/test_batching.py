"""Batches (seq2seq/data/batching.py): token-bucketed batches that cover every pair once, grouped by
length in a shuffled order, streamed batches, collation with BOS, EOS and padding, and the shape
ladder that padding follows on the CPU."""

import numpy as np
import pytest
import torch

from seq2seq.data.batching import collate, collate_pairs, ladder_size, make_batches, stream_batches
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
    batch = collate(split, np.array([0, 1]), ladder=False)
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


def test_ladder_sizes_are_few_and_close_above():
    sizes = [ladder_size(n) for n in range(1, 513)]
    assert sizes[:8] == list(range(1, 9)), "exact up to 8"
    assert all(s >= n for n, s in enumerate(sizes, 1)) and all(ladder_size(s) == s for s in sizes), "a size on the ladder is its own size"
    assert all(s <= 1.25 * n for n, s in enumerate(sizes, 1)), "at most 25% above"
    assert np.mean([s / n for n, s in enumerate(sizes, 1)]) < 1.09  # 8.3% over 1..512
    assert sorted(set(sizes)) == [*range(1, 9), 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512]


def test_ladder_pads_rows_and_lengths_with_masked_padding():
    srcs = [np.array([5, 6, 7, 8, 9, 10, 11, 12, 13]), np.array([7])] + [np.array([4])] * 7  # 9 sentences, S = 10 with EOS
    tgts = [np.array([8])] * 8 + [np.array(range(4, 15))]  # T = 12 with EOS
    batch = collate_pairs(srcs, tgts, ladder=True)
    exact = collate_pairs(srcs, tgts, ladder=False)
    assert batch.src.shape == (10, 10) and batch.tgt_in.shape == (10, 12) and exact.src.shape == (9, 10) and exact.tgt_in.shape == (9, 12)
    assert batch.src[-1].tolist() == [EOS_ID] + [PAD_ID] * 9 and batch.src_len[-1] == 1, "an extra row is an EOS-only source"
    assert (batch.tgt_out[-1] == PAD_ID).all() and (batch.tgt_in[-1] == PAD_ID).all(), "and a target with no token to learn"
    assert batch.num_tokens == exact.num_tokens == 8 * 2 + 12
    wide = collate_pairs([np.array([5] * 10)], [np.array([6] * 16)], ladder=True)
    assert wide.src.shape == (1, 12) and wide.tgt_out.shape == (1, 20)


@pytest.mark.parametrize("attention, input_feeding", [("luong", False), ("bahdanau", True)])
def test_ladder_padding_changes_neither_loss_nor_gradients(attention, input_feeding):
    from seq2seq.training.loss import token_loss

    from conftest import tiny

    rng = np.random.default_rng(0)
    srcs = [rng.integers(4, 40, size=n) for n in (9, 3, 5, 1, 6)]
    tgts = [rng.integers(4, 40, size=n) for n in (4, 10, 2, 6, 8)]

    def loss_and_grads(ladder):
        model = tiny(attention=attention, input_feeding=input_feeding)
        batch = collate_pairs(srcs, tgts, ladder=ladder)
        loss = token_loss(model, model(batch.src, batch.src_len, batch.tgt_in), batch.tgt_out, 0.1)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    (loss, grads), (padded_loss, padded_grads) = loss_and_grads(False), loss_and_grads(True)
    assert padded_loss == pytest.approx(loss, rel=1e-6)
    for g, p in zip(grads, padded_grads):
        torch.testing.assert_close(p, g, rtol=1e-5, atol=1e-6)
