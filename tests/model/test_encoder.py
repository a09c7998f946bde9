"""seq2seq/model/encoder.py: padding never influences the encoding; the fused and packed paths agree, for LSTM and GRU alike."""

import pytest
import torch

from seq2seq.tokenizer import PAD_ID

from conftest import padded_batch, tiny


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_invariance_of_the_encoder(cell):
    model = tiny(cell=cell).eval()
    src, lens = padded_batch()
    enc_out, h, c = model.encoder(src, lens)
    assert (c is None) == (cell == "gru")
    for i, n in enumerate(lens.tolist()):
        alone_out, alone_h, alone_c = model.encoder(src[i : i + 1, :n], lens[i : i + 1])
        torch.testing.assert_close(enc_out[i, :n], alone_out[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(h[i], alone_h[0], rtol=0, atol=1e-6)
        if c is not None:
            torch.testing.assert_close(c[i], alone_c[0], rtol=0, atol=1e-6)
        assert (enc_out[i, n:] == 0).all()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_left_padded_fused_encoder_equals_the_packed_rnn(layers, cell):
    encoder = tiny(enc_layers=layers, cell=cell).encoder
    with torch.no_grad():
        encoder.embed.weight[PAD_ID].uniform_(-1, 1)  # tied embeddings can train the padding row: it must not leak in
    src, lens = padded_batch()
    results = []
    for run in (encoder._run_left_padded, encoder._run_packed):
        encoder.zero_grad()
        emb = encoder.embed(src)
        out = run(emb, lens)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in out if o is not None).backward()
        results.append([o.detach() for o in out if o is not None] + [p.grad.clone() for p in encoder.parameters()])
    for fused, packed in zip(*results):
        torch.testing.assert_close(fused, packed, rtol=1e-5, atol=1e-6)
