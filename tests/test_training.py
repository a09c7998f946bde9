import ctypes
import json
import math
import platform
import shutil

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.checkpoint import CheckpointError, load_model_dir
from seq2seq.resume import load_state
from seq2seq.textfiles import read_lines
from seq2seq.training import keep_freed_memory, train
from seq2seq.translate import Translator

from conftest import tiny_config, tiny_tokenizer


def train_losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if json.loads(line)["type"] == "train"]


def test_two_seeded_runs_give_identical_losses(tmp_path, demo_dir):
    for name in ("a", "b"):
        train(tiny_config(tmp_path / name, demo_dir, "train.max_steps=6", "model.dropout=0.3", "model.word_dropout=0.1"))
    losses = train_losses(tmp_path / "a")
    assert len(losses) == 3
    assert losses == train_losses(tmp_path / "b")
    other = tiny_config(tmp_path / "c", demo_dir, "train.max_steps=6", "model.dropout=0.3", "model.word_dropout=0.1", "seed=2")
    train(other)
    assert train_losses(tmp_path / "c") != losses


def test_run_directory_contents(trained_model_dir):
    run_dir = trained_model_dir.parent
    assert (run_dir / "config.yaml").is_file() and (run_dir / "spm.model").is_file()
    for name in ("model.safetensors", "config.json", "spm.model", "meta.json", "README.md"):
        assert (trained_model_dir / name).is_file()
    assert (run_dir / "last" / "training_state.pt").is_file()
    meta = json.loads((trained_model_dir / "meta.json").read_text())
    assert meta["format_version"] == 1 and meta["src_lang"] == "en" and meta["tgt_lang"] == "de"
    assert meta["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert len(meta["tokenizer_sha256"]) == 64
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert len(valid) == 2 and all("bleu" in r and r["loss"] > 0 and r["valid_s"] >= 0 for r in valid)
    assert valid[1]["elapsed_s"] > valid[0]["elapsed_s"] + valid[1]["valid_s"]
    state = torch.load(run_dir / "last" / "training_state.pt", weights_only=True)
    assert state["progress"]["epoch"] == 2 and state["progress"]["finished"]


def test_model_directory_round_trip(trained_model_dir, tmp_path):
    model, config, tokenizer, meta = load_model_dir(trained_model_dir)
    saved = load_file(str(trained_model_dir / "model.safetensors"))
    state = model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor)
    translator = Translator.from_pretrained(trained_model_dir, device="cpu")
    sentences = ["The dog sees the cat.", "A small woman laughs."]
    first = translator.translate(sentences, beam_size=2)
    translator.save_pretrained(tmp_path / "copy")
    assert Translator.from_pretrained(tmp_path / "copy", device="cpu").translate(sentences, beam_size=2) == first


def test_mismatched_tokenizer_fails_clearly(trained_model_dir, tmp_path, demo_dir):
    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    from seq2seq.textfiles import read_lines
    from seq2seq.tokenizer import train_tokenizer

    other = train_tokenizer(tmp_path / "other", read_lines(demo_dir / "val.en.gz"), read_lines(demo_dir / "val.de.gz"), 100, "unigram", 1.0, False, True, 1)
    assert other is not None
    shutil.copyfile(tmp_path / "other" / "spm.model", copy / "spm.model")
    with pytest.raises(CheckpointError, match="tokenizer does not match the weights"):
        load_model_dir(copy)


