"""Request bodies → checked, typed values; every problem is an `InputError` whose message names the field.

The native API's request model is built from `SearchOptions`' dataclass fields (names, types,
defaults), so a decoding option added there is accepted here with no change; its values are
then checked by `SearchOptions` itself, where every check is written once.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from seq2seq.inference.output import clean_line
from seq2seq.options import SearchOptions

OPTION_NAMES = tuple(f.name for f in dataclasses.fields(SearchOptions))
# Limits on options that set how much work one sentence costs; the others are the search's own business.
EXPENSIVE = ("beam_size", "nbest")


class InputError(Exception):
    """A request the server refuses: the HTTP status and a message that says what to change."""

    def __init__(self, status: int, message: str, field: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers  # e.g. Retry-After of a 429


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_lines: int
    max_beam_size: int
    char_limit: int = -1  # characters of each q at most (--char-limit, LibreTranslate's; -1: none)
    batch_limit: int = -1  # q entries per request at most (--batch-limit, LibreTranslate's; -1: none)


@dataclass(frozen=True)
class Sentences:
    texts: list[str]  # cleaned as seq2seq-translate cleans its lines
    single: bool  # q was one string: answer one value, not a list
    raw: list[str]  # as sent (line breaks kept; lone surrogates as U+FFFD): /translate cuts them into sentences


@dataclass(frozen=True)
class LibreRequest:
    sentences: Sentences
    options: SearchOptions
    alternatives: int
    auto_source: bool
    api_key: str | None
    format: str  # "text" or "html": how each q is cut into sentences (seq2seq.inference.text.plan)


@dataclass(frozen=True)
class Upload:
    """A file of a multipart form."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class NativeRequest:
    sentences: Sentences
    options: SearchOptions
    api_key: str | None


# --- bodies ----------------------------------------------------------------------------------------


