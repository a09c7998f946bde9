"""Batches (seq2seq/data/batching.py): token-bucketed batches that cover every pair once, grouped by
length in a shuffled order, streamed batches, collation with BOS, EOS and padding, and the shape
ladder that the CPU's batches follow: numbers of sentences cut down to it, lengths padded up to it."""

import numpy as np
import pytest
import torch

from seq2seq.data.batching import collate, collate_pairs, ladder_size, ladder_size_at_most, make_batches, stream_batches
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


@pytest.mark.parametrize("ladder", [False, True])
def test_batches_cover_every_pair_once_within_budget(ladder):
    rng = np.random.default_rng(0)
    tgt_lens = rng.integers(1, 30, size=500)
    src_lens = rng.integers(1, 30, size=500)
    batches = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=1, ladder=ladder)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for b in batches:
        assert len(b) == 1 or (tgt_lens[b] + 1).sum() <= 300
    again = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=1, ladder=ladder)
    assert len(again) == len(batches) and all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=2, ladder=ladder)
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in zip(batches, other))


def test_batches_group_similar_lengths_in_a_shuffled_order():
    rng = np.random.default_rng(0)
    tgt_lens = rng.integers(1, 50, size=2000)
    src_lens = np.clip(tgt_lens + rng.integers(-3, 4, size=2000), 1, None)  # lengths of a translation pair correlate
    batches = make_batches(src_lens, tgt_lens, 600, seed=1, epoch=1, ladder=False)
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


@pytest.mark.parametrize("ladder", [False, True])
def test_stream_batches_cover_every_kept_pair_once(ladder):
    pairs = [{"src": "a " * n, "tgt": "b " * (n % 7 + 1)} for n in range(1, 60)]
    words = lambda texts: [[5] * len(t.split()) for t in texts]  # noqa: E731
    batches = list(stream_batches(iter(pairs), words, words, 50, 16, 40, seed=1, epoch=1, ladder=ladder))
    sizes = sorted(len(s) for src, _ in batches for s in src)
    assert sizes == list(range(1, 51)), "pairs longer than max_len are dropped, the others come once"
    again = next(iter(stream_batches(iter(pairs), words, words, 50, 16, 40, seed=1, epoch=1, ladder=ladder)))
    assert list(map(len, batches[0][0])) == list(map(len, again[0]))


def _make_batches_before_the_ladder(src_lens, tgt_lens, batch_tokens, seed, epoch, part=0):
    """make_batches as it was before the CPU's batches were cut to the ladder: GPU runs still get these."""
    rng = np.random.default_rng([seed, epoch, part])
    order = np.lexsort((rng.random(len(tgt_lens)), src_lens, tgt_lens))
    batches, start, tokens = [], 0, 0
    for pos, i in enumerate(order):
        tokens += int(tgt_lens[i]) + 1
        if tokens > batch_tokens and pos > start:
            batches.append(order[start:pos])
            start, tokens = pos, int(tgt_lens[i]) + 1
    batches.append(order[start:])
    rng.shuffle(batches)
    return batches


@pytest.mark.parametrize("batch_tokens", [20, 300, 4096])  # 20: some sentences alone are over the budget
def test_without_the_ladder_batches_are_those_of_before(batch_tokens):
    rng = np.random.default_rng(3)
    tgt_lens, src_lens = rng.integers(1, 40, size=1000), rng.integers(1, 40, size=1000)
    for seed, epoch, part in [(1, 1, 0), (7, 3, 2)]:
        now = make_batches(src_lens, tgt_lens, batch_tokens, seed, epoch, part, ladder=False)
        before = _make_batches_before_the_ladder(src_lens, tgt_lens, batch_tokens, seed, epoch, part)
        assert len(now) == len(before) and all(np.array_equal(a, b) for a, b in zip(now, before))


def _as_sets(batches):
    return sorted(sorted(b.tolist()) for b in batches)


