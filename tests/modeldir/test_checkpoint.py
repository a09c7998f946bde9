"""Model directories (seq2seq/modeldir/checkpoint.py): saved and loaded bit for bit; clear failures for a mismatched
tokenizer, a missing file or a newer format; a restricted output vocabulary travels with the model."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.inference.translator import Translator
from seq2seq.modeldir.checkpoint import load_model_dir
from seq2seq.modeldir.meta import CheckpointError
from seq2seq.options import SearchOptions
from seq2seq.textfiles import read_lines
from seq2seq.training.loop import train

from conftest import tiny_config


@pytest.mark.slow
def test_model_directory_round_trip(trained_model_dir, tmp_path):
    model, _config, _tokenizer, _meta = load_model_dir(trained_model_dir)
    saved = load_file(str(trained_model_dir / "model.safetensors"))
    state = model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor)
    translator = Translator.from_pretrained(trained_model_dir, device="cpu")
    sentences = ["The dog sees the cat.", "A small woman laughs."]
    first = translator.translate(sentences, SearchOptions(beam_size=2))
    translator.save_pretrained(tmp_path / "copy")
    assert Translator.from_pretrained(tmp_path / "copy", device="cpu").translate(sentences, SearchOptions(beam_size=2)) == first


@pytest.mark.slow
def test_mismatched_tokenizer_fails_clearly(trained_model_dir, tmp_path, demo_dir):
    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    from seq2seq.textfiles import read_lines
    from seq2seq.tokenizer import train_tokenizer

    other = train_tokenizer(
        tmp_path / "other",
        read_lines(demo_dir / "val.en.gz"),
        read_lines(demo_dir / "val.de.gz"),
        vocab_size=100,
        model_type="unigram",
        character_coverage=1.0,
        byte_fallback=False,
        joint=True,
        seed=1,
    )
    assert other is not None
    shutil.copyfile(tmp_path / "other" / "spm.model", copy / "spm.model")
    with pytest.raises(CheckpointError, match="tokenizer does not match the weights"):
        load_model_dir(copy)


@pytest.mark.slow
def test_newer_format_fails_clearly(trained_model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["format_version"] = 99
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_model_dir(copy)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, says",
    [
        ("model.safetensors", "has no model.safetensors; it is not a complete model directory"),
        ("config.json", "has no config.json; it is not a complete model directory"),
        ("meta.json", "has no meta.json; it is not a complete model directory"),
        ("spm.model", "has no tokenizer file spm.model; copy it from the training run directory"),
    ],
    ids=["weights", "config", "meta", "tokenizer"],
)
def test_missing_file_fails_naming_it(trained_model_dir, tmp_path, name, says):
    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    (copy / name).unlink()
    for load in (load_model_dir, lambda d: Translator.from_pretrained(d, device="cpu")):
        with pytest.raises(CheckpointError) as err:
            load(copy)
        assert str(err.value).startswith(f"{copy} {says}")


@pytest.mark.slow
def test_target_output_vocabulary_travels_with_the_model(tmp_path, demo_dir):
    from seq2seq.tokenizer import reachable_target_ids

    best = train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "model.output_vocab=target"))
    model, _, tokenizer, _ = load_model_dir(best)
    mask = load_file(str(best / "model.safetensors"))["decoder.output_mask"]
    assert torch.equal(model.decoder.output_mask, mask)
    reachable = reachable_target_ids(tokenizer, tokenizer.encode_tgt(read_lines(demo_dir / "train.de.gz")))
    assert mask.nonzero().squeeze(1).tolist() == reachable and len(reachable) < tokenizer.tgt_vocab_size
    # Sampling from the whole distribution still draws only pieces inside the mask.
    translator = Translator.from_pretrained(best, device="cpu")
    drawn = translator.translate_nbest(["The dog sees the cat."] * 8, SearchOptions(mode="sample", nbest=4, temperature=2.0))
    pieces = {p for hyps in drawn for h in hyps for p in h.tokens}
    assert pieces and pieces <= {tokenizer.tgt.id_to_piece(i) for i in reachable}


def test_meta_json_round_trips_and_names_what_is_missing(tmp_path):
    from seq2seq.modeldir.meta import ModelMeta, TrainingRecord

    fixed = {
        "format_version": 1,
        "package_version": "0.1.0",
        "src_lang": "en",
        "tgt_lang": "de",
        "tokenizer_files": ("spm.model",),
        "tokenizer_sha256": "a" * 64,
        "special_ids": {"pad": 0, "unk": 1, "bos": 2, "eos": 3},
        "weights_sha256": "b" * 64,
    }
    record = TrainingRecord(
        step=8,
        epoch=2,
        num_parameters=1000,
        train_seconds=3.5,
        valid_bleu=12.5,
        valid_bleu_signature="sig",
        averaged_from=("run/checkpoints/step-00000006", "run/checkpoints/step-00000008"),
    )
    for meta in (ModelMeta(**fixed, training=record), ModelMeta(**fixed)):
        flat = json.loads(meta.to_json())
        assert "training" not in flat and "test_bleu" not in flat  # one flat object; unset scores are left out
        assert ModelMeta.from_json(flat, tmp_path / "meta.json") == meta
    assert json.loads(ModelMeta(**fixed, training=record).to_json())["step"] == 8
    flat = json.loads(ModelMeta(**fixed).to_json())
    del flat["weights_sha256"], flat["tgt_lang"]
    with pytest.raises(CheckpointError, match=r"meta\.json lacks tgt_lang, weights_sha256"):
        ModelMeta.from_json(flat, tmp_path / "meta.json")


@pytest.mark.slow
def test_the_cell_travels_with_the_model_and_old_directories_load_as_lstm(trained_model_dir, tmp_path, demo_dir):
    gru_dir = train(tiny_config(tmp_path / "gru", demo_dir, "train.max_steps=2", "model.cell=gru", "train.score_test=false"))
    assert json.loads((gru_dir / "config.json").read_text())["model"]["cell"] == "gru"
    assert type(load_model_dir(gru_dir)[0].decoder.rnn) is torch.nn.GRU
    old = shutil.copytree(trained_model_dir, tmp_path / "old")  # written before model.cell existed: no such key
    config = json.loads((old / "config.json").read_text())
    del config["model"]["cell"]
    (old / "config.json").write_text(json.dumps(config))
    model, config, _, _ = load_model_dir(old)
    assert config.model.cell == "lstm" and type(model.encoder.rnn) is torch.nn.LSTM
