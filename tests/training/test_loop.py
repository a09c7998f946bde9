"""The training loop (seq2seq/training/loop.py): seeded runs repeat, what a run directory holds, the time budget,
bf16 autocast, gradient clipping, and the steps it skips or stops at."""

import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch

from seq2seq.textfiles import read_lines
from seq2seq.training.loop import sampled_split, train
from seq2seq.training.resume import load_state

from conftest import tiny_config, tiny_tokenizer


def records(run_dir, kind):
    """metrics.jsonl's records of one type ("train" or "valid")."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def train_losses(run_dir):
    return [r["loss"] for r in records(run_dir, "train")]


@pytest.mark.slow
def test_two_seeded_runs_give_identical_losses(tmp_path, demo_dir):
    for name in ("a", "b"):
        train(tiny_config(tmp_path / name, demo_dir, "train.max_steps=6", "model.dropout=0.3", "model.word_dropout=0.1"))
    losses = train_losses(tmp_path / "a")
    assert len(losses) == 3
    assert losses == train_losses(tmp_path / "b")
    other = tiny_config(tmp_path / "c", demo_dir, "train.max_steps=6", "model.dropout=0.3", "model.word_dropout=0.1", "seed=2")
    train(other)
    assert train_losses(tmp_path / "c") != losses


@pytest.mark.slow
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


@pytest.mark.slow
def test_time_budget_stops_and_can_be_raised(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=0.0001"))
    stopped = load_state(tmp_path)["progress"]
    assert stopped["step"] == 1 and stopped["finished"]
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=0.0001", "train.max_steps=3"))
    assert load_state(tmp_path)["progress"]["step"] == 1  # still out of time: nothing to do
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=10", "train.max_steps=3"))
    assert load_state(tmp_path)["progress"]["step"] == 3


@pytest.mark.slow
def test_time_budget_keeps_room_for_the_final_validation(tmp_path, demo_dir, monkeypatch):
    from seq2seq.training import clock as run_clock
    from seq2seq.training import loop as training
    from seq2seq.training import validation

    # A fake clock, so the outcome does not depend on this machine's speed: a step takes 1 s,
    # a validation 60 s, and nothing else takes any time.
    now = [1000.0]
    monkeypatch.setattr(run_clock, "time", SimpleNamespace(monotonic=lambda: now[0]))
    real_loss, step_tokens = training.token_loss, []

    def one_second_step(model, features, tgt_out, label_smoothing):
        now[0] += 1.0
        step_tokens.append(int((tgt_out != 0).sum()))
        return real_loss(model, features, tgt_out, label_smoothing)

    def one_minute_validation(*args, **kwargs):
        now[0] += 60.0
        return {"loss": 1.0, "ppl": math.e, "bleu": 1.0, "bleu_signature": "fake"}

    monkeypatch.setattr(training, "token_loss", one_second_step)
    monkeypatch.setattr(validation, "evaluate", one_minute_validation)
    # 90 s: step 1 (1 s) and its validation (60 s) leave 29 s, less than a validation, so step 2
    # is the last; without the reservation step 2 (62 s) would start a validation that ends past
    # the budget, then a step 3.
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.eval_every=1", "train.max_minutes=1.5", "train.log_every=1"))
    progress = load_state(tmp_path)["progress"]
    assert progress["step"] == 2 and progress["finished"]
    assert progress["train_seconds"] == pytest.approx(122.0)
    assert [r["step"] for r in records(tmp_path, "valid")] == [1, 2]
    assert [r["elapsed_s"] for r in records(tmp_path, "valid")] == [61.0, 122.0]
    # A log window's seconds leave validation out: step 2's window is its 1 s of training, not 61 s.
    assert [r["tgt_tokens_per_s"] for r in records(tmp_path, "train")] == pytest.approx(step_tokens)


@pytest.mark.slow
def test_bf16_runs_the_training_forward_under_bf16_autocast(tmp_path, demo_dir, monkeypatch):
    """Runs on any CPU: the forward is stopped as it starts, before any bf16 kernel (which CPUs
    without bf16 instructions refuse for the LSTM) would run."""
    from seq2seq.data.batching import collate_pairs
    from seq2seq.training import setup as preparation
    from seq2seq.training.loop import epoch_batches, train_step
    from seq2seq.training.run import close_run
    from seq2seq.training.setup import start_run

    monkeypatch.setattr(preparation, "cpu_has_bf16", lambda: True)  # the check that would stop a CPU without bf16

    class Stop(Exception):
        pass

    def seen(bf16):
        config = tiny_config(tmp_path / str(bf16), demo_dir, f"train.bf16={str(bf16).lower()}")
        run, data, _ = start_run(config)
        state = {}

        def record_and_stop(module, args):
            state.update(enabled=torch.is_autocast_enabled("cpu"), dtype=torch.get_autocast_dtype("cpu"))
            raise Stop

        run.model.register_forward_pre_hook(record_and_stop)
        _, batches = epoch_batches(config, data, 1, 0, ladder=False)
        src, tgt = next(batches)
        with pytest.raises(Stop):
            train_step(run, collate_pairs(src, tgt, ladder=False), num_tokens=sum(len(t) + 1 for t in tgt))
        close_run(run)
        return state

    assert seen(True) == {"enabled": True, "dtype": torch.bfloat16}
    assert seen(False)["enabled"] is False


def test_bf16_on_a_cpu_without_bf16_is_a_recipe_error_before_anything_runs(tmp_path, demo_dir, monkeypatch):
    from seq2seq.config import ConfigError
    from seq2seq.training import setup as preparation

    monkeypatch.setattr(preparation, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(preparation, "open_run_dir", lambda *a: pytest.fail("the run directory was opened"))
    with pytest.raises(ConfigError, match=r"train\.bf16=true but this CPU has no bf16 instructions.*set train\.bf16=false or auto"):
        train(tiny_config(tmp_path / "run", demo_dir, "train.bf16=true"))


@pytest.mark.slow
@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no bf16 instructions (oneDNN refuses bf16 LSTM primitives)")
def test_bf16_autocast_trains_on_cpu(tmp_path, demo_dir, monkeypatch):
    from seq2seq.training import setup as preparation

    real_new_model, dtypes = preparation.new_model, set()

    def observed_model(*args, **kwargs):
        model = real_new_model(*args, **kwargs)
        model.bridge_h.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
        return model

    monkeypatch.setattr(preparation, "new_model", observed_model)
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "train.bf16=true", "train.log_every=1"))
    assert torch.bfloat16 in dtypes  # the model computed in bf16, not only under a bf16 flag
    losses = [r["loss"] for r in records(tmp_path, "train")]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_clip_norm_bounds_the_gradient_norm_of_every_update(tmp_path, demo_dir, monkeypatch):
    from seq2seq.training import setup as preparation

    real_new_optimizer, norms = preparation.new_optimizer, []

    def observed_optimizer(*args, **kwargs):
        optimizer = real_new_optimizer(*args, **kwargs)

        def record_norm(opt, args, kwargs):
            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())

        optimizer.register_step_pre_hook(record_norm)
        return optimizer

    monkeypatch.setattr(preparation, "new_optimizer", observed_optimizer)
    # An untrained model's gradient norm is far above 1e-3 (about 0.15): every update is clipped to exactly 1e-3.
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=3", "train.clip_norm=1e-3"))
    assert norms == pytest.approx([1e-3] * 3, rel=1e-3)


@pytest.mark.slow
def test_failed_save_stops_the_run(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training.validation as validation

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(validation, "save_state", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=2"))


@pytest.mark.slow
def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training.loop as training

    real_loss = training.token_loss
    calls = {"n": 0}

    def sometimes_nan(model, features, tgt_out, label_smoothing):
        calls["n"] += 1
        loss = real_loss(model, features, tgt_out, label_smoothing)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(training, "token_loss", sometimes_nan)
    train(tiny_config(tmp_path / "one", demo_dir, "train.max_steps=4", "train.log_every=4"))
    record = next(json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines())
    assert record["skipped_steps"] == 1 and record["loss"] == record["loss"]  # counted, and the mean stays finite

    def poisoned(model, features, tgt_out, label_smoothing):
        with torch.no_grad():
            model.decoder.generator.bias.fill_(float("inf"))
        return real_loss(model, features, tgt_out, label_smoothing)

    monkeypatch.setattr(training, "token_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"3 steps in a row .*decoder.generator.bias"):
        train(tiny_config(tmp_path / "two", demo_dir, "train.max_skipped_steps=3"))


@pytest.mark.slow
def test_out_of_memory_batches_are_skipped(tmp_path, demo_dir, monkeypatch, caplog):
    import seq2seq.training.loop as training

    real_loss = training.token_loss
    calls = {"n": 0}

    def out_of_memory_on_step_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training, "token_loss", out_of_memory_on_step_2)
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        train(tiny_config(tmp_path / "once", demo_dir, "train.max_steps=4", "train.log_every=1", "train.max_skipped_steps=2"))
    assert "step 2 skipped: CUDA out of memory (batch source (" in caplog.text
    logged = records(tmp_path / "once", "train")
    assert [(r["step"], r["skipped_steps"]) for r in logged] == [(1, 0), (2, 1), (3, 1), (4, 1)]  # skipped, counted, and on to the end
    assert all(r["loss"] > 0 and math.isfinite(r["loss"]) for r in logged if r["step"] != 2)
    progress = load_state(tmp_path / "once")["progress"]
    assert progress["step"] == 4 and progress["finished"] and progress["skipped_steps"] == 1
    assert [r["skipped_steps"] for r in records(tmp_path / "once", "valid")] == [1]

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training, "token_loss", out_of_memory)
    with pytest.raises(MemoryError, match=r"2 batches in a row ran out of CUDA memory \(last: source \("):
        train(tiny_config(tmp_path / "always", demo_dir, "train.max_skipped_steps=2"))


def test_subword_sampling_draws_each_epoch_from_the_seed_within_the_length_limit(tmp_path, demo_dir):
    from seq2seq.data.corpus import encode_split

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


def test_an_epoch_holds_the_joined_pairs_with_the_corpus(tmp_path, demo_dir):
    from seq2seq.training.loop import epoch_batches
    from seq2seq.training.run import close_run
    from seq2seq.training.setup import start_run

    def epoch_pairs(share: str) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        config = tiny_config(tmp_path / share, demo_dir, f"data.join_pairs={share}")
        run, data, _ = start_run(config)
        close_run(run)
        _, batches = epoch_batches(config, data, 1, 0, ladder=True)
        return [(tuple(s.tolist()), tuple(t.tolist())) for src, tgt in batches for s, t in zip(src, tgt)]

    plain, joined = epoch_pairs("0"), epoch_pairs("0.5")
    extra = set(joined) - set(plain)
    assert set(plain) <= set(joined) and len(extra) > len(plain) // 4
    target_of = dict(plain)

    def halves(src: tuple[int, ...], tgt: tuple[int, ...]) -> bool:
        """Whether the pair is two pairs of the corpus run together (the first's last piece dropped from both sides, or not)."""
        for k in range(1, len(src)):
            second = target_of.get(src[k:])
            if second is None or tgt[len(tgt) - len(second) :] != second:
                continue
            head_src, head_tgt = src[:k], tgt[: len(tgt) - len(second)]
            if target_of.get(head_src) == head_tgt or any(target_of.get(s) == t for s, t in plain if s[:-1] == head_src and t[:-1] == head_tgt):
                return True
        return False

    assert all(halves(s, t) for s, t in extra)
