"""seq2seq-export and the onnxruntime runtime (seq2seq/export/): the exported demo model translates byte for
byte as the torch model does, runs where torch cannot be imported, keeps one line out per line in, and
refuses bad directories, ensembles and options it does not implement with messages that say what to do."""

import copy
import dataclasses
import difflib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from seq2seq.cli.export import main as export_main
from seq2seq.export import EXPORT_FORMAT_VERSION
from seq2seq.inference.translator import PrefixError, Translator
from seq2seq.modeldir.checkpoint import load_model_dir
from seq2seq.modeldir.meta import CheckpointError
from seq2seq.options import SearchOptions
from seq2seq.textfiles import read_lines

from conftest import HOSTILE, tiny_config, tiny_tokenizer

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def target_dirs(tmp_path_factory, demo_dir) -> tuple[Path, Path]:
    """The LSTM fixture trained with an output layer over the training targets' pieces only
    (model.output_vocab=target, as the en-de recipe's), and its export, whose step graph computes
    those columns alone; the other fixtures' output layers cover the whole vocabulary."""
    from seq2seq.training.loop import train

    root = tmp_path_factory.mktemp("target")
    model_dir = train(tiny_config(root / "run", demo_dir, "model.output_vocab=target", "train.epochs=2", "train.valid_beam_size=2"))
    assert export_main(["--model", str(model_dir), "--output", str(root / "onnx"), "--quiet"]) == 0
    output_ids = json.loads((root / "onnx" / "export.json").read_text())["output_ids"]
    assert 4 < len(output_ids) < Translator.from_pretrained(model_dir, device="cpu").tokenizer.tgt_vocab_size
    return model_dir, root / "onnx"


@pytest.fixture(scope="module")
def five_hundred(demo_dir) -> list[str]:
    lines = [line for split in ("train", "val", "test") for line in read_lines(demo_dir / f"{split}.en.gz")]
    lines += [" ".join(reversed(line.split())) for line in lines[: 500 - len(lines)]]  # word salad: odd inputs too
    assert len(lines) == 500
    return lines


def texts(nbest) -> list[list[str]]:
    return [[h.text for h in hyps] for hyps in nbest]


@pytest.fixture(scope="module")
def runtime(exported) -> Translator:
    return Translator.from_pretrained(exported, threads=1)


# Controls on, and a forced prefix on every third sentence (one word, two words, or longer than the
# model's own outputs), against the torch search's `constrain`. no_repeat_ngram is held to the torch
# search below rather than here: on this barely trained model, which scores a permutation of tokens
# alike, it makes exact score ties that torch's topk breaks in its own order (tests/export/
# tests/decoding/test_numpy_constraints.py holds the rule itself to torch's, bit for bit).
CONTROLS = SearchOptions(beam_size=5, min_len_ratio=0.8, ban_unk=True)
PREFIXES = ["Der", "Die Frau", "Ein Mann sieht den Hund und die Katze und das Kind"]