def test_missing_file_and_newer_format_fail_clearly(trained_model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(trained_model_dir, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["format_version"] = 99
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_model_dir(copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_model_dir(copy)


def test_model_card_front_matter(trained_model_dir):
    import yaml

    text = (trained_model_dir / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["language"] == ["en", "de"]
    assert front["license"] == "mit" and front["pipeline_tag"] == "translation" and "bleu" in front["metrics"]
    results = front["model-index"][0]["results"]
    meta = json.loads((trained_model_dir / "meta.json").read_text())
    assert [r["dataset"]["split"] for r in results] == ["validation", "test"]
    assert results[1]["metrics"][0]["value"] == round(meta["test_bleu"], 2)
    body = text.split("---\n", 2)[2]
    for needed in ("## Data", "parameters", "Validation BLEU", "Test BLEU", "nrefs:1|case:mixed", "## Intended use and limitations", "## Recipe"):
        assert needed in body


def test_tensorboard_missing_is_a_clear_config_error(tmp_path, demo_dir, monkeypatch):
    import builtins

    from seq2seq.config import ConfigError

    from conftest import tiny_config

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ConfigError, match="train.tensorboard=true but the tensorboard package is not installed: pip install tensorboard"):
        train(tiny_config(tmp_path, demo_dir, "train.tensorboard=true", "train.max_steps=1"))


def test_tensorboard_writes_events(tmp_path, demo_dir):
    pytest.importorskip("tensorboard")
    from conftest import tiny_config

    train(tiny_config(tmp_path, demo_dir, "train.tensorboard=true", "train.max_steps=2", "train.log_every=1"))
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_linear_schedule_reaches_min_lr_at_the_first_limit():
    from seq2seq.config import TrainConfig
    from seq2seq.resume import Progress
    from seq2seq.training import linear_lr

    tc = TrainConfig(scheduler="linear", lr=1e-3, min_lr=0.0, epochs=4, max_minutes=10)
    at = Progress(step=0, epoch=1, batch_in_epoch=0)
    assert linear_lr(tc, at, 0.0, 100) == pytest.approx(1e-3)
    assert linear_lr(tc, at, 300.0, 100) == pytest.approx(5e-4)  # half the time budget is gone
    later = Progress(step=250, epoch=3, batch_in_epoch=50)  # 2.5 of 4 epochs
    assert linear_lr(tc, later, 60.0, 100) == pytest.approx(1e-3 * (1 - 2.5 / 4))
    assert linear_lr(tc, later, 900.0, 100) == 0.0  # past the budget: never negative
    warm = TrainConfig(scheduler="linear", lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=100)
    assert linear_lr(warm, Progress(step=4), 0.0, None) == pytest.approx(0.5 * (1e-4 + 9e-4 * 0.96))


def test_linear_schedule_in_training_decays_every_step(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=5", "train.scheduler=linear", "train.lr=1e-3", "train.min_lr=0", "train.log_every=1"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r["type"] == "train"]
    assert lrs == pytest.approx([1e-3 * (1 - s / 5) for s in range(5)])


def test_linear_schedule_on_a_stream_needs_a_length(demo_dir):
    from seq2seq.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="train.max_minutes or train.max_steps"):
        load_config(None, ["data.streaming=true", "train.scheduler=linear"])
    load_config(None, ["data.streaming=true", "train.scheduler=linear", "train.max_steps=10"])


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
    drawn = translator.translate_nbest(["The dog sees the cat."] * 8, mode="sample", nbest=4, temperature=2.0)
    pieces = {p for hyps in drawn for h in hyps for p in h.tokens}
    assert pieces and pieces <= {tokenizer.tgt.id_to_piece(i) for i in reachable}


def test_target_output_vocabulary_needs_the_whole_training_set():
    from seq2seq.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="model.output_vocab=full or data.streaming=false"):
        load_config(None, ["data.streaming=true", "model.output_vocab=target"])
    with pytest.raises(ConfigError, match="full.*target|target.*full"):
        load_config(None, ["model.output_vocab=seen"])


def test_subword_sampling_draws_each_epoch_from_the_seed_within_the_length_limit(tmp_path, demo_dir):
    from seq2seq.data import encode_split
    from seq2seq.training import sampled_split

    src_text, tgt_text = read_lines(demo_dir / "train.en.gz"), read_lines(demo_dir / "train.de.gz")
    tok = tiny_tokenizer(tmp_path / "spm", demo_dir)
    split = encode_split({"src": src_text, "tgt": tgt_text}, tok.encode_src, tok.encode_tgt, 30, "train")
    config = tiny_config(tmp_path, demo_dir, "tokenizer.sample_alpha=0.5", "data.max_len=30")
    first = sampled_split(split, tok, (src_text, tgt_text), config, epoch=1)
    again = sampled_split(split, tok, (src_text, tgt_text), config, epoch=1)
    second = sampled_split(split, tok, (src_text, tgt_text), config, epoch=2)

    def as_lists(pairs):
        return [[a.tolist() for a in side] for side in pairs]

    assert as_lists(first) == as_lists(again)  # a resumed epoch draws the same
    assert as_lists(first) != as_lists(second)
    fixed = as_lists((split.src, split.tgt))
    assert sum(s != f for s, f in zip(as_lists(first)[1], fixed[1])) > len(split) // 4
    # A draw longer than data.max_len falls back to the fixed segmentation.
    assert max(len(t) for t in first[1]) <= 30 and max(len(s) for s in first[0]) <= 30
    no_sampling = tiny_config(tmp_path, demo_dir, "data.max_len=30")
    assert sampled_split(split, tok, (src_text, tgt_text), no_sampling, epoch=1) == (split.src, split.tgt)



class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_large_tensors_come_from_the_heap_and_stay_there_when_freed():
    # A 64 MB tensor, like the per-step buffers of a training step: with glibc's defaults it is
    # mapped on its own (hblkhd) and unmapped when freed, to be faulted in afresh the next step.
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    keep_freed_memory()
    before = libc.mallinfo2()
    x = torch.ones(16 << 20)
    during = libc.mallinfo2()
    del x
    after = libc.mallinfo2()
    assert during.hblkhd - before.hblkhd < 1 << 20
    assert after.arena >= during.arena >= 64 << 20


def test_reused_tokenizer_is_copied_not_trained(trained_model_dir, tmp_path, demo_dir):
    from seq2seq.config import ConfigError
    from seq2seq.tokenizer import JOINT_MODEL
    from seq2seq.training import prepare_tokenizer

    # Other training text and another vocabulary size: training would give a different model.
    text = (read_lines(demo_dir / "val.en.gz"), read_lines(demo_dir / "val.de.gz"))
    config = tiny_config(tmp_path / "run", demo_dir, f"tokenizer.reuse={trained_model_dir}", "tokenizer.vocab_size=90")
    tokenizer = prepare_tokenizer(config, tmp_path / "run", text, None)
    assert (tmp_path / "run" / JOINT_MODEL).read_bytes() == (trained_model_dir / JOINT_MODEL).read_bytes()
    assert tokenizer.src_vocab_size != 90

    separate = tiny_config(tmp_path / "sep", demo_dir, f"tokenizer.reuse={trained_model_dir}", "tokenizer.joint=false")
    with pytest.raises(ConfigError, match=r"tokenizer\.reuse: .* holds no spm\.src\.model or spm\.tgt\.model"):
        prepare_tokenizer(separate, tmp_path / "sep", text, None)


def test_time_budget_stops_and_can_be_raised(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=0.0001"))
    stopped = load_state(tmp_path)["progress"]
    assert stopped["step"] == 1 and stopped["finished"]
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=0.0001", "train.max_steps=3"))
    assert load_state(tmp_path)["progress"]["step"] == 1  # still out of time: nothing to do
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=10", "train.max_steps=3"))
    assert load_state(tmp_path)["progress"]["step"] == 3


def test_time_budget_keeps_room_for_the_final_validation(tmp_path, demo_dir, monkeypatch):
    import time

    from seq2seq import training

    real_evaluate = training.evaluate

    def slow_evaluate(*args, **kwargs):
        time.sleep(1.0)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", slow_evaluate)
    # 1.5 s: step 1 and its 1 s validation leave 0.4 s, less than a validation, so step 2 is the
    # last; without the reservation step 2 would start a validation that ends past the budget, then step 3.
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.eval_every=1", "train.max_minutes=0.025"))
    progress = load_state(tmp_path)["progress"]
    assert progress["step"] == 2 and progress["finished"]


def test_bf16_autocast_trains_on_cpu(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "train.bf16=true", "train.log_every=1"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["type"] == "train"]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]


def test_failed_save_stops_the_run(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training as training

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training, "save_state", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=2"))


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training as training

    real_loss = training.token_loss
    calls = {"n": 0}

    def sometimes_nan(model, features, tgt_out, label_smoothing):
        calls["n"] += 1
        loss = real_loss(model, features, tgt_out, label_smoothing)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(training, "token_loss", sometimes_nan)
    train(tiny_config(tmp_path / "one", demo_dir, "train.max_steps=4", "train.log_every=4"))
    record = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()][0]
    assert record["skipped_steps"] == 1 and record["loss"] == record["loss"]  # counted, and the mean stays finite

    def poisoned(model, features, tgt_out, label_smoothing):
        with torch.no_grad():
            model.decoder.generator.bias.fill_(float("inf"))
        return real_loss(model, features, tgt_out, label_smoothing)

    monkeypatch.setattr(training, "token_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"3 steps in a row .*decoder.generator.bias"):
        train(tiny_config(tmp_path / "two", demo_dir, "train.max_skipped_steps=3"))


def test_out_of_memory_batches_are_skipped(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training as training

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training, "token_loss", out_of_memory)
    with pytest.raises(MemoryError, match=r"2 batches in a row ran out of CUDA memory \(last: source \("):
        train(tiny_config(tmp_path, demo_dir, "train.max_skipped_steps=2"))
