"""The web layer over a stand-in translator (seq2seq.serve.app in this process, no model): every answer,
good and bad, held against /openapi.json; the operator limits (--char-limit, --batch-limit,
--req-limit, --cors); /detect and source auto; /translate_file and the download route; /frontend/settings,
/suggest; the docs page served offline."""

from __future__ import annotations

import io
import json
import re
import urllib.parse
import uuid
import zipfile

import pytest

pytest.importorskip("fastapi", reason="the server's extra is not installed: pip install -e '.[serve]'")
jsonschema = pytest.importorskip("jsonschema", reason="the tests' extra is not installed: pip install -e '.[test]'")

import stand_ins  # noqa: E402
from inprocess import serving_app  # noqa: E402
from serving import Reply, post_form, post_json, request  # noqa: E402

KEY = "k-contract"
BATCH_LIMIT, CHAR_LIMIT, MAX_BODY = 5, 3000, 64_000
GERMAN = "Der Mann ist nicht auf der Straße und die Frau ist mit dem Hund."


@pytest.fixture(scope="module", autouse=True)
def inference_modules():
    installed = stand_ins.install()
    yield
    stand_ins.uninstall(installed)


@pytest.fixture(scope="module")
def server():
    with serving_app(max_body_bytes=MAX_BODY, limits={"batch_limit": BATCH_LIMIT, "char_limit": CHAR_LIMIT}) as running:
        yield running


@pytest.fixture(scope="module")
def keyed():
    with serving_app(api_keys=frozenset({KEY}), req_limit=3, cors_origins=("https://example.org",)) as running:
        yield running


class Contract:
    """The OpenAPI document, and checks of real answers (and requests) against it."""

    def __init__(self, document: dict):
        self.document = document
        jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})
        self.seen: set[tuple[str, str, int]] = set()

    def operation(self, method: str, path: str) -> tuple[str, dict]:
        for template, operations in self.document["paths"].items():
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path) and method.lower() in operations:
                return template, operations[method.lower()]
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def validate(self, schema: dict, value: object) -> None:
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(value)

    def check(self, method: str, url: str, reply: Reply) -> Reply:
        path = urllib.parse.urlsplit(url).path
        template, operation = self.operation(method, path)
        declared = operation["responses"]
        assert str(reply.status) in declared, f"{method} {path} answered {reply.status} {reply.body[:200]!r}; the document declares {sorted(declared)}"
        content = declared[str(reply.status)].get("content", {})
        media = reply.headers.get("content-type", "").split(";")[0].strip()
        self.seen.add((method, template, reply.status))
        if "*/*" in content:
            return reply
        assert media in content, f"{method} {path} {reply.status} answered {media}; the document declares {sorted(content)}"
        if media == "application/json":
            self.validate(content[media]["schema"], json.loads(reply.body))
        else:
            assert content[media]["schema"] == {"type": "string"}
            reply.body.decode("utf-8")
        return reply

    def check_request(self, method: str, path: str, media: str, body: dict) -> None:
        _, operation = self.operation(method, path)
        self.validate(operation["requestBody"]["content"][media]["schema"], body)


@pytest.fixture(scope="module")
def contract(server) -> Contract:
    reply = request(server.url + "/openapi.json")
    assert reply.status == 200
    return Contract(reply.json())


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in (files or {}).items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def docx_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


GOOD_JSON = [
    ("/translate", {"q": "The dog runs. The man sleeps.\n\nA cat.", "source": "en", "target": "de"}),
    ("/translate", {"q": ["The dog runs.", "", "  "], "source": "en", "target": "de", "alternatives": 2}),
    ("/translate", {"q": "<p>The <b>dog</b> runs.</p>", "source": "en", "target": "de", "format": "html"}),
    ("/translate", {"q": ["The man is on the street.", "A dog."], "source": "auto", "target": "de"}),
    ("/translate", {"q": "1234 5678", "source": "auto", "target": "de"}),
    ("/detect", {"q": "The man is on the street with the dog."}),
    ("/detect", {"q": ["The man is here.", GERMAN]}),
    ("/v1/translate", {"q": ["A dog.", "A man."], "beam_size": 2, "nbest": 2}),
    ("/v1/attention", {"q": "A dog runs."}),
]

