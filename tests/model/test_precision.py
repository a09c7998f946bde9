"""Translation in bf16 and int8 (seq2seq/model/precision.py): the model changes
precision, its predictions stay close, and a restricted output vocabulary stays restricted."""

import pytest
import torch

from seq2seq.data.batching import pad_sources
from seq2seq.inference.translator import Translator
from seq2seq.options import SearchOptions

from conftest import padded_batch, tiny

SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]


def first_step_log_probs(translator: Translator, sentences: list[str]) -> torch.Tensor:
    """The model's log-probabilities for the first target token: (B, V), float32."""
    import numpy as np

    src, src_len = pad_sources([np.asarray(ids, dtype=np.int64) for ids in translator.tokenizer.encode_src(sentences)])
    model = translator.model
    with torch.inference_mode():
        memory, state = model.start(src, src_len)
        logits = model.step(torch.full((len(sentences),), 2), state, memory).logits
    return torch.log_softmax(logits.float(), -1)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_restricted_output_in_every_translation_precision(precision):
    from seq2seq.model.precision import with_precision

    model = tiny(attention="luong", input_feeding=False, output_vocab="target")
    model.decoder.restrict_output_to([0, 1, 2, 3, *range(10, 30)])
    model = with_precision(model.eval(), precision)
    features = torch.randn(5, 16, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    logits = model.decoder.logits(features)  # (5, V)
    outside = ~model.decoder.output_mask
    assert torch.isneginf(logits[:, outside]).all() and torch.isfinite(logits[:, ~outside]).all()


@pytest.mark.slow
@pytest.mark.parametrize("precision, tolerance", [("bf16", 0.15), ("int8", 0.15)])
def test_lower_precision_stays_close_to_fp32(trained_model_dir, precision, tolerance):
    full = Translator.from_pretrained(trained_model_dir, device="cpu")
    low = Translator.from_pretrained(trained_model_dir, device="cpu", precision=precision)
    reference, approx = first_step_log_probs(full, SENTENCES), first_step_log_probs(low, SENTENCES)
    likely = reference > -5  # compare where the probability is not negligible
    assert (approx[likely] - reference[likely]).abs().max() < tolerance
    assert not torch.equal(approx, reference)  # it really ran in another precision
    out = low.translate(SENTENCES + [""], SearchOptions(beam_size=3))
    assert len(out) == 4 and out[3] == "" and all(out[:3])


@pytest.mark.slow
def test_int8_quantizes_the_lstm_and_linear_layers(trained_model_dir):
    model = Translator.from_pretrained(trained_model_dir, device="cpu", precision="int8").model
    plain = [name for name, m in model.named_modules() if type(m) in (torch.nn.Linear, torch.nn.LSTM)]
    quantized = [name for name, m in model.named_modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert plain == []
    assert {"encoder.rnn", "decoder.rnn", "decoder.generator"} <= set(quantized)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_a_gru_model_runs_in_lower_precision(precision):
    import copy

    from seq2seq.model.precision import with_precision

    model = tiny(cell="gru").eval()
    src, lens = padded_batch()

    def first_step(m):
        with torch.inference_mode():
            memory, state = m.start(src, lens)
            logits = m.step(torch.full((4,), 2), state, memory).logits
        return torch.log_softmax(logits.float(), -1)

    low = with_precision(copy.deepcopy(model), precision)
    reference, approx = first_step(model), first_step(low)
    assert (approx - reference).abs().max() < 0.05 and not torch.equal(approx, reference)
    if precision == "int8":
        assert all(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in (low.encoder.rnn, low.decoder.rnn))
