"""seq2seq/model/ensemble.py and Translator ensembles: the ensemble's step is the log of the mean probability, so
an ensemble of two different models scores each translation by the mean of their probabilities, not by one
member's; an ensemble of a model with itself translates as the model; models with different tokenizers are
refused."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from seq2seq.config import ModelConfig
from seq2seq.data.batching import pad_sources
from seq2seq.decoding.torch_search import beam_search
from seq2seq.inference.translator import Translator
from seq2seq.model import Ensemble, build_model
from seq2seq.modeldir.meta import CheckpointError
from seq2seq.options import SearchOptions
from seq2seq.textfiles import read_lines
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID

from conftest import with_other_tokenizer

SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]
# Length penalty 0: a translation's score is its summed log-probability, which teacher forcing recomputes.
# Short outputs keep the test fast: a hypothesis that reaches the limit ends there.
NBEST = SearchOptions(beam_size=3, nbest=3, length_penalty=0.0, max_len_ratio=1.0, max_len_offset=2)


def small_model(seed: int, vocab: int = 30, cell: str = "lstm"):
    torch.manual_seed(seed)
    cfg = ModelConfig(cell=cell, emb_dim=8, enc_hidden=8, dec_hidden=12, attention_dim=8, dropout=0.0, emb_dropout=0.0)
    return build_model(cfg, vocab, vocab, True).eval()


def perturbed_copy(model_dir: Path, out: Path, seed: int, scale: float = 0.5) -> Path:
    """A copy of a model directory whose weights carry seeded noise of `scale` times each tensor's spread:
    a second model with the first's tokenizer whose probabilities differ from the first's everywhere
    (loading does not check the weights' digest)."""
    shutil.copytree(model_dir, out)
    g = torch.Generator().manual_seed(seed)
    weights = load_file(out / "model.safetensors")
    for name, w in weights.items():
        if w.is_floating_point() and w.numel() > 1:
            weights[name] = w + scale * w.std() * torch.randn(w.shape, generator=g)
    save_file(weights, out / "model.safetensors")
    return out


def hypothesis_probs(translator: Translator, sentence: str, hyps) -> list[torch.Tensor]:
    """Teacher forcing: the model's probability of each piece of each hypothesis and then of EOS, (T+1,) each."""
    tokenizer, model = translator.tokenizer, translator.model
    targets = [[tokenizer.tgt.piece_to_id(p) for p in h.tokens] + [EOS_ID] for h in hyps]
    T = max(map(len, targets))
    tgt_in = torch.full((len(hyps), T), PAD_ID)
    for row, ids in enumerate(targets):
        tgt_in[row, : len(ids)] = torch.tensor([BOS_ID, *ids[:-1]])
    src, src_len = pad_sources([np.asarray(tokenizer.encode_src([sentence])[0], dtype=np.int64)] * len(hyps))
    with torch.inference_mode():
        probs = torch.softmax(model.decoder.logits(model(src, src_len, tgt_in)).float(), -1)  # (N, T, V)
    return [probs[row, torch.arange(len(ids)), ids] for row, ids in enumerate(targets)]


@pytest.fixture(scope="module")
def sentences(demo_dir):
    return read_lines(demo_dir / "val.en.gz")[:5] + SENTENCES


@pytest.fixture(scope="module")
def other_model_dir(trained_model_dir, tmp_path_factory):
    return perturbed_copy(trained_model_dir, tmp_path_factory.mktemp("other") / "model", seed=7)


@pytest.mark.parametrize("cells", [("lstm", "lstm"), ("lstm", "gru")])
def test_ensemble_step_is_log_of_mean_probability(cells):
    models = [small_model(1, cell=cells[0]), small_model(2, cell=cells[1])]
    ensemble = Ensemble(models)
    src, src_len = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]]), torch.tensor([4, 3])
    y = torch.tensor([2, 2])
    memory, state = ensemble.start(src, src_len)
    step = ensemble.step(y, state, memory)
    out, state, weights = step.logits, step.state, step.weights
    probs = [torch.softmax(m.step(y, *reversed(m.start(src, src_len))).logits, -1) for m in models]
    torch.testing.assert_close(out.exp(), (probs[0] + probs[1]) / 2)
    assert len(state) == 2 and weights.shape == (2, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    # The search reorders both members' states, the GRU's without a cell state.
    hyps = beam_search(ensemble, src, src_len, SearchOptions(beam_size=3, nbest=3, max_len_ratio=1.0, max_len_offset=2))
    assert [len(h) for h in hyps] == [3, 3]


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


@pytest.mark.slow
def test_ensemble_of_two_models_scores_by_their_mean_probability(trained_model_dir, other_model_dir, sentences):
    """Each n-best score of an ensemble of two different models is the summed log of the members' mean
    probability of its pieces; so its n-best lists are neither member's own."""
    a, b = (Translator.from_pretrained(d, device="cpu") for d in (trained_model_dir, other_model_dir))
    ensemble = Translator.from_pretrained([trained_model_dir, other_model_dir], device="cpu").translate_nbest(sentences, NBEST)
    alone = [t.translate_nbest(sentences, NBEST) for t in (a, b)]
    for i, (sentence, hyps) in enumerate(zip(sentences, ensemble)):
        for h, pa, pb in zip(hyps, hypothesis_probs(a, sentence, hyps), hypothesis_probs(b, sentence, hyps)):
            assert math.isclose(h.score, ((pa + pb) / 2).log().sum().item(), abs_tol=1e-3), (sentence, h)
        for member in alone:
            best, own = hyps[0], member[i][0]
            assert best.text != own.text or abs(best.score - own.score) > 1e-2, (sentence, best, own)


@pytest.mark.slow
def test_ensemble_of_models_with_different_tokenizers_is_refused(trained_model_dir, demo_dir, tmp_path):
    other = with_other_tokenizer(trained_model_dir, tmp_path / "other", demo_dir)
    assert Translator.from_pretrained(other, device="cpu").translate(SENTENCES[:1])  # a usable model on its own
    with pytest.raises(CheckpointError) as err:
        Translator.from_pretrained([trained_model_dir, other], device="cpu")
    assert f"{other} has a different tokenizer from {trained_model_dir}" in str(err.value)
