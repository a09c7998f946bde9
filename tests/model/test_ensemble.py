"""seq2seq/model/ensemble.py: the ensemble's step is the log of the mean probability; an ensemble of a model
with itself translates as the model."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.config import ModelConfig
from seq2seq.model import Ensemble, build_model
from seq2seq.options import SearchOptions
from seq2seq.translate import Translator

SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]


def small_model(seed: int, vocab: int = 30):
    torch.manual_seed(seed)
    cfg = ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=12, attention_dim=8, dropout=0.0, emb_dropout=0.0)
    return build_model(cfg, vocab, vocab, True).eval()


def test_ensemble_step_is_log_of_mean_probability():
    models = [small_model(1), small_model(2)]
    ensemble = Ensemble(models)
    src, src_len = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]]), torch.tensor([4, 3])
    y = torch.tensor([2, 2])
    memory = ensemble.encode(src, src_len)
    out, state, weights = ensemble.step(y, ensemble.init_state(memory), memory)
    probs = [torch.softmax(m.step(y, m.init_state(m.encode(src, src_len)), m.encode(src, src_len))[0], -1) for m in models]
    torch.testing.assert_close(out.exp(), (probs[0] + probs[1]) / 2)
    assert len(state) == 2 and weights.shape == (2, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


def test_ensemble_rejects_mismatched_vocabularies():
    with pytest.raises(ValueError, match="vocabularies differ"):
        Ensemble([small_model(1, 30), small_model(2, 40)])
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([small_model(1)])


@pytest.mark.slow
def test_ensemble_of_a_model_with_itself_translates_as_the_model(trained_model_dir):
    single = Translator.from_pretrained(trained_model_dir, device="cpu").translate_nbest(SENTENCES, SearchOptions(beam_size=3, nbest=2))
    double = Translator.from_pretrained([trained_model_dir, trained_model_dir], device="cpu").translate_nbest(SENTENCES, SearchOptions(beam_size=3, nbest=2))
    assert [[h.text for h in hs] for hs in double] == [[h.text for h in hs] for hs in single]
    for hs, gs in zip(single, double):
        for h, g in zip(hs, gs):
            assert math.isclose(h.score, g.score, abs_tol=1e-4)
