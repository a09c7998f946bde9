"""The OpenAPI contract: what each route takes and answers, errors included, for /openapi.json; and
the interactive docs page at /docs, served from the swagger-ui-bundle package's files (no CDN).

The routes read their bodies themselves (JSON, form or multipart: seq2seq.serve.dependencies), so
FastAPI cannot see them: the models here state them for the document only, and the routes pass
them as `openapi_extra` and `responses`. tests/serve/test_contract.py holds real answers to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from seq2seq.serve.inputs import NativeBody

# Why each error status is answered; every error body is {"error": message}.
ERRORS = {
    400: "Invalid request: a field is missing or wrong, a limit (--char-limit, --batch-limit) is passed, a file cannot be read",
    403: "A missing or invalid API key (--api-keys), or a feature this server has switched off",
    404: "No such file: never made, or expired",
    413: "The body is larger than --max-body-bytes, or q has more than --max-lines entries",
    415: "A Content-Type the route does not read",
    422: "A decoding option that is not one, or out of its bounds",
    429: "Slowdown: more requests than --req-limit in the last minute (see Retry-After)",
    501: "The model cannot do this (an exported model has no attention weights), or an optional package is missing",
    503: "The server is busy or warming up, or the request passed --timeout (see Retry-After)",
}


class ErrorBody(BaseModel):
    error: str


class TranslateRequest(BaseModel):
    """LibreTranslate's fields; the same names in a form or the query string (a repeated q: a list)."""

    q: str | list[str] = Field(description="the text: one string, or a list of strings (then every answer field is a list)")
    source: str = Field(None, description="the model's source language code (the default), or auto: detected, and text in another language gets a 400")
    target: str = Field(None, description="the model's target language code (the default)")
    format: str = Field("text", description="text (sentences, line breaks kept) or html (the markup kept, its text translated)")
    alternatives: int = Field(0, ge=0, description="how many alternative translations per q, besides the best")
    api_key: str | None = None


class DetectedLanguage(BaseModel):
    confidence: float = Field(ge=0, le=100)
    language: str


class TranslateResponse(BaseModel):
    translatedText: str | list[str]
    alternatives: list[str] | list[list[str]] | None = None
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None


class DetectRequest(BaseModel):
    q: str | list[str] = Field(description="the text whose language is wanted (a list: detected on all of it together)")
    api_key: str | None = None


class Detections(RootModel[list[DetectedLanguage]]):
    """The likeliest languages, best first."""


class TranslateFileForm(BaseModel):
    file: bytes = Field(description="the document; its suffix picks the reader (see /frontend/settings)")
    source: str = Field(None, description="the model's source language code (the default), or auto")
    target: str = Field(None, description="the model's target language code (the default)")
    api_key: str | None = None


class TranslatedFile(BaseModel):
    translatedFileUrl: str


class SuggestRequest(BaseModel):
    q: str
    s: str
    source: str
    target: str
    api_key: str | None = None


class LanguageRef(BaseModel):
    code: str
    name: str


class FrontendLanguages(BaseModel):
    source: LanguageRef
    target: LanguageRef


class FrontendSettings(BaseModel):
    charLimit: int
    frontendTimeout: int
    apiKeys: bool
    keyRequired: bool
    suggestions: bool
    filesTranslation: bool
    supportedFilesFormat: list[str]
    language: FrontendLanguages


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class Languages(RootModel[list[Language]]):
    pass


class Status(BaseModel):
    status: str


class Hypothesis(BaseModel):
    text: str
    score: float
    tokens: list[str]


class Record(BaseModel):
    line: int
    source: str
    hypotheses: list[Hypothesis]


class NativeTranslations(BaseModel):
    translations: list[Record]


class AttentionMap(BaseModel):
    translation: str
    source: list[str]
    target: list[str]
    weights: list[list[float]] = Field(description="(T, S): per target subword, its attention over the source subwords")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str
    target: str
    model_dirs: list[str]
    precision: str
    device: str
    parameters: int | None
    format_version: int
    trained_with: str | None
    scores: dict[str, Any]
    search_defaults: dict[str, Any]
    limits: dict[str, Any]
    versions: dict[str, str]


# The query parameter every keyed route reads (besides a body field and an Authorization: Bearer header).
API_KEY = {"name": "api_key", "in": "query", "required": False, "schema": {"type": "string"}, "description": "an API key (--api-keys)"}


def schema_ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def body(model: type[BaseModel], *media: str, required: bool = True) -> dict[str, Any]:
    """A request body of `model` in each media type, for a route's openapi_extra."""
    return {"requestBody": {"required": required, "content": {m: {"schema": schema_ref(model)} for m in media}}}


def answers(ok: type[BaseModel] | None, *errors: int, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """A route's `responses`: 200 with `ok`'s schema (JSON), and each error status with ErrorBody."""
    out: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        out[200] = {"model": ok, "description": description}
    for status in errors:
        out[status] = {"model": ErrorBody, "description": ERRORS[status]}
    return out


def text_answer(media: str, description: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    """200 as text in `media` (a page, Prometheus' exposition format, a file), then the errors."""
    schema = {"type": "string", "format": "binary"} if media == "*/*" else {"type": "string"}
    return {200: {"description": description, "content": {media: {"schema": schema}}}, **answers(None, *errors)}


# Models the routes name only inside openapi_extra: FastAPI must be told to put them in the components.
EXTRA_MODELS = (TranslateRequest, DetectRequest, TranslateFileForm, SuggestRequest, NativeBody)


def extend(document: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI made, with the request models' schemas added to its components, and every
    error answered as JSON."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in EXTRA_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[model.__name__] = schema
    # FastAPI states every response of a route in the route's media type (text/plain for /metrics):
    # an error is JSON whatever the route answers when it succeeds.
    # FastAPI also declares its own 422 (request validation) where a route has a path parameter: no route
    # here has one that can fail. And a file's media type is any: "*/*" alone.
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.get("422", {}).get("description") == "Validation Error":
                del responses["422"]
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = {"application/json": {"schema": schema_ref(ErrorBody)}}
                elif "*/*" in response.get("content", {}):
                    response["content"] = {"*/*": response["content"]["*/*"]}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if "TranslateFileForm" in schemas:  # OpenAPI 3.1 states a file as binary content, not as base64 text
        schemas["TranslateFileForm"]["properties"]["file"] = {"type": "string", "contentMediaType": "application/octet-stream", "description": "the document"}
    return document


def docs_page(openapi_url: str) -> Any:
    """The Swagger UI page, its script and style served by this server under /docs/static."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title="seq2seq-serve API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/docs/static/favicon-32x32.png",
    )


def swagger_ui_directory() -> str | None:
    """The directory of Swagger UI's files (the swagger-ui-bundle-v2 package), or None where it is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return str(swagger_ui_path)
