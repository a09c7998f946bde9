"""SearchOptions: defaults written once, every invalid field named, and no torch on import."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from seq2seq.options import BATCH_SIZE, SearchOptions, check_batch_size


def test_defaults():
    o = SearchOptions()
    assert (o.mode, o.beam_size, o.nbest, o.length_penalty, o.max_len_ratio, o.max_len_offset) == ("beam", 5, 1, 1.0, 2.0, 10)
    assert (o.early_stop, o.temperature, o.top_k, o.seed) == (True, 1.0, 0, 0)
    assert (o.top_p, o.min_len_ratio, o.no_repeat_ngram, o.ban_unk) == (1.0, 0.0, 0, False)  # the controls are off
    assert not o.constrains_steps
    assert SearchOptions(ban_unk=True).constrains_steps and SearchOptions(no_repeat_ngram=2).constrains_steps
    assert not SearchOptions(mode="sample", top_p=0.5).constrains_steps  # top_p is the sampler's cut, not a per-step rule
    assert BATCH_SIZE == 64


def test_options_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        SearchOptions(5)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        SearchOptions().beam_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "greedy"}, "mode must be one of beam, sample; got 'greedy'"),
        ({"beam_size": 0}, "beam_size must be an integer >= 1; got 0"),
        ({"beam_size": True}, "beam_size must be an integer >= 1; got True"),
        ({"nbest": 0}, "nbest must be an integer >= 1; got 0"),
        ({"beam_size": 2, "nbest": 3}, "nbest (3) cannot exceed beam_size (2); raise beam_size"),
        ({"length_penalty": -0.5}, "length_penalty must be a number >= 0; got -0.5"),
        ({"max_len_ratio": float("nan")}, "max_len_ratio must be a number >= 0; got nan"),
        ({"max_len_offset": -1}, "max_len_offset must be an integer >= 0; got -1"),
        ({"temperature": 0.0}, "temperature must be a number > 0; got 0.0"),
        ({"top_k": -1}, "top_k must be an integer >= 0; got -1"),
        ({"seed": 1.5}, "seed must be an integer; got 1.5"),
        ({"early_stop": "no"}, "early_stop must be true or false; got 'no'"),
        ({"top_p": 0.0}, "top_p must be a number > 0 and <= 1 (1: no nucleus cut); got 0.0"),
        ({"top_p": 1.01}, "top_p must be a number > 0 and <= 1 (1: no nucleus cut); got 1.01"),
        ({"min_len_ratio": -1.0}, "min_len_ratio must be a number >= 0; got -1.0"),
        ({"no_repeat_ngram": -1}, "no_repeat_ngram must be an integer >= 0; got -1"),
        ({"no_repeat_ngram": 2.0}, "no_repeat_ngram must be an integer >= 0; got 2.0"),
        ({"ban_unk": 1}, "ban_unk must be true or false; got 1"),
    ],
)
def test_each_invalid_field_is_named(fields, message):
    with pytest.raises(ValueError) as err:
        SearchOptions(**fields)
    assert message in str(err.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ValueError) as err:
        SearchOptions(beam_size=0, temperature=-1.0, top_k=-2)
    assert "beam_size" in str(err.value) and "temperature" in str(err.value) and "top_k" in str(err.value)
    assert "nbest" not in str(err.value)  # an invalid beam_size is not also compared with nbest


def test_sampling_may_ask_for_more_samples_than_beams():
    assert SearchOptions(mode="sample", nbest=8, beam_size=1).nbest == 8


def test_replace_checks_again():
    with pytest.raises(ValueError, match="beam_size"):
        replace(SearchOptions(), beam_size=0)


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, None])
def test_batch_size_is_checked(bad):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        check_batch_size(bad)


def test_options_import_without_torch():
    code = "import sys; import seq2seq.options; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