@pytest.mark.parametrize(
    "options,prefixed",
    [(SearchOptions(beam_size=1), False), (SearchOptions(beam_size=5), False), (CONTROLS, True)],
    ids=["greedy", "beam5", "controls+prefixes"],
)
@pytest.mark.parametrize("vocabulary", ["whole", "target"])
def test_exported_translations_are_byte_identical_to_torch(translator, runtime, target_dirs, five_hundred, options, prefixed, vocabulary):
    if vocabulary == "target":
        translator, runtime = Translator.from_pretrained(target_dirs[0], device="cpu"), Translator.from_pretrained(target_dirs[1], threads=1)
    assert runtime.is_exported and runtime.meta == translator.meta
    prefixes = [PREFIXES[i // 3 % 3] if i % 3 == 0 else None for i in range(len(five_hundred))] if prefixed else None
    expected = translator.translate(five_hundred, options, batch_size=64, prefixes=prefixes)
    assert runtime.translate(five_hundred, options, batch_size=64, prefixes=prefixes) == expected
    assert (
        runtime.translate(five_hundred, options, batch_size=1, prefixes=prefixes) == expected
    )  # torch: batch 1 = batch 64 (tests/inference/test_translator.py)
    if prefixed:  # the controls and prefixes did something
        assert all(expected[i].startswith(PREFIXES[i // 3 % 3]) for i in range(0, len(five_hundred), 3))
        assert expected != translator.translate(five_hundred, SearchOptions(beam_size=5), batch_size=64)


def test_exported_no_repeat_ngram_matches_torch_up_to_ties(translator, runtime, five_hundred):
    options = SearchOptions(beam_size=5, no_repeat_ngram=2, min_len_ratio=0.5)
    torch_best = [hyps[0] for hyps in translator.translate_nbest(five_hundred, options, batch_size=64)]
    onnx_best = [hyps[0] for hyps in runtime.translate_nbest(five_hundred, options, batch_size=64)]
    same = [i for i, (a, b) in enumerate(zip(onnx_best, torch_best)) if a.text == b.text]
    # The rest took another branch at an exact tie, which torch's topk and the runtime's (lower index
    # first) break differently; 5 of 500 in the sitting of docs/logs/2026-11-30-export.md.
    assert len(same) >= 490, len(same)
    assert [onnx_best[i].score for i in same] == pytest.approx([torch_best[i].score for i in same], abs=1e-4)
    for h in onnx_best:
        bigrams = list(zip(h.tokens, h.tokens[1:]))
        assert len(set(bigrams)) == len(bigrams), h.tokens


def tiny_export(tmp_path_factory, demo_dir, name: str, override: str) -> tuple[Path, Path]:
    """A tiny model directory trained as the LSTM fixture with `override` (at a higher learning rate,
    so that it outputs words after two epochs), and its export."""
    from seq2seq.training.loop import train

    root = tmp_path_factory.mktemp(name)
    model_dir = train(tiny_config(root / "run", demo_dir, override, "train.epochs=2", "train.lr=0.01", "train.valid_beam_size=2"))
    assert export_main(["--model", str(model_dir), "--output", str(root / "onnx"), "--quiet"]) == 0
    return model_dir, root / "onnx"


def assert_translates_as_torch(model_dir: Path, exported: Path, sentences: list[str]) -> None:
    """Beam 5, at batch 64 and alone: the exported directory's translations are torch's."""
    torch_model, onnx_model = Translator.from_pretrained(model_dir, device="cpu"), Translator.from_pretrained(exported, threads=1)
    options = SearchOptions(beam_size=5)
    expected = torch_model.translate(sentences, options, batch_size=64)
    assert len(set(expected)) > 20  # it translates, differently for different sentences
    assert onnx_model.translate(sentences, options, batch_size=64) == expected
    assert onnx_model.translate(sentences, options, batch_size=1) == expected


@pytest.fixture(scope="module")
def gru_dirs(tmp_path_factory, demo_dir) -> tuple[Path, Path]:
    return tiny_export(tmp_path_factory, demo_dir, "gru", "model.cell=gru")


def test_exported_gru_is_byte_identical_to_torch(gru_dirs, five_hundred):
    model_dir, exported = gru_dirs
    state = list(json.loads((exported / "export.json").read_text())["state_batch_axes"])
    assert state == ["h"]  # a GRU has no cell state c (input feeding is off in the demo recipe)
    assert_translates_as_torch(model_dir, exported, five_hundred[:150])


@pytest.fixture(scope="module")
def context_dirs(tmp_path_factory, demo_dir) -> tuple[Path, Path]:
    return tiny_export(tmp_path_factory, demo_dir, "context", "model.attention=none")


def test_exported_context_vector_model_is_byte_identical_to_torch(context_dirs, five_hundred):
    """Without attention (the context vector alone) the step graph gives each sentence's context
    vector to the sentence's K rows."""
    model_dir, exported = context_dirs
    assert json.loads((exported / "export.json").read_text())["memory_names"] == ["context"]
    assert_translates_as_torch(model_dir, exported, five_hundred[:150])


@pytest.mark.parametrize("vocabulary", ["whole", "target"])
def test_the_step_graphs_top_k_and_log_norm_are_the_searchs(vocabulary, exported, target_dirs, five_hundred):
    """On real decoder steps the graph's top k equals `_topk` of the logits with PAD and BOS forbidden
    (what the search takes on other steps), for k = 1, 5 and 12, and its log_norm is their log-sum-exp;
    logits outside the output vocabulary are -inf, as torch's."""
    import numpy as np
    import torch

    from seq2seq.decoding.numpy_search import _topk
    from seq2seq.tokenizer import BOS_ID, PAD_ID, pad_with_eos

    runtime = Translator.from_pretrained(exported if vocabulary == "whole" else target_dirs[1], threads=1)
    model = runtime.model
    sources = [np.array(ids, dtype=np.int64) for ids in runtime.tokenizer.encode_src(five_hundred[:40])]
    memory, state = model.start(*pad_with_eos(sources))
    y = np.full(40, BOS_ID, dtype=np.int64)
    for _ in range(4):
        step = model.step(y, state, memory)
        logits, log_norm, next_state = step.logits, step.log_norm, step.state
        assert logits.shape == (40, runtime.tokenizer.tgt_vocab_size)
        outside = np.ones(logits.shape[1], dtype=bool)
        outside[list(model.meta.output_ids or range(logits.shape[1]))] = False
        assert np.isneginf(logits[:, outside]).all() and np.isfinite(logits[:, ~outside]).all()
        np.testing.assert_allclose(log_norm, torch.logsumexp(torch.from_numpy(logits), dim=-1, keepdim=True).numpy(), rtol=0, atol=1e-5)
        forbidden = logits.copy()
        forbidden[:, [PAD_ID, BOS_ID]] = -np.inf
        for k in (1, 5, 12):
            top = model.step_top(y, state, memory, k)
            assert top.logits is None
            (values, ids), top_log_norm, top_state = top.top, top.log_norm, top.state
            expected_values, expected_ids = _topk(forbidden, k)
            np.testing.assert_array_equal(ids, expected_ids)
            np.testing.assert_array_equal(values, expected_values)
            np.testing.assert_array_equal(top_log_norm, log_norm)
            assert all(np.array_equal(top_state[name], next_state[name]) for name in next_state)
        state, y = next_state, expected_ids[:, 0]


# Every decoding option, set off its default, gives the exported search the torch search's translations,
# or says here why it is held elsewhere: a SearchOptions field in neither dict fails the test below, so a
# new option cannot be left out of the numpy search unnoticed.
OFF_DEFAULT = {
    "beam_size": 3,
    "nbest": 2,
    "length_penalty": 0.6,
    "max_len_ratio": 0.8,
    "max_len_offset": 3,
    "early_stop": False,
    "min_len_ratio": 0.8,
    "ban_unk": True,
    "repetition_penalty": 1.3,
}
HELD_ELSEWHERE = {
    "mode": "sampling draws from numpy's generator, not torch's: same distribution, other samples (test_exported_sampling_*)",
    "temperature": "sampling",
    "top_k": "sampling",
    "top_p": "sampling (its nucleus: tests/decoding/test_numpy_constraints.py)",
    "seed": "sampling",
    "no_repeat_ngram": "exact score ties on this barely trained model (see CONTROLS); the rule is held bit for bit in tests/decoding",
}


def test_every_decoding_option_translates_as_torch_does(translator, runtime, five_hundred):
    """The best translations agree but where torch's two best differ by less than 1e-5 in score: this
    barely trained model scores permutations of pieces nearly alike, and the graphs' float32 logits
    are not torch's to the last bit. (On the demo recipe's model, 1,000 test_2016_flickr lines with
    repetition_penalty 0.8, 1.3 and 2.0 gave 0 differing lines: docs/logs/2026-12-06-repetition-penalty.md.)"""
    assert set(OFF_DEFAULT) | set(HELD_ELSEWHERE) == {f.name for f in dataclasses.fields(SearchOptions)}
    for name, value in OFF_DEFAULT.items():
        options = SearchOptions(**{"nbest": 2, name: value})
        theirs, mine = translator.translate_nbest(five_hundred[:120], options), runtime.translate_nbest(five_hundred[:120], options)
        differ = [i for i in range(120) if mine[i][0].text != theirs[i][0].text]
        assert all(abs(theirs[i][0].score - theirs[i][1].score) < 1e-5 and mine[i][0].text == theirs[i][1].text for i in differ), name
        assert len(differ) <= 2, (name, differ)


def test_exported_nbest_scores_match_torch(translator, runtime, five_hundred):
    options = SearchOptions(beam_size=5, nbest=5, length_penalty=0.6, early_stop=False, max_len_ratio=1.0, max_len_offset=2)
    torch_nbest = translator.translate_nbest(five_hundred[:60], options)
    onnx_nbest = runtime.translate_nbest(five_hundred[:60], options)
    assert [[h.text for h in hyps] for hyps in onnx_nbest] == [[h.text for h in hyps] for hyps in torch_nbest]
    assert [[h.tokens for h in hyps] for hyps in onnx_nbest] == [[h.tokens for h in hyps] for hyps in torch_nbest]
    for mine, theirs in zip(onnx_nbest, torch_nbest):
        assert [h.score for h in mine] == pytest.approx([h.score for h in theirs], abs=1e-4)


def test_exported_sampling_is_seeded_and_batch_independent(runtime, five_hundred):
    sentences = five_hundred[:12]
    options = SearchOptions(mode="sample", nbest=3, temperature=1.5, top_k=20, seed=7)
    first = runtime.translate_nbest(sentences, options, batch_size=4)
    # The batch does not change what is drawn (onnxruntime's kernels may change a score's last bit, not a draw).
    assert texts(runtime.translate_nbest(sentences, options, batch_size=12)) == texts(first)
    assert texts(runtime.translate_nbest(sentences[3:4], options)) == texts(first[3:4])
    assert texts(runtime.translate_nbest(sentences, options, batch_size=4)) == texts(first)
    other = runtime.translate_nbest(sentences, SearchOptions(mode="sample", nbest=3, temperature=1.5, top_k=20, seed=8))
    assert texts(other) != texts(first)  # the seed is used
    for hyps in first:
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_exported_prefixes_are_checked_as_torch_checks_them(runtime):
    # export.json's output-vocabulary mask (model.output_vocab=target) refuses a prefix through a piece outside it.
    restricted = copy.copy(runtime)
    restricted.backend = replace(runtime.backend, model=copy.copy(runtime.model))
    banned = runtime.tokenizer.encode_tgt(["Hund"])[0][-1]
    restricted.model.meta = replace(runtime.model.meta, output_ids=tuple(i for i in range(runtime.model.meta.tgt_vocab_size) if i != banned))
    with pytest.raises(PrefixError, match=r"prefixes\[1\] 'Ein Hund' has pieces this model never outputs") as err:
        restricted.translate(["The cat sleeps.", "A dog runs."], prefixes=[None, "Ein Hund"])
    assert err.value.index == 1
    # Sampling takes prefixes and top_p too.
    sampled = runtime.translate_nbest(["A dog runs."], SearchOptions(mode="sample", nbest=3, top_p=0.9, min_len_ratio=0.5), prefixes=["Ein großer Hund"])
    assert all(h.text.startswith("Ein großer Hund") for h in sampled[0])


def without_torch(tmp_path: Path) -> dict[str, str]:
    """An environment in which torch, yaml, tqdm, safetensors, datasets and sacrebleu raise ImportError:
    none is in a runtime-only environment."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for name in ("torch", "yaml", "tqdm", "safetensors", "datasets", "sacrebleu"):
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    return {**ENV, "PYTHONPATH": str(blocked)}


def test_runtime_translates_where_torch_cannot_be_imported(exported, translator, tmp_path):
    env = without_torch(tmp_path)
    code = (
        "import sys; from seq2seq import Translator; "
        f"t = Translator.from_pretrained({str(exported)!r}); print(t.translate(['The dog sees the cat.'])[0]); "
        "assert not {'torch', 'yaml'} & set(sys.modules), sorted(sys.modules)"
    )
    api = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert api.returncode == 0, api.stderr.decode()
    assert api.stdout.decode().strip() == translator.translate(["The dog sees the cat."])[0]
    cli = subprocess.run(
        [BIN / "seq2seq-translate", "--model", str(exported), "--quiet"], input=b"The dog sees the cat.\n", capture_output=True, env=env, timeout=120
    )
    assert cli.returncode == 0, cli.stderr.decode()
    assert cli.stdout == api.stdout


def test_the_server_serves_an_exported_model_where_torch_cannot_be_imported(exported, five_hundred, tmp_path):
    from serve.serving import post_json, running_server, translate_cli

    lines = five_hundred[:20]
    with running_server(exported, tmp_path / "serve.log", env=without_torch(tmp_path)) as server:
        reply = post_json(server.url + "/translate", {"q": lines, "source": "en", "target": "de", "format": "text"})
        ready = post_json(server.url + "/v1/translate", {"q": lines[:2], "beam_size": 1})
    assert reply.status == 200, reply.body
    assert "\n".join(reply.json()["translatedText"]) + "\n" == translate_cli(exported, lines).decode()
    assert ready.status == 200 and len(ready.json()["translations"]) == 2, ready.body


def test_hostile_input_keeps_one_line_per_line_as_torch_does(exported, trained_model_dir):
    data = b"\n".join(HOSTILE)

    def cli(model: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [BIN / "seq2seq-translate", "--model", str(model), "--quiet", "--beam-size", "3"], input=data, capture_output=True, env=ENV, timeout=120
        )

    onnx, torch_out = cli(exported), cli(trained_model_dir)
    assert onnx.returncode == 0, onnx.stderr.decode()
    assert onnx.stdout.count(b"\n") == len(HOSTILE)
    assert onnx.stdout == torch_out.stdout


def test_small_steps_run_in_a_one_thread_session(exported, five_hundred):
    """With several threads, steps of few rows (batch 1) go to a one-thread session of the same graph."""
    from seq2seq.export.runtime import SMALL_STEP_ROWS

    several, one = Translator.from_pretrained(exported, threads=2), Translator.from_pretrained(exported, threads=1)
    assert several.model.steps.small is not None and one.model.steps.small is None
    calls = []
    several.model.steps.small.run = lambda *a, real=several.model.steps.small.run: calls.append(1) or real(*a)
    assert several.translate(five_hundred[:20], batch_size=1) == one.translate(five_hundred[:20], batch_size=1)
    assert calls and SearchOptions().beam_size <= SMALL_STEP_ROWS


def test_several_batches_are_searched_at_once_each_on_one_thread(exported, five_hundred):
    """threads=2: batches go two at a time to the one-thread sessions, from two threads, and every
    sentence translates as with one thread; a lone batch keeps the sessions of two threads."""
    several, one = Translator.from_pretrained(exported, threads=2), Translator.from_pretrained(exported, threads=1)
    assert several.model.workers == 2 and one.model.workers == 1 and one.model.one_thread is None
    twin = several.model.one_thread
    # Both searches must be in a step at the same time to pass the barrier; one after the other, it times out.
    barrier, callers = threading.Barrier(2, timeout=30), set()

    def step(outputs, feeds, real=twin.steps.large.run):
        if threading.get_ident() not in callers:
            callers.add(threading.get_ident())
            barrier.wait()
        return real(outputs, feeds)

    twin.steps.large.run = step
    options = SearchOptions(beam_size=3, nbest=2)
    assert texts(several.translate_nbest(five_hundred[:60], options, batch_size=10)) == texts(one.translate_nbest(five_hundred[:60], options, batch_size=10))
    assert len(callers) == 2 and threading.get_ident() not in callers
    del twin.steps.large.run
    callers.clear()
    several.model.steps.large.run = lambda outputs, feeds, real=several.model.steps.large.run: callers.add("wide") or real(outputs, feeds)
    several.translate(five_hundred[:10], batch_size=10)
    assert callers == {"wide"}


def test_a_batch_of_mixed_lengths_is_encoded_in_calls_of_similar_length(exported, five_hundred, monkeypatch):
    """The encoder runs once per group of similar length (seq2seq.export.runtime.length_groups) and the
    memory is put back in order, zero-padded: the same translations, tokens and scores as one call."""
    import seq2seq.export.runtime as runtime_module

    one = Translator.from_pretrained(exported, threads=1)
    calls = []
    one.model.encoder.run = lambda outputs, feeds, real=one.model.encoder.run: calls.append(feeds["src"].shape) or real(outputs, feeds)
    mixed = sorted(five_hundred[:40], key=len)[::5] + [" ".join(five_hundred[:3])]  # short to long, and one much longer
    options = SearchOptions(beam_size=3, nbest=2)

    def records(batch_size: int) -> list:
        return [[(h.text, h.tokens, h.score) for h in hyps] for hyps in one.translate_nbest(mixed, options, batch_size=batch_size)]

    monkeypatch.setattr(runtime_module, "ENCODER_CALL_POSITIONS", 10**9)
    whole = records(len(mixed))
    assert len(calls) == 1
    calls.clear()
    monkeypatch.setattr(runtime_module, "ENCODER_CALL_POSITIONS", 0)  # a call is free: each distinct length gets its own
    assert records(len(mixed)) == whole
    assert len(calls) > 2 and max(shape[1] for shape in calls) > min(shape[1] for shape in calls)
    assert [[h[:2] for h in hyps] for hyps in records(1)] == [[h[:2] for h in hyps] for hyps in whole]  # alone, as in the batch


def test_the_step_graph_reads_a_sentences_memory_once_and_older_formats_once_per_row(exported, tmp_path, five_hundred):
    """Format 4's step graph reads one memory row per sentence for its K rows; a format 3 directory's
    graph, one per row, is given a copy for each row, and translates alike."""
    older = tmp_path / "format-3"
    shutil.copytree(exported, older)
    meta = json.loads((older / "export.json").read_text())
    del meta["memory_per_sentence"]
    (older / "export.json").write_text(json.dumps({**meta, "export_format_version": 3}))
    shapes, got = {}, {}
    for name, directory in (("now", exported), ("older", older)):
        translator = Translator.from_pretrained(directory, threads=1)
        session, seen = translator.model.steps.large, shapes.setdefault(name, set())
        session.run = lambda outputs, feeds, real=session.run, seen=seen: seen.add((len(feeds["y"]), len(feeds["mask"]))) or real(outputs, feeds)
        got[name] = texts(translator.translate_nbest(five_hundred[:40], SearchOptions(beam_size=5, nbest=2), batch_size=20))
    assert got["now"] == got["older"]
    assert (100, 20) in shapes["now"] and all(rows in (sentences, 5 * sentences) for rows, sentences in shapes["now"])
    assert all(rows == sentences for rows, sentences in shapes["older"]) and (100, 100) in shapes["older"]


def test_int8_export_translates(trained_model_dir, tmp_path, five_hundred, translator, monkeypatch, caplog):
    out = tmp_path / "int8"
    assert export_main(["--model", str(trained_model_dir), "--output", str(out), "--quantize", "int8", "--shortlist", "--quiet"]) == 0
    meta = json.loads((out / "export.json").read_text())
    assert (meta["quantize"], meta["weight_bits"]) == ("int8", 7)
    # An int8 directory of format 5 has 8-bit weights: where the CPU saturates their products, loading it says to export again.
    older = tmp_path / "format-5"
    shutil.copytree(out, older)
    del meta["weight_bits"]
    (older / "export.json").write_text(json.dumps({**meta, "export_format_version": 5}))
    import seq2seq.export.runtime as runtime_module

    for saturates, directory, warned in ((True, out, False), (True, older, True), (False, older, False)):
        monkeypatch.setattr(runtime_module, "int8_products_saturate", lambda saturates=saturates: saturates)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="seq2seq"):
            Translator.from_pretrained(directory)
        assert ("int8 weights of 8 bits" in caplog.text and "seq2seq-export --quantize int8" in caplog.text) == warned, caplog.text
    import onnx

    # Every product with a weight is an int8 one, the output layer's and the encoder LSTM's included.
    for name in ("encoder.onnx", "decoder_step.onnx", "decoder_step_shortlist.onnx"):
        graph = onnx.load(out / name).graph
        weights = {w.name for w in graph.initializer}
        for node in graph.node:  # what is computed from weights alone is a weight too (the exporter's Transpose of one)
            if node.op_type == "Constant" or (node.input and all(i in weights for i in node.input)):
                weights.update(node.output)
        assert any(node.op_type == "MatMulIntegerToFloat" for node in graph.node)
        assert not [node.name for node in graph.node if node.op_type in ("MatMul", "Gemm", "LSTM") and weights.intersection(node.input)]
    # The step graphs look the decoder's first input product up in a table of int8 rows (the embedding folded in).
    for name in ("decoder_step.onnx", "decoder_step_shortlist.onnx"):
        graph = onnx.load(out / name).graph
        int8 = {w.name for w in graph.initializer if w.data_type == onnx.TensorProto.INT8}
        assert [n for n in graph.node if n.op_type == "Gather" and n.input[0] in int8]
    # The shortlist's step graph takes its output layer as int8 columns and their scales.
    inputs = {i.name for i in onnx.load(out / "decoder_step_shortlist.onnx").graph.input}
    assert inputs >= {"output_weight_q", "output_weight_scale", "output_bias"} and not inputs & {"output_weight", "never"}
    assert sorted(np.load(out / "output_layer.npz").files) == ["output_bias", "output_weight_q", "output_weight_scale"]

    runtime = Translator.from_pretrained(out, shortlist=False)
    assert runtime.precision == "int8"
    sentences = five_hundred[:100]
    got = runtime.translate(sentences)
    # Quantized weights change a few characters, not the model. The fixture's model repeats one piece,
    # so a line often differs by where it stops: the lines are compared by their characters (int8 with
    # 7-bit weights: 0.99; 8-bit weights on a CPU without VNNI, which saturated: empty lines, 0).
    similar = np.mean([difflib.SequenceMatcher(None, a, b).ratio() for a, b in zip(got, translator.translate(sentences))])
    assert len(got) == 100 and similar >= 0.9, similar
    # Each row has its own scale: a sentence translates the same alone as in a batch (onnxruntime's
    # per-tensor dynamic quantization changed 22 of 300 test lines on the recipe's model).
    assert runtime.translate(sentences, batch_size=64) == [runtime.translate([s])[0] for s in sentences]
    shortlisted = Translator.from_pretrained(out)
    assert shortlisted.translate(sentences, batch_size=64) == [shortlisted.translate([s])[0] for s in sentences]


def test_bad_directories_say_what_to_do(exported, tmp_path, trained_model_dir, demo_dir, capsys):
    def broken(name: str) -> Path:
        copy = tmp_path / name
        shutil.copytree(exported, copy)
        return copy

    incomplete = broken("incomplete")
    (incomplete / "decoder_step.onnx").unlink()
    with pytest.raises(CheckpointError, match=r"has no decoder_step\.onnx; it is not a complete exported model \(run seq2seq-export again"):
        Translator.from_pretrained(incomplete)

    newer = broken("newer")
    meta = json.loads((newer / "export.json").read_text())
    (newer / "export.json").write_text(json.dumps({**meta, "export_format_version": 99}))
    with pytest.raises(CheckpointError, match=f"export format version 99; this seq2seq reads versions up to {EXPORT_FORMAT_VERSION}: upgrade the package"):
        Translator.from_pretrained(newer)
    older = broken("older")  # format 1's step graph has no log_norm or top k
    (older / "export.json").write_text(json.dumps({**meta, "export_format_version": 1}))
    with pytest.raises(
        CheckpointError,
        match=f"export format version 1, from an older seq2seq; this one reads versions 2 to {EXPORT_FORMAT_VERSION}: run seq2seq-export on the model directory again",
    ):
        Translator.from_pretrained(older)

    other_tokenizer = broken("other-tokenizer")
    tiny_tokenizer(tmp_path / "spm", demo_dir, seed=5)
    shutil.copy(tmp_path / "spm" / "spm.model", other_tokenizer / "spm.model")
    with pytest.raises(CheckpointError, match="the tokenizer does not match the graphs"):
        Translator.from_pretrained(other_tokenizer)

    with pytest.raises(ValueError, match="runs on the CPU"):
        Translator.from_pretrained(exported, device="cuda")
    with pytest.raises(CheckpointError, match="cannot join an ensemble"):
        Translator.from_pretrained([exported, trained_model_dir])

    with pytest.raises(CheckpointError, match=r"is an exported model \(seq2seq-export\): it translates"):
        load_model_dir(exported)  # what training, averaging and seq2seq-export read

    assert export_main(["--model", str(trained_model_dir), str(trained_model_dir), "--output", str(tmp_path / "ens")]) == 2
    assert "an ensemble of 2 cannot be exported" in capsys.readouterr().err
    assert export_main(["--model", str(trained_model_dir), "--output", str(trained_model_dir)]) == 2
    assert "holds a model directory; export into a new directory" in capsys.readouterr().err


def test_a_shortlist_scores_each_sentences_own_pieces(trained_model_dir, demo_dir, tmp_path, five_hundred, runtime):
    from seq2seq.export.shortlist import Shortlist, learn_shortlist
    from seq2seq.textfiles import read_lines

    out, from_files = tmp_path / "shortlisted", tmp_path / "from-files"
    assert export_main(["--model", str(trained_model_dir), "--output", str(out), "--shortlist", "--quiet"]) == 0  # the corpus config.json names
    assert json.loads((out / "export.json").read_text())["shortlist"] == "shortlist.npz"
    files = [str(demo_dir / "train.en.gz"), str(demo_dir / "train.de.gz")]
    assert export_main(["--model", str(trained_model_dir), "--output", str(from_files), "--shortlist", *files, "--quiet"]) == 0
    assert not (tmp_path / "plain").exists() and {"decoder_step_shortlist.onnx", "output_layer.npz"} <= {p.name for p in out.iterdir()}
    for name in ("frequent", "offsets", "candidates"):  # the same pairs either way
        np.testing.assert_array_equal(getattr(Shortlist.load(out / "shortlist.npz"), name), getattr(Shortlist.load(from_files / "shortlist.npz"), name))
    # A small shortlist, which leaves out most of this tiny vocabulary.
    tok = runtime.tokenizer
    pairs = tok.encode_src(read_lines(files[0])), tok.encode_tgt(read_lines(files[1]))
    small = learn_shortlist(*pairs, src_vocab_size=tok.src_vocab_size, tgt_vocab_size=tok.tgt_vocab_size, frequent=15, per_source=3)
    small.save(out / "shortlist.npz")
    shortlisted = Translator.from_pretrained(out, threads=1)
    sentences = five_hundred[:60]
    # Samples (of many pieces, where this barely trained model's beams repeat a few) hold only their sentence's shortlist.
    sampled = shortlisted.translate_nbest(sentences, SearchOptions(mode="sample", nbest=3, temperature=1.5, seed=3), batch_size=20)
    own = [set(small.ids(np.array(ids)).tolist()) for ids in tok.encode_src(sentences)]
    drawn = [{tok.tgt.piece_to_id(p) for h in hyps for p in h.tokens} for hyps in sampled]
    assert all(pieces <= allowed for pieces, allowed in zip(drawn, own)) and len(set().union(*drawn)) > 40
    assert max(len(a) for a in own) < 0.5 * len(runtime.model.meta.output_ids or range(tok.tgt_vocab_size))
    # Each sentence scores its own shortlist, whatever its batch: alone as in a batch of 20 (the
    # log-sum-exp over the batch's columns may change a score's last bit, as onnxruntime's kernels do).
    options = SearchOptions(beam_size=5, nbest=3, min_len_ratio=0.5)
    got = shortlisted.translate_nbest(sentences, options, batch_size=20)
    assert texts(got) == [texts(shortlisted.translate_nbest([s], options))[0] for s in sentences]
    assert texts(sampled) == [texts(shortlisted.translate_nbest([s], SearchOptions(mode="sample", nbest=3, temperature=1.5, seed=3)))[0] for s in sentences]
    full = runtime.translate_nbest(sentences, options)
    assert [[h.score for h in hyps] for hyps in got] != [[h.score for h in hyps] for hyps in full]  # normalised over fewer pieces
    unlisted = Translator.from_pretrained(out, threads=1, shortlist=False).translate_nbest(sentences, options)
    assert [[(h.text, h.score) for h in hyps] for hyps in unlisted] == [[(h.text, h.score) for h in hyps] for hyps in full]  # and switched off, nothing
    # A format 2 directory (before shortlists) reads as one without; a shortlist's file missing is named.
    older = tmp_path / "format-2"
    shutil.copytree(out, older)
    meta = json.loads((older / "export.json").read_text())
    del meta["shortlist"]
    (older / "export.json").write_text(json.dumps({**meta, "export_format_version": 2}))
    assert Translator.from_pretrained(older, threads=1).translate(sentences) == [t[0].text for t in runtime.translate_nbest(sentences)]
    (out / "output_layer.npz").rename(tmp_path / "aside.npz")
    with pytest.raises(CheckpointError, match=r"has no output_layer\.npz, which its shortlist needs"):
        Translator.from_pretrained(out)
    (tmp_path / "aside.npz").rename(out / "output_layer.npz")
    # A forced prefix is scored though its pieces are outside the sentence's shortlist.
    outside = next(i for i in range(4, tok.tgt_vocab_size) if i not in own[0] and tok.encode_tgt(tok.decode_tgt([[i]]))[0] == [i])
    prefix = tok.decode_tgt([[outside]])[0]
    assert shortlisted.translate(sentences[:1], prefixes=[prefix])[0].startswith(prefix)
    # ... and by that sentence alone: its neighbour in the batch still may not score it.
    from seq2seq.tokenizer import pad_with_eos

    src, src_len = pad_with_eos([np.array(ids) for ids in tok.encode_src(sentences[:2])])
    memory, _ = shortlisted.model.start(src, src_len, [[outside], None])
    column = int(np.searchsorted(memory.ids, outside))
    assert memory.ids[column] == outside and np.isfinite(memory.rows["output_bias"][0, column]) and memory.rows["output_bias"][1, column] == -np.inf


def test_shortlist_files_must_be_a_pair(trained_model_dir, demo_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        export_main(["--model", str(trained_model_dir), "--output", str(tmp_path / "one"), "--shortlist", str(demo_dir / "train.en.gz")])
    assert "--shortlist takes no file" in capsys.readouterr().err
    short = tmp_path / "short.de"
    short.write_text("Ein Hund.\n")
    args = ["--model", str(trained_model_dir), "--output", str(tmp_path / "two"), "--shortlist", str(demo_dir / "train.en.gz"), str(short)]
    assert export_main(args) == 2
    assert "have 400 and 1 lines" in capsys.readouterr().err