async def read_body(request: Any, limit: int) -> bytes:
    """The body of a Starlette request, refused with 413 once it passes `limit` bytes (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(413, f"the body has {int(declared)} bytes; this server takes at most {limit} (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(413, f"the body has more than {limit} bytes; this server takes at most {limit} (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_fields(body: bytes, content_type: str) -> dict[str, Any]:
    """A JSON object, or a form-encoded body (a repeated key gives a list), as a dict."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded" and body.lstrip()[:1] == b"{":
        kind = "application/json"  # curl -d '{...}' without -H 'Content-Type: application/json': no form starts with {
    if kind == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = {}
        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            if key in fields:
                fields[key] = (fields[key] if isinstance(fields[key], list) else [fields[key]]) + [value]
            else:
                fields[key] = value
        return fields
    if kind not in ("", "application/json") and not kind.endswith("+json"):
        raise InputError(415, f"Content-Type {kind} is not supported; send application/json, application/x-www-form-urlencoded or multipart/form-data")
    try:
        fields = json.loads(body.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as err:
        raise InputError(
            400,
            f"the body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); send a JSON object such as "
            '{"q": "A man is sleeping.", "source": "en", "target": "de"}',
        ) from None
    if not isinstance(fields, dict):
        raise InputError(400, f"the body must be a JSON object with a field q; got a JSON {_json_type(fields)}")
    return fields


def sentences(fields: dict[str, Any], limits: Limits, *, one: bool = False) -> Sentences:
    """Field q: one string or (unless `one`) a list of strings, cleaned as seq2seq-translate cleans lines."""
    if "q" not in fields:
        raise InputError(400, "q is missing: send the text to translate in q, one string or a list of strings", "q")
    q = fields["q"]
    if isinstance(q, str):
        texts, single = [q], True
    elif isinstance(q, list) and not one:
        for i, text in enumerate(q):
            if not isinstance(text, str):
                raise InputError(400, f"q[{i}] must be a string; got a JSON {_json_type(text)}", "q")
        if len(q) > limits.max_lines:
            raise InputError(413, f"q has {len(q)} lines; this server takes at most {limits.max_lines} per request (--max-lines)", "q")
        texts, single = q, False
    else:
        wanted = "a string" if one else "a string or a list of strings"
        raise InputError(400, f"q must be {wanted}; got a JSON {_json_type(q)}", "q")
    raw = [_without_surrogates(t) for t in texts]
    return Sentences([clean_line(t) for t in raw], single, raw)


def _without_surrogates(text: str) -> str:
    """JSON may escape lone surrogates (\\ud800), which no UTF-8 line can hold: U+FFFD, as seq2seq-translate
    puts for bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def _json_type(value: object) -> str:
    for kind, name in ((bool, "boolean"), ((int, float), "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


# --- LibreTranslate's /translate ------------------------------------------------------------------


def libre_request(fields: dict[str, Any], src_lang: str, tgt_lang: str, base: SearchOptions, limits: Limits) -> LibreRequest:
    """LibreTranslate's fields: q, source, target, format, alternatives, api_key. Decoding: `base`,
    with n-best 1 + alternatives (and a beam at least that wide)."""
    texts = sentences(fields, limits)
    # Without a source, the model's: only an explicit "auto" detects (and may refuse the text).
    source, target = fields.get("source", src_lang), fields.get("target", tgt_lang)
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str):
            raise InputError(400, f"{name} must be a language code string such as {src_lang!r}; got a JSON {_json_type(value)}", name)
    if (source not in ("auto", src_lang)) or target != tgt_lang:
        raise InputError(
            400,
            f"this server translates {src_lang} to {tgt_lang} (source {src_lang!r} or 'auto', target {tgt_lang!r}); got source {source!r}, target {target!r}",
            "source" if source not in ("auto", src_lang) else "target",
        )
    text_format = fields.get("format") or "text"  # LibreTranslate takes an empty format as text
    if text_format not in ("text", "html"):
        raise InputError(400, f"format must be 'text' or 'html'; got {text_format!r}", "format")
    check_text_limits(texts, limits)
    alternatives = _integer(fields.get("alternatives", 0), "alternatives")
    if not 0 <= alternatives < limits.max_beam_size:
        raise InputError(400, f"alternatives must be an integer from 0 to {limits.max_beam_size - 1} (--max-beam-size); got {alternatives}", "alternatives")
    options = search_options({"nbest": 1 + alternatives, "beam_size": max(base.beam_size, 1 + alternatives)} if alternatives else {}, base, limits)
    return LibreRequest(texts, options, alternatives, source == "auto", api_key_of(fields), text_format)


def check_text_limits(texts: Sentences, limits: Limits) -> None:
    """--batch-limit on the number of q entries, then --char-limit on each q's characters: LibreTranslate's
    checks, status (400) and words."""
    if not texts.single and limits.batch_limit != -1 and len(texts.raw) > limits.batch_limit:
        raise InputError(400, f"Invalid request: request ({len(texts.raw)}) exceeds batch limit ({limits.batch_limit}) (--batch-limit)", "q")
    if limits.char_limit != -1:
        for text in texts.raw:
            if len(text) > limits.char_limit:
                raise InputError(400, f"Invalid request: request ({len(text)}) exceeds text limit ({limits.char_limit}) (--char-limit)", "q")


def _integer(value: object, name: str) -> int:
    """An integer from JSON (a number) or a form (a string of digits)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError(400, f"{name} must be an integer; got {value!r}", name)


def api_key_of(fields: dict[str, Any]) -> str | None:
    """The api_key field where it is a non-empty string (else the key may come from a header or the query)."""
    key = fields.get("api_key")
    return key if isinstance(key, str) and key else None


# --- the native /v1 API ---------------------------------------------------------------------------


def _option_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(SearchOptions)
    out = {}
    for f in dataclasses.fields(SearchOptions):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        out[f.name] = (hints[f.name], default)
    return out


# Every decoding option with its type and default. Strict: "5" is not a beam size, and a misspelt
# option is an error rather than a default silently used.
OptionsBody: type[BaseModel] = create_model("SearchOptions", __config__=ConfigDict(extra="forbid", strict=True), **_option_fields())
# The body of /v1/translate and /v1/attention, for the OpenAPI schema: q and api_key, then the options.
NativeBody: type[BaseModel] = create_model("NativeTranslateRequest", __base__=OptionsBody, q=(str | list[str], ...), api_key=(str | None, None))


def search_options(values: dict[str, Any], base: SearchOptions, limits: Limits) -> SearchOptions:
    """`base` with the options in `values` (JSON values, by SearchOptions field name) replaced."""
    if not values:  # most requests: the defaults as they are, without validating and copying them again
        return _affordable(base, limits)
    # JSON has arrays, not tuples: a tuple-typed option (strict) takes an array.
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        body = OptionsBody.model_validate(values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            name = ".".join(str(p) for p in e["loc"]) or "body"
            if e["type"] == "extra_forbidden":
                problems.append(f"{name} is not an option; valid fields: q, api_key, {', '.join(OPTION_NAMES)}")
            else:
                problems.append(f"{name}: {e['msg']} (got {e.get('input')!r})")
        raise InputError(422, "; ".join(problems), str(err.errors()[0]["loc"][0]) if err.errors()[0]["loc"] else None) from None
    try:
        options = dataclasses.replace(base, **{name: getattr(body, name) for name in body.model_fields_set})
    except ValueError as err:
        raise InputError(422, str(err)) from None
    return _affordable(options, limits)


def _affordable(options: SearchOptions, limits: Limits) -> SearchOptions:
    """`options`, refused (422) where a beam or n-best list is wider than --max-beam-size."""
    for name in EXPENSIVE:
        if getattr(options, name) > limits.max_beam_size:
            raise InputError(422, f"{name} is {getattr(options, name)}; this server allows at most {limits.max_beam_size} (--max-beam-size)", name)
    return options


def native_request(fields: dict[str, Any], base: SearchOptions, limits: Limits, *, one: bool = False) -> NativeRequest:
    """q (one string, or a list unless `one`), api_key and any SearchOptions field (the others: `base`'s)."""
    texts = sentences(fields, limits, one=one)
    options = search_options({k: v for k, v in fields.items() if k not in ("q", "api_key")}, base, limits)
    return NativeRequest(texts, options, api_key_of(fields))
