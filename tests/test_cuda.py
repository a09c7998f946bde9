"""The CUDA paths: bf16 training, resuming with the GPU's generator state, and translation in fp32 and
bf16 on the GPU against the CPU. Skipped where no GPU is present (CI); run on a GPU machine."""

from __future__ import annotations

import json

import pytest
import torch

from seq2seq.inference.translator import Translator
from seq2seq.options import SearchOptions
from seq2seq.training.loop import train

from conftest import tiny_config

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"), pytest.mark.slow]

SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book.", ""]


def records(run_dir, kind):
    return [r for line in (run_dir / "metrics.jsonl").read_text().splitlines() if (r := json.loads(line))["type"] == kind]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bf16_training_on_cuda_resumes_where_it_stopped(tmp_path, demo_dir, cell):
    cuda = ["train.device=cuda", "train.bf16=true", "model.dropout=0.3", "model.word_dropout=0.1", "train.eval_every=4", f"model.cell={cell}"]
    train(tiny_config(tmp_path / "whole", demo_dir, "train.max_steps=8", *cuda))
    train(tiny_config(tmp_path / "split", demo_dir, "train.max_steps=4", *cuda))
    train(tiny_config(tmp_path / "split", demo_dir, "train.max_steps=8", *cuda))
    whole, split = records(tmp_path / "whole", "train"), records(tmp_path / "split", "train")
    assert len(whole) == 4 and all(r["loss"] > 0 for r in whole)
    assert whole[-1]["loss"] < whole[0]["loss"]
    # cuDNN's LSTM and GRU kernels are not bitwise deterministic, so the resumed run matches closely, not exactly.
    assert [r["loss"] for r in split] == pytest.approx([r["loss"] for r in whole], rel=2e-2)
    meta = json.loads((tmp_path / "whole" / "best" / "meta.json").read_text())
    assert meta["step"] in (4, 8)
    # A model trained on the GPU loads and translates on the CPU.
    assert len(Translator.from_pretrained(tmp_path / "whole" / "best", device="cpu").translate(SENTENCES)) == 4


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("bf16", 0.2)])
def test_cuda_translation_matches_the_cpu(trained_model_dir, precision, tolerance):
    cpu = Translator.from_pretrained(trained_model_dir, device="cpu")
    gpu = Translator.from_pretrained(trained_model_dir, device="cuda", precision=precision)
    assert next(gpu.model.parameters()).device.type == "cuda"
    expected = cpu.translate_nbest(SENTENCES, SearchOptions(beam_size=3, nbest=1))
    got = gpu.translate_nbest(SENTENCES, SearchOptions(beam_size=3, nbest=1))
    scores = torch.tensor([h[0].score for h in expected])
    assert torch.tensor([h[0].score for h in got]) == pytest.approx(scores, abs=tolerance * scores.abs().max().item() + tolerance)
    if precision == "fp32":
        assert [h[0].text for h in got] == [h[0].text for h in expected]
    assert got[3][0].text == ""


def test_cuda_ensemble_and_batch_sizes_agree(trained_model_dir):
    gpu = Translator.from_pretrained([trained_model_dir, trained_model_dir], device="cuda")
    assert gpu.translate(SENTENCES, SearchOptions(beam_size=3), batch_size=1) == gpu.translate(SENTENCES, SearchOptions(beam_size=3), batch_size=64)