BAD_JSON = [
    # (route, body bytes, content type, status, words the message must hold)
    ("/translate", b'{"q": "A dog.", ', "application/json", 400, "not valid JSON"),
    ("/translate", b'{"source": "en"}', "application/json", 400, "q is missing"),
    ("/translate", b'{"q": "A dog.", "source": "fr"}', "application/json", 400, "translates en to de"),
    ("/translate", b'{"q": "A dog.", "format": "xml"}', "application/json", 400, "format must be 'text' or 'html'"),
    (
        "/translate",
        json.dumps({"q": ["a"] * (BATCH_LIMIT + 1)}).encode(),
        "application/json",
        400,
        f"request ({BATCH_LIMIT + 1}) exceeds batch limit ({BATCH_LIMIT})",
    ),
    (
        "/translate",
        json.dumps({"q": "a" * (CHAR_LIMIT + 1)}).encode(),
        "application/json",
        400,
        f"request ({CHAR_LIMIT + 1}) exceeds text limit ({CHAR_LIMIT})",
    ),
    ("/translate", json.dumps({"q": GERMAN, "source": "auto"}).encode(), "application/json", 400, "'de'"),
    ("/translate", b"A dog.", "text/plain", 415, "application/json"),
    ("/translate", json.dumps({"q": "a " * MAX_BODY}).encode(), "application/json", 413, "--max-body-bytes"),
    ("/detect", b'{"q": ""}', "application/json", 400, "missing q parameter"),
    ("/detect", b"{}", "application/json", 400, "missing q parameter"),
    ("/suggest", b'{"q": "a", "s": "b", "source": "en", "target": "de"}', "application/json", 403, "Suggestions are disabled on this server."),
    ("/v1/translate", b'{"q": "A dog.", "beam_sise": 5}', "application/json", 422, "beam_sise is not an option"),
    ("/v1/attention", b'{"q": "   "}', "application/json", 422, "empty"),
    ("/v1/attention", b'{"q": ["a"]}', "application/json", 400, "q must be a string"),
]


def test_the_document_declares_every_route_with_its_bodies_and_error_shape(contract):
    paths = contract.document["paths"]
    for route in ("/translate", "/detect", "/translate_file", "/download_file/{filename}", "/frontend/settings", "/suggest", "/languages", "/metrics"):
        assert route in paths, route
    for media in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data"):
        assert paths["/translate"]["post"]["requestBody"]["content"][media]["schema"] == {"$ref": "#/components/schemas/TranslateRequest"}
    assert "multipart/form-data" in paths["/translate_file"]["post"]["requestBody"]["content"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    for template, operations in paths.items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, template, status)
    assert contract.document["components"]["schemas"]["ErrorBody"]["required"] == ["error"]


def test_every_answer_good_and_bad_is_the_documented_one(server, contract):
    for path in ("/", "/health", "/ready", "/metrics", "/languages", "/frontend/settings", "/v1/model", "/download_file/nothing-here"):
        contract.check("GET", server.url + path, request(server.url + path))
    for route, body in GOOD_JSON:
        contract.check_request("POST", route, "application/json", body)
        reply = contract.check("POST", server.url + route, post_json(server.url + route, body))
        assert reply.status == 200, (route, body, reply.body)
    for route, body, content_type, status, words in BAD_JSON:
        reply = contract.check("POST", server.url + route, request(server.url + route, "POST", body, {"Content-Type": content_type}))
        assert reply.status == status and words in reply.json()["error"], (route, body[:80], reply.body[:300])
    form = contract.check("POST", server.url + "/translate", post_form(server.url + "/translate", {"q": "A dog.", "source": "en", "target": "de"}))
    data, headers = multipart({"q": "A dog. A cat.", "source": "en", "target": "de"})
    parts = contract.check("POST", server.url + "/translate", request(server.url + "/translate", "POST", data, headers))
    query = contract.check(
        "POST", server.url + "/translate?q=A+dog.&source=en&target=de", request(server.url + "/translate?q=A+dog.&source=en&target=de", "POST")
    )
    assert form.json() == query.json() == {"translatedText": "A DOG."} and parts.json() == {"translatedText": "A DOG. A CAT."}
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=x"):  # no boundary; a body without it
        reply = contract.check("POST", server.url + "/translate", request(server.url + "/translate", "POST", b"garbage", {"Content-Type": content_type}))
        assert reply.status == 400 and "multipart/form-data body cannot be read" in reply.json()["error"]
    assert request(server.url + "/health").status == 200


