"""seq2seq/model/decoder.py: the fused and stepwise paths agree, scheduled sampling, the restricted output vocabulary."""

import pytest
import torch
import torch.nn.functional as F

from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID

from conftest import V, padded_batch, tiny


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
def test_fused_decoder_equals_stepwise(attention, cell):
    model = tiny(attention, input_feeding=False, cell=cell).eval()
    src, lens = padded_batch()
    tgt_in = torch.randint(4, V, (4, 5))
    memory = model.encode(src, lens)
    fused, _ = model.decoder(tgt_in, model.init_state(memory), memory)
    stepwise, state = model.decoder._forward_stepwise(tgt_in, model.init_state(memory), memory, 1.0)
    torch.testing.assert_close(fused, stepwise, rtol=1e-5, atol=1e-5)
    assert (state.c is None) == (cell == "gru")


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
    from seq2seq.training.loss import token_loss

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
