"""seq2seq/model/seq2seq.py: Seq2Seq's shapes, tied embeddings, and an overfit test."""

import pytest
import torch
import torch.nn.functional as F

from seq2seq.tokenizer import BOS_ID, EOS_ID

from conftest import V, padded_batch, tiny


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_shapes(attention, input_feeding, cell):
    model = tiny(attention, input_feeding, dec_layers=2, enc_layers=2, cell=cell)
    src, lens = padded_batch()
    tgt_in = torch.randint(4, V, (4, 6))
    features = model(src, lens, tgt_in)
    assert features.shape == (4, 6, 16)
    assert model.decoder.logits(features).shape == (4, 6, V)
    memory = model.encode(src, lens)
    state = model.init_state(memory)
    assert state.h.shape == (2, 4, 24)
    if cell == "lstm":
        assert memory.context.shape == (4, 64) and state.c.shape == (2, 4, 24)
    else:  # a GRU has no cell state: the context vector is the final h of both directions
        assert memory.context.shape == (4, 32) and state.c is None and model.bridge_c is None
    logits, state, weights = model.decoder.step(torch.full((4,), BOS_ID), state, memory)
    assert logits.shape == (4, V) and (state.c is None) == (cell == "gru")
    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (4, 7)
        assert torch.allclose(weights.sum(-1), torch.ones(4))
        assert (weights[1, 3:] == 0).all(), "attention must never look at padding"


def test_tied_embeddings_share_one_matrix():
    model = tiny()
    assert model.decoder.generator.weight is model.decoder.embed.weight
    assert model.encoder.embed.weight is model.decoder.embed.weight


@pytest.mark.parametrize("attention,cell", [("bahdanau", "lstm"), ("none", "lstm"), ("none", "gru")])
def test_overfits_a_tiny_batch(attention, cell):
    model = tiny(attention, cell=cell)
    src, lens = padded_batch()
    g = torch.Generator().manual_seed(2)
    tgt = torch.randint(4, V, (4, 5), generator=g)
    tgt_in = torch.cat([torch.full((4, 1), BOS_ID), tgt], dim=1)
    tgt_out = torch.cat([tgt, torch.full((4, 1), EOS_ID)], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = F.cross_entropy(model.decoder.logits(model(src, lens, tgt_in)).flatten(0, 1), tgt_out.flatten())
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    model.eval()
    predicted = model.decoder.logits(model(src, lens, tgt_in)).argmax(-1)
    assert torch.equal(predicted, tgt_out)


def test_a_gru_has_three_gates_where_an_lstm_has_four():
    lstm, gru = tiny(cell="lstm"), tiny(cell="gru")
    assert type(lstm.encoder.rnn) is torch.nn.LSTM and type(gru.decoder.rnn) is torch.nn.GRU
    assert gru.encoder.rnn.weight_hh_l0.shape[0] * 4 == lstm.encoder.rnn.weight_hh_l0.shape[0] * 3
    assert sum(p.numel() for p in gru.parameters()) < sum(p.numel() for p in lstm.parameters())