def test_translate_answers_as_libretranslate(server):
    reply = post_json(
        server.url + "/translate", {"q": ["The dog runs. The man sleeps.\n\nA cat.", "", "A dog."], "source": "auto", "target": "de", "alternatives": 1}
    )
    body = reply.json()
    assert body["translatedText"] == ["THE DOG RUNS. THE MAN SLEEPS.\n\nA CAT.", "", "A DOG."]
    assert body["alternatives"] == [["THE DOG RUNS.! THE MAN SLEEPS.!\n\nA CAT.!"], [], ["A DOG.!"]]
    detected = body["detectedLanguage"]
    assert len(detected) == 3 and detected[0] == detected[1] == detected[2] and detected[0]["language"] == "en" and 0 < detected[0]["confidence"] <= 100
    # Every sentence of the request went to the worker in one submit, sentence by sentence.
    assert server.translator.sentences[-4:] == ["The dog runs.", "The man sleeps.", "A cat.", "A dog."]
    reply = post_json(server.url + "/translate", {"q": "12 34", "source": "auto", "target": "de"})
    assert reply.json() == {"translatedText": "12 34", "detectedLanguage": {"confidence": 0.0, "language": "en"}}


def test_detect_names_english_and_german(server):
    english = post_json(server.url + "/detect", {"q": "The man is on the street with the dog."}).json()
    german = post_form(server.url + "/detect", {"q": GERMAN}).json()
    assert english[0]["language"] == "en" and german[0]["language"] == "de"
    assert all(0 <= d["confidence"] <= 100 for d in english + german)
    assert english == sorted(english, key=lambda d: -d["confidence"])
    assert post_json(server.url + "/detect", {"q": "12345 !!!"}).json() == [{"confidence": 0.0, "language": "en"}]


def test_detect_without_the_identifier_is_501_naming_the_extra(server, contract, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "seq2seq.inference.language", None)  # its import then raises ImportError
    reply = contract.check("POST", server.url + "/detect", post_json(server.url + "/detect", {"q": "The man is on the street."}))
    assert reply.status == 501
    assert "pip install 'seq2seq[text]'" in reply.json()["error"]


def test_frontend_settings_and_suggest(server, keyed):
    settings = request(server.url + "/frontend/settings").json()
    assert settings["charLimit"] == CHAR_LIMIT and settings["keyRequired"] is False and settings["suggestions"] is False
    assert settings["language"] == {"source": {"code": "en", "name": "English"}, "target": {"code": "de", "name": "German"}}
    assert {".txt", ".html", ".docx"} <= set(settings["supportedFilesFormat"]) and settings["filesTranslation"] is True
    settings = request(keyed.url + "/frontend/settings").json()  # no key needed: a client reads here that it needs one
    assert settings["apiKeys"] is True and settings["keyRequired"] is True and settings["charLimit"] == -1
    assert request(server.url + "/suggest", "POST").json() == {"error": "Suggestions are disabled on this server."}


def test_files_round_trip_through_translate_file_and_the_download_route(server, contract):
    text = "The dog runs. The man sleeps.\n\nA cat.\n"
    data, headers = multipart({"source": "en", "target": "de"}, {"file": ("notes.txt", text.encode())})
    reply = contract.check("POST", server.url + "/translate_file", request(server.url + "/translate_file", "POST", data, headers))
    assert reply.status == 200, reply.body
    link = reply.json()["translatedFileUrl"]
    assert link.startswith(server.url + "/download_file/") and link.endswith(".notes.txt")
    got = contract.check("GET", link, request(link))
    assert got.status == 200 and got.body == b"THE DOG RUNS. THE MAN SLEEPS.\n\nA CAT.\n"
    assert got.headers["content-disposition"] == 'attachment; filename="notes.txt"' and got.headers["content-type"].startswith("text/plain")
    html = "<html><body><p>The <i>dog</i> runs.</p></body></html>"
    data, headers = multipart({"source": "auto"}, {"file": ("page.html", html.encode())})
    reply = request(server.url + "/translate_file", "POST", data, headers)
    assert reply.status == 200, reply.body
    assert request(reply.json()["translatedFileUrl"]).body.decode().startswith("<html><body><p>")
    # The names of the other files, a path out of the directory, a name never made: 404 in the error shape.
    name = link.rsplit("/", 1)[1]
    for wrong in ("nothing", name.replace(".notes", ".other"), "..%2F..%2Fetc%2Fpasswd", urllib.parse.quote("../" + name, safe="")):
        reply = contract.check("GET", server.url + "/download_file/" + wrong, request(server.url + "/download_file/" + wrong))
        assert reply.status == 404 and reply.json()["error"], wrong  # "no file …", or Starlette's: no route takes a name with a slash
    assert request(server.url + "/download_file/../../etc/passwd").status == 404


