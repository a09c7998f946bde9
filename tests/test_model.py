import pytest
import torch
import torch.nn.functional as F

from seq2seq.config import ModelConfig
from seq2seq.model import build_model
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID

V = 40


def tiny(attention="bahdanau", input_feeding=True, **extra):
    torch.manual_seed(0)
    cfg = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, attention_dim=16, attention=attention,
                      input_feeding=input_feeding, dropout=0.0, emb_dropout=0.0, **extra)
    return build_model(cfg, V, V, shared_vocab=True)


def padded_batch():
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([7, 3, 5, 1])
    src = torch.full((4, 7), PAD_ID)
    for i, n in enumerate(lens.tolist()):
        src[i, : n - 1] = torch.randint(4, V, (n - 1,), generator=g)
        src[i, n - 1] = EOS_ID
    return src, lens


@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_shapes(attention, input_feeding):
    model = tiny(attention, input_feeding, dec_layers=2, enc_layers=2)
    src, lens = padded_batch()
    tgt_in = torch.randint(4, V, (4, 6))
    features = model(src, lens, tgt_in)
    assert features.shape == (4, 6, 16)
    assert model.decoder.logits(features).shape == (4, 6, V)
    memory = model.encode(src, lens)
    state = model.init_state(memory)
    assert state.h.shape == (2, 4, 24) and state.c.shape == (2, 4, 24)
    logits, state, weights = model.decoder.step(torch.full((4,), BOS_ID), state, memory)
    assert logits.shape == (4, V)
    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (4, 7)
        assert torch.allclose(weights.sum(-1), torch.ones(4))
        assert (weights[1, 3:] == 0).all(), "attention must never look at padding"


def test_padding_invariance_of_the_encoder():
    model = tiny().eval()
    src, lens = padded_batch()
    enc_out, h, c = model.encoder(src, lens)
    for i, n in enumerate(lens.tolist()):
        alone_out, alone_h, alone_c = model.encoder(src[i : i + 1, :n], lens[i : i + 1])
        torch.testing.assert_close(enc_out[i, :n], alone_out[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(h[i], alone_h[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(c[i], alone_c[0], rtol=0, atol=1e-6)
        assert (enc_out[i, n:] == 0).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_left_padded_fused_encoder_equals_the_packed_lstm(layers):
    encoder = tiny(enc_layers=layers).encoder
    with torch.no_grad():
        encoder.embed.weight[PAD_ID].uniform_(-1, 1)  # tied embeddings can train the padding row: it must not leak in
    src, lens = padded_batch()
    results = []
    for run in (encoder._run_left_padded, encoder._run_packed):
        encoder.zero_grad()
        emb = encoder.embed(src)
        out = run(emb, lens)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in out).backward()
        results.append([o.detach() for o in out] + [p.grad.clone() for p in encoder.parameters()])
    for fused, packed in zip(*results):
        torch.testing.assert_close(fused, packed, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
def test_fused_decoder_equals_stepwise(attention):
    model = tiny(attention, input_feeding=False).eval()
    src, lens = padded_batch()
    tgt_in = torch.randint(4, V, (4, 5))
    memory = model.encode(src, lens)
    fused, _ = model.decoder(tgt_in, model.init_state(memory), memory)
    stepwise, _ = model.decoder._forward_stepwise(tgt_in, model.init_state(memory), memory, 1.0)
    torch.testing.assert_close(fused, stepwise, rtol=1e-5, atol=1e-5)


def test_tied_embeddings_share_one_matrix():
    model = tiny()
    assert model.decoder.generator.weight is model.decoder.embed.weight
    assert model.encoder.embed.weight is model.decoder.embed.weight


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_overfits_a_tiny_batch(attention):
    model = tiny(attention)
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


def test_scheduled_sampling_runs_and_changes_inputs():
    model = tiny(input_feeding=False).train()
    src, lens = padded_batch()
    tgt_in = torch.randint(4, V, (4, 6))
    torch.manual_seed(3)
    forced = model(src, lens, tgt_in, teacher_forcing=1.0)
    torch.manual_seed(3)
    sampled = model(src, lens, tgt_in, teacher_forcing=0.0)
    torch.testing.assert_close(forced[:, 0], sampled[:, 0])
    assert not torch.allclose(forced[:, 1:], sampled[:, 1:])


def test_restricted_output_scores_only_the_masked_pieces():
    from seq2seq.training import token_loss

    model = tiny(attention="luong", input_feeding=False, output_vocab="target")
    allowed = [0, 1, 2, 3, *range(10, 30)]
    model.decoder.restrict_output_to(allowed)
    src, lens = padded_batch()
    tgt_in = torch.tensor([[BOS_ID, 12, 20], [BOS_ID, 25, 11], [BOS_ID, 14, PAD_ID], [BOS_ID, 29, 17]])
    tgt_out = torch.tensor([[12, 20, EOS_ID], [25, 11, EOS_ID], [14, EOS_ID, PAD_ID], [29, 17, EOS_ID]])
    features = model(src, lens, tgt_in)
    logits = model.decoder.logits(features)  # (B, T, V)
    outside = torch.ones(V, dtype=torch.bool)
    outside[allowed] = False
    assert torch.isneginf(logits[..., outside]).all() and torch.isfinite(logits[..., ~outside]).all()
    # The loss is cross-entropy over the allowed pieces only: label smoothing spreads over them too.
    real = tgt_out != PAD_ID
    rows = torch.tensor(allowed)
    to_row = torch.full((V,), -1, dtype=torch.long)
    to_row[rows] = torch.arange(len(allowed))
    expected = F.cross_entropy(logits[real][:, rows], to_row[tgt_out[real]], label_smoothing=0.1, reduction="sum")
    loss = token_loss(model, features, tgt_out, 0.1)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    loss.backward()
    bias_grad = model.decoder.generator.bias.grad  # the bias, unlike the tied weight, is the output layer's alone
    assert bias_grad[outside].abs().sum() == 0 and bias_grad[~outside].abs().sum() > 0


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_restricted_output_in_every_translation_precision(precision):
    from seq2seq.translate import with_precision

    model = tiny(attention="luong", input_feeding=False, output_vocab="target")
    model.decoder.restrict_output_to([0, 1, 2, 3, *range(10, 30)])
    model = with_precision(model.eval(), precision)
    features = torch.randn(5, 16, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    logits = model.decoder.logits(features)  # (5, V)
    outside = ~model.decoder.output_mask
    assert torch.isneginf(logits[:, outside]).all() and torch.isfinite(logits[:, ~outside]).all()
