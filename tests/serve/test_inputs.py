"""Request bodies → checked values (no server, no model)."""

from __future__ import annotations

import dataclasses
import re

import pytest

pytest.importorskip("pydantic", reason="the server's extra is not installed: pip install -e '.[serve]'")

from seq2seq.options import SearchOptions
from seq2seq.serve.inputs import InputError, Limits, OptionsBody, libre_request, native_request, parse_fields, search_options

LIMITS = Limits(max_body_bytes=1000, max_lines=3, max_beam_size=8)


def test_the_native_model_has_every_search_option_with_its_default():
    fields = {f.name: f.default for f in dataclasses.fields(SearchOptions)}
    assert {name: info.default for name, info in OptionsBody.model_fields.items()} == fields
    # and nothing else is an option
    with pytest.raises(InputError, match="beam_sise is not an option; valid fields: q, api_key, mode, beam_size"):
        search_options({"beam_sise": 3}, SearchOptions(), LIMITS)


def test_options_replace_the_base_and_are_checked_by_search_options():
    base = SearchOptions(beam_size=2, max_len_ratio=0.5)
    assert search_options({"nbest": 2}, base, LIMITS) == SearchOptions(beam_size=2, max_len_ratio=0.5, nbest=2)
    assert search_options({}, base, LIMITS) == base
    for values, words in (
        ({"nbest": 3}, "nbest (3) cannot exceed beam_size (2)"),
        ({"beam_size": 9}, "--max-beam-size"),
        ({"top_k": -1}, "top_k must be an integer >= 0"),
        ({"seed": "1"}, "seed: Input should be a valid integer"),
    ):
        with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
            search_options(values, base, LIMITS)
        assert caught.value.status == 422


def test_json_and_form_bodies():
    assert parse_fields(b'{"q": "a"}', "application/json; charset=utf-8") == {"q": "a"}
    assert parse_fields(b'{"q": "a"}', "") == {"q": "a"}
    assert parse_fields(b"q=a+b&q=c&source=en", "application/x-www-form-urlencoded") == {"q": ["a b", "c"], "source": "en"}
    # curl -d '{...}' sends JSON as a form unless told otherwise
    assert parse_fields(b' {"q": "a"}', "application/x-www-form-urlencoded") == {"q": "a"}
    with pytest.raises(InputError, match="not valid JSON") as caught:
        parse_fields(b'{"q": ', "application/json")
    assert caught.value.status == 400
    with pytest.raises(InputError, match="text/plain is not supported; send application/json") as caught:
        parse_fields(b"A dog.", "text/plain")
    assert caught.value.status == 415


def test_sentences_are_cleaned_as_the_command_cleans_lines():
    req = native_request({"q": ["a\x00b\u2028c", "\ud800x", ""]}, SearchOptions(), LIMITS)
    assert req.sentences.texts == ["a b c", "\ufffdx", ""] and not req.sentences.single
    assert native_request({"q": "a"}, SearchOptions(), LIMITS).sentences.single
    with pytest.raises(InputError, match="at most 3 per request") as caught:
        native_request({"q": ["a"] * 4}, SearchOptions(), LIMITS)
    assert caught.value.status == 413
    with pytest.raises(InputError, match="q must be a string; got a JSON array"):
        native_request({"q": ["a"]}, SearchOptions(), LIMITS, one=True)


def test_libre_requests():
    base = SearchOptions()
    req = libre_request({"q": "a", "source": "auto", "target": "de", "alternatives": "2", "api_key": "k"}, "en", "de", base, LIMITS)
    assert (req.alternatives, req.auto_source, req.api_key, req.options.nbest, req.options.beam_size) == (2, True, "k", 3, 5)
    assert libre_request({"q": "a"}, "en", "de", base, LIMITS).options == base
    assert not libre_request({"q": "a"}, "en", "de", base, LIMITS).auto_source  # only an explicit auto detects
    for fields, words in (
        ({"q": "a", "source": "de"}, "translates en to de"),
        ({"q": "a", "target": 1}, "target must be a language code"),
        ({"q": "a", "format": "xml"}, "format must be 'text' or 'html'; got 'xml'"),
        ({"q": "a", "alternatives": True}, "alternatives must be an integer"),
    ):
        with pytest.raises(InputError, match=words) as caught:
            libre_request(fields, "en", "de", base, LIMITS)
        assert caught.value.status == 400


def test_batch_and_char_limits_as_libretranslate():
    limits = Limits(max_body_bytes=1000, max_lines=10, max_beam_size=8, char_limit=5, batch_limit=2)
    assert libre_request({"q": ["abcde", "ab"]}, "en", "de", SearchOptions(), limits).sentences.raw == ["abcde", "ab"]
    assert libre_request({"q": "abcde", "format": ""}, "en", "de", SearchOptions(), limits).format == "text"
    for fields, words in (
        ({"q": ["a", "b", "c"]}, "Invalid request: request (3) exceeds batch limit (2) (--batch-limit)"),
        ({"q": ["a", "abcdef"]}, "Invalid request: request (6) exceeds text limit (5) (--char-limit)"),
        ({"q": "abcdef"}, "Invalid request: request (6) exceeds text limit (5)"),
    ):
        with pytest.raises(InputError, match=re.escape(words)) as caught:
            libre_request(fields, "en", "de", SearchOptions(), limits)
        assert caught.value.status == 400
