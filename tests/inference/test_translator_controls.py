"""The decoding controls through the Translator API and seq2seq-translate: forced prefixes (the
`prefixes` argument and --input-type json), the control flags, and their validation errors, which
name the flag."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from seq2seq.cli.translate import main as translate_main
from seq2seq.inference.translator import PrefixError
from seq2seq.options import SearchOptions

BIN = Path(sys.executable).parent
SENTENCES = ["The small woman gives the child an apple.", "We see the red dogs.", "The man reads a book because he laughs."]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--top-p", "0"], "--top-p must be a number > 0 and <= 1"),
        (["--top-p", "1.5"], "--top-p must be a number > 0 and <= 1"),
        (["--no-repeat-ngram", "-1"], "--no-repeat-ngram must be an integer >= 0"),
        (["--min-len-ratio", "-0.5"], "--min-len-ratio must be a number >= 0"),
    ],
)
def test_control_flags_are_checked_naming_the_flag(flags, named, capsys):
    with pytest.raises(SystemExit) as stop:
        translate_main(["--model", "never-loaded", *flags])
    assert stop.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.slow
def test_prefixes_start_the_translation_and_search_goes_on(translator):
    options = SearchOptions(beam_size=4, nbest=3)
    prefixes = ["Ein großer Hund", "Die Frau", None]
    plain = translator.translate_nbest(SENTENCES, options)
    forced = translator.translate_nbest(SENTENCES, options, prefixes=prefixes)
    assert [h.text for h in forced[2]] == [h.text for h in plain[2]]  # no prefix: as without prefixes
    for prefix, p_hyps, f_hyps in zip(prefixes[:2], plain, forced):
        pieces = translator.tokenizer.tgt_pieces(translator.tokenizer.encode_tgt([prefix])[0])
        assert not p_hyps[0].text.startswith(prefix)  # so the prefix did force something
        assert len(f_hyps) == 3 and len({h.text for h in f_hyps}) == 3
        for h in f_hyps:
            assert h.text.startswith(prefix) and h.tokens[: len(pieces)] == pieces
        assert any(len(h.tokens) > len(pieces) for h in f_hyps)  # search went on after the prefix
    # One sentence, one result, whatever the batch. (That the prefix counts in the score is tested in test_constraints.)
    alone = [translator.translate_nbest([s], options, prefixes=[p])[0] for s, p in zip(SENTENCES, prefixes)]
    assert [[h.text for h in hyps] for hyps in alone] == [[h.text for h in hyps] for hyps in forced]
    sampled = translator.translate_nbest(SENTENCES[:2], SearchOptions(mode="sample", nbest=3, top_p=0.9), prefixes=[None, "Ein großer Hund"])
    assert all(h.text.startswith("Ein großer Hund") for h in sampled[1])


@pytest.mark.slow
def test_prefixes_are_checked(translator):
    with pytest.raises(TypeError, match="prefixes must be a list of one string"):
        translator.translate(SENTENCES, prefixes=["Ein"])
    with pytest.raises(TypeError, match=r"prefixes\[1\] must be a str or None; got int"):
        translator.translate(SENTENCES[:2], prefixes=[None, 3])
    # A model whose output layer leaves out pieces (model.output_vocab=target) cannot be forced through them.
    restricted = copy.copy(translator)
    restricted.backend = dataclasses.replace(translator.backend, model=copy.deepcopy(translator.model))
    ids = translator.tokenizer.encode_tgt(["Hund"])[0]
    mask = torch.ones(translator.tokenizer.tgt_vocab_size, dtype=torch.bool)
    mask[ids[-1]] = False
    restricted.model.decoder.output_mask = mask
    with pytest.raises(PrefixError, match=r"prefixes\[1\] 'Ein Hund' has pieces this model never outputs") as err:
        restricted.translate(SENTENCES[:2], prefixes=[None, "Ein Hund"])
    assert err.value.index == 1


@pytest.mark.slow
def test_control_flags_of_the_command(trained_model_dir, translator, tmp_path, capsys):
    flags = ["--no-repeat-ngram", "1", "--ban-unk", "--min-len-ratio", "1.5", "--beam-size", "3"]
    source = tmp_path / "in.en"
    source.write_text("".join(s + "\n" for s in SENTENCES))
    assert translate_main(["--model", str(trained_model_dir), "--output-type", "json", "--input", str(source), "--quiet", *flags]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    options = SearchOptions(beam_size=3, no_repeat_ngram=1, ban_unk=True, min_len_ratio=1.5)
    assert [r["hypotheses"][0]["text"] for r in records] == translator.translate(SENTENCES, options)
    for sentence, record in zip(SENTENCES, records):
        tokens = record["hypotheses"][0]["tokens"]
        assert len(tokens) == len(set(tokens)) and "<unk>" not in tokens
        assert len(tokens) >= math.ceil(1.5 * len(translator.tokenizer.encode_src([sentence])[0]))


@pytest.mark.slow
def test_json_input_carries_prefixes(trained_model_dir, translator, tmp_path, capsys):
    requests = [
        {"source": SENTENCES[0], "prefix": "Ein großer Hund"},
        {"source": SENTENCES[1]},
        {"source": "", "prefix": "Der"},
        {"source": SENTENCES[2], "prefix": None},
    ]
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests), encoding="utf-8")
    assert translate_main(["--model", str(trained_model_dir), "--input-type", "json", "--input", str(source), "--quiet"]) == 0
    expected = translator.translate([SENTENCES[0], SENTENCES[1], "", SENTENCES[2]], prefixes=["Ein großer Hund", None, "Der", None])
    assert capsys.readouterr().out.splitlines() == expected
    assert expected[0].startswith("Ein großer Hund") and expected[2] == ""  # an empty source gives an empty line, prefix or not
    bad = tmp_path / "bad.jsonl"
    for text, message in [
        ('{"source": "A dog."}\nnot json\n', "line 2: not JSON"),
        ('{"text": "A dog."}\n', 'line 1: expected an object with a string "source"'),
        ('{"source": "A dog.", "prefx": "Ein"}\n', "line 1: unknown key(s) prefx; the keys are source and prefix"),
        ('{"source": "A dog.", "prefix": 3}\n', 'line 1: "prefix" must be a string or null'),
    ]:
        bad.write_text(text)
        assert translate_main(["--model", str(trained_model_dir), "--input-type", "json", "--input", str(bad), "--quiet"]) == 2
        assert message in capsys.readouterr().err