def test_ladder_cuts_each_batch_to_the_largest_ladder_size_that_fits():
    # 12 pairs of 2 target tokens (EOS included), budget 22: 11 fit, 10 is the ladder size below.
    twelve = np.ones(12, dtype=np.int64)
    assert [len(b) for b in sorted(make_batches(twelve, twelve, 22, 0, 0, ladder=False), key=len)] == [1, 11]
    assert [len(b) for b in sorted(make_batches(twelve, twelve, 22, 0, 0, ladder=True), key=len)] == [2, 10], "the rest start the next batch"
    # 8 pairs of 2 tokens, one of 8 and one of 20, budget 25: the first nine fit (24 tokens). Cut to 8,
    # they leave the pair of 8 over, which with the longest (28 tokens) overruns again: each goes alone.
    tgt = np.array([1] * 8 + [7, 19])
    assert _as_sets(make_batches(np.ones(10, dtype=np.int64), tgt, 25, 0, 0, ladder=False)) == [list(range(9)), [9]]
    assert _as_sets(make_batches(np.ones(10, dtype=np.int64), tgt, 25, 0, 0, ladder=True)) == [list(range(8)), [8], [9]]


@pytest.mark.parametrize("batch_tokens", [20, 300, 4096])
def test_ladder_batches_hold_ladder_sizes_within_budget_but_the_last(batch_tokens):
    rng = np.random.default_rng(3)
    tgt_lens, src_lens = rng.integers(1, 40, size=1000), rng.integers(1, 40, size=1000)
    batches = make_batches(src_lens, tgt_lens, batch_tokens, seed=1, epoch=1, ladder=True)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000)), "every pair once"
    assert all(len(b) == 1 or (tgt_lens[b] + 1).sum() <= batch_tokens for b in batches)
    off = [b for b in batches if ladder_size(len(b)) != len(b)]
    assert len(off) <= 1 and all(tgt_lens[b].max() == tgt_lens.max() for b in off), "only the last of the length order may be off the ladder"
    exact = make_batches(src_lens, tgt_lens, batch_tokens, seed=1, epoch=1, ladder=False)
    assert len(batches) <= 1.3 * len(exact), "a cut gives up less than a quarter of a batch"


def test_streamed_ladder_batches_hold_ladder_sizes_but_the_last_of_each_part():
    rng = np.random.default_rng(5)
    pairs = [{"src": "a " * int(n), "tgt": "b " * int(m)} for n, m in rng.integers(1, 20, size=(200, 2))]
    words = lambda texts: [[5] * len(t.split()) for t in texts]  # noqa: E731
    batches = list(stream_batches(iter(pairs), words, words, 50, 50, 120, seed=1, epoch=1, ladder=True))
    assert sum(len(src) for src, _ in batches) == 200
    assert sum(ladder_size(len(src)) != len(src) for src, _ in batches) <= 4, "4 parts of 50 pairs"


def test_collate_adds_no_rows_to_batches_cut_to_the_ladder():
    rng = np.random.default_rng(4)
    srcs = [rng.integers(4, 40, size=n) for n in rng.integers(1, 30, size=600)]
    tgts = [rng.integers(4, 40, size=n) for n in rng.integers(1, 30, size=600)]
    batches = make_batches(np.array([len(s) + 1 for s in srcs]), np.array([len(t) for t in tgts]), 500, seed=1, epoch=1, ladder=True)
    on_ladder = [b for b in batches if ladder_size(len(b)) == len(b)]
    assert len(on_ladder) >= len(batches) - 1
    for b in on_ladder:
        batch = collate_pairs([srcs[i] for i in b], [tgts[i] for i in b], ladder=True)
        assert batch.src.shape[0] == batch.tgt_in.shape[0] == len(b)
        assert (batch.src_len > 1).all() and (batch.tgt_out != PAD_ID).any(dim=1).all(), "every row a real sentence"


def test_ladder_size_at_most_is_the_largest_ladder_size_not_above():
    sizes = sorted({ladder_size(n) for n in range(1, 1025)})
    assert all(ladder_size_at_most(n) == max(s for s in sizes if s <= n) for n in range(1, 1025))


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