BAD_FILES = [
    # (fields, files, status, words)
    ({"source": "en", "target": "de"}, {}, 400, "missing file parameter"),
    ({"file": "not a file"}, {}, 400, "missing file parameter"),
    ({}, {"file": ("scan.pdf", b"%PDF-1.4")}, 400, ".txt"),
    ({}, {"file": ("report.docx", b"this is not a zip archive")}, 400, "zip"),
    ({}, {"file": ("latin1.txt", "Caf\xe9".encode("latin-1"))}, 400, "latin1.txt"),
    ({"source": "fr"}, {"file": ("notes.txt", b"A dog.")}, 400, "translates en to de"),
    ({"source": "auto"}, {"file": ("notes.txt", GERMAN.encode())}, 400, "'de'"),
]


@pytest.mark.parametrize(("fields", "files", "status", "words"), BAD_FILES, ids=[w for *_, w in BAD_FILES])
def test_a_file_that_cannot_be_translated_gets_a_clear_4xx(server, contract, fields, files, status, words):
    data, headers = multipart(fields, files)
    reply = contract.check("POST", server.url + "/translate_file", request(server.url + "/translate_file", "POST", data, headers))
    assert reply.status == status and words in reply.json()["error"], reply.body
    assert request(server.url + "/health").status == 200


def test_a_file_at_the_size_limit_passes_and_one_byte_more_is_413(server, contract):
    envelope, _ = multipart({}, {"file": ("big.txt", b"")})
    paragraph = b"The dog runs.\n\n"
    data = (paragraph * MAX_BODY)[: MAX_BODY - len(envelope)]
    for extra, status in ((b"", 200), (b".", 413)):
        body, headers = multipart({}, {"file": ("big.txt", data + extra)})
        assert len(body) == MAX_BODY + len(extra)
        reply = contract.check("POST", server.url + "/translate_file", request(server.url + "/translate_file", "POST", body, headers))
        assert reply.status == status, reply.body[:300]


def test_keys_and_the_request_limit_answer_as_libretranslate(keyed, contract):
    url = keyed.url
    for method, path in (("POST", "/translate"), ("POST", "/detect"), ("POST", "/translate_file"), ("GET", "/languages"), ("GET", "/download_file/x")):
        reply = contract.check(
            method, url + path, request(url + path, method, b'{"q": "A dog."}' if method == "POST" else None, {"Content-Type": "application/json"})
        )
        assert reply.status == 403 and "API key" in reply.json()["error"], path
    body = {"q": "A dog.", "source": "en", "target": "de", "api_key": KEY}
    assert [post_json(url + "/translate", body).status for _ in range(3)] == [200] * 3
    reply = contract.check("POST", url + "/translate", post_json(url + "/translate", body))
    assert reply.status == 429 and reply.json() == {"error": "Slowdown: 3 per 1 minute"} and 1 <= int(reply.headers["retry-after"]) <= 60
    assert contract.check("POST", url + "/detect", post_json(url + "/detect", {"q": "A dog.", "api_key": KEY})).status == 429
    # A key this server does not have is refused (403) before anything is counted.
    assert post_json(url + "/translate", {**body, "api_key": "other"}).status == 403


def test_cors_is_off_unless_origins_are_given(server, keyed):
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    reply = request(keyed.url + "/translate", "OPTIONS", headers=preflight)
    assert reply.status == 200 and reply.headers["access-control-allow-origin"] == "https://example.org"
    assert "POST" in reply.headers["access-control-allow-methods"]
    other = request(keyed.url + "/health", headers={"Origin": "https://evil.example"})
    assert other.status == 200 and "access-control-allow-origin" not in other.headers
    same = request(keyed.url + "/health", headers={"Origin": "https://example.org"})
    assert same.headers["access-control-allow-origin"] == "https://example.org"
    assert "access-control-allow-origin" not in request(server.url + "/health", headers={"Origin": "https://example.org"}).headers
    assert request(server.url + "/translate", "OPTIONS", headers=preflight).status == 405


def test_the_docs_page_is_served_offline(server):
    page = request(server.url + "/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.body.decode())
    assert sources and all(s.startswith("/docs/static/") for s in sources), sources  # nothing from a CDN
    assert "/openapi.json" in page.body.decode()
    for source in sources:
        assert request(server.url + source).status == 200, source
    assert b"SwaggerUIBundle" in request(server.url + "/docs/static/swagger-ui-bundle.js").body
    assert request(server.url + "/docs/static/../app.py").status == 404
