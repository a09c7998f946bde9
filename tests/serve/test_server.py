"""seq2seq-serve over real HTTP on loopback (one server for the module): answers byte-identical to
seq2seq-translate through every route, concurrent clients, every bad input followed by a correct
translation, hostile lines, dropped clients, the operational endpoints, and the page in chromium."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from serving import Server, assert_same_records, cli_records, post_form, post_json, request, running_server, translate_cli

from seq2seq.inference.output import json_record
from seq2seq.inference.translator import Translator
from seq2seq.options import SearchOptions
from seq2seq.textfiles import read_lines

pytestmark = pytest.mark.slow  # trained_model_dir trains

# The server's decoding options and the same for the command: a narrow beam and short outputs keep
# the tiny model (whose outputs run to the maximum length) fast.
OPTIONS = {"beam_size": 2, "max_len_ratio": 0.5}
CLI = ["--beam-size", "2", "--max-len-ratio", "0.5"]
MAX_LINES, MAX_BODY = 300, 1_200_000  # room for a page of 1 MiB


@pytest.fixture(scope="module")
def server(trained_model_dir, tmp_path_factory):
    # A small token budget (about ten sentences), so that one request's sentences go in several batches.
    args = ["--options", json.dumps(OPTIONS), "--max-batch-tokens", "256", "--max-lines", str(MAX_LINES), "--max-body-bytes", str(MAX_BODY)]
    with running_server(trained_model_dir, tmp_path_factory.mktemp("serve") / "stderr.log", *args) as running:
        yield running


@pytest.fixture(scope="module")
def lines(demo_dir) -> list[str]:
    return read_lines(demo_dir / "train.en.gz")[:200]


@pytest.fixture(scope="module")
def cli_text(trained_model_dir, lines) -> list[str]:
    return translate_cli(trained_model_dir, lines, *CLI).decode("utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def cli_json(trained_model_dir, lines) -> list[dict]:
    return cli_records(trained_model_dir, lines, *CLI)


def still_serving(server: Server, lines: list[str], cli_text: list[str]) -> None:
    reply = post_json(server.url + "/translate", {"q": lines[7], "source": "en", "target": "de"})
    assert reply.status == 200, reply.body
    assert reply.json() == {"translatedText": cli_text[7]}


def test_200_lines_give_the_bytes_of_seq2seq_translate(server, lines, cli_text, cli_json):
    batches = server.metric("seq2seq_batch_sentences_count")
    reply = post_json(server.url + "/translate", {"q": lines, "source": "en", "target": "de", "format": "text"})
    assert reply.status == 200
    assert ("\n".join(reply.json()["translatedText"]) + "\n").encode() == ("\n".join(cli_text) + "\n").encode()
    assert server.metric("seq2seq_batch_sentences_count") - batches > 1  # the request went in several batches, and came back in order

    with ThreadPoolExecutor(8) as pool:  # one string per request, form-encoded
        singles = list(pool.map(lambda line: post_form(server.url + "/translate", {"q": line, "source": "en", "target": "de"}), lines))
    assert [r.status for r in singles] == [200] * len(lines)
    assert [r.json()["translatedText"] for r in singles] == cli_text

    reply = post_json(server.url + "/v1/translate", {"q": lines})
    assert reply.status == 200
    assert_same_records(reply.json()["translations"], cli_json)


def test_two_workers_answer_as_the_command(trained_model_dir, tmp_path, lines, cli_text):
    args = ["--options", json.dumps(OPTIONS), "--max-batch-tokens", "256", "--workers", "2", "--threads", "1"]
    with running_server(trained_model_dir, tmp_path / "stderr.log", *args) as two:
        reply = post_json(two.url + "/translate", {"q": lines, "source": "en", "target": "de"})
        assert reply.status == 200 and reply.json()["translatedText"] == cli_text
        with ThreadPoolExecutor(8) as pool:
            singles = list(pool.map(lambda line: post_json(two.url + "/translate", {"q": line, "source": "en", "target": "de"}), lines))
        assert [r.json()["translatedText"] for r in singles] == cli_text
        assert two.metric("seq2seq_batch_sentences_count") > 2
        assert "2 inference workers (threads), 1 thread each" in two.stderr()


def test_paragraphs_come_back_sentence_by_sentence_with_their_spacing(server, lines, cli_text):
    """/translate cuts each q into sentences and puts the translations back with q's whitespace and line
    breaks, whether the fields come as JSON, a form or the query string (LibreTranslate reads all three)."""
    paragraph = f"{lines[0]} {lines[1]}\n\n  {lines[2]}\n"
    expected = f"{cli_text[0]} {cli_text[1]}\n\n  {cli_text[2]}\n"
    as_json = post_json(server.url + "/translate", {"q": [paragraph, lines[3]], "source": "en", "target": "de"})
    assert as_json.status == 200, as_json.body
    assert as_json.json() == {"translatedText": [expected, cli_text[3]]}
    as_form = post_form(server.url + "/translate", {"q": paragraph, "source": "auto", "target": "de"})
    assert as_form.status == 200, as_form.body
    assert as_form.json()["translatedText"] == expected
    query = urllib.parse.urlencode({"q": paragraph, "source": "en", "target": "de"})
    as_query = request(f"{server.url}/translate?{query}", "POST", b"", {"Content-Type": "application/x-www-form-urlencoded"})
    assert as_query.status == 200, as_query.body
    assert as_query.json() == {"translatedText": expected}
    repeated = request(f"{server.url}/translate?q={urllib.parse.quote(lines[4])}&q={urllib.parse.quote(lines[5])}&source=en&target=de", "POST")
    assert repeated.status == 200, repeated.body
    assert repeated.json() == {"translatedText": [cli_text[4], cli_text[5]]}
    body_wins = post_json(f"{server.url}/translate?q={urllib.parse.quote(lines[6])}", {"q": lines[7], "source": "en", "target": "de"})
    assert body_wins.json() == {"translatedText": cli_text[7]}


def test_html_keeps_its_markup_and_is_what_the_command_gives(server, trained_model_dir, lines):
    fragment = f'<div class="a"><p>{lines[0]} <b>{lines[1]}</b></p><pre>{lines[2]}</pre><!-- x --><p>1 &lt; 2 &amp; {lines[3]}</p></div>'
    reply = post_json(server.url + "/translate", {"q": [fragment, "<p>unclosed <i>"], "source": "en", "target": "de", "format": "html"})
    assert reply.status == 200, reply.body
    got = reply.json()["translatedText"]
    assert got == translate_cli(trained_model_dir, [fragment, "<p>unclosed <i>"], *CLI, "--format", "html").decode().split("\n")[:-1]
    assert f"<pre>{lines[2]}</pre><!-- x -->" in got[0] and got[0].startswith('<div class="a"><p>') and got[0].count("<b>") == 1


def test_decoding_options_reach_the_search(server, translator, lines):
    """Each option of the native API reaches the search: the answers are the Translator's (which
    seq2seq-translate prints, as the test above holds) for the same SearchOptions."""
    some = lines[:12]
    for options in (
        {"nbest": 3, "beam_size": 4, "length_penalty": 0.6},
        {"mode": "sample", "nbest": 2, "temperature": 0.7, "top_k": 5, "seed": 3},
        {"beam_size": 3, "early_stop": False, "max_len_ratio": 1.0, "max_len_offset": 4},
    ):
        reply = post_json(server.url + "/v1/translate", {"q": some, **options})
        assert reply.status == 200, reply.body
        search = SearchOptions(**{**OPTIONS, **options})
        expected = [json_record(i, line, hyps, search.nbest) for i, (line, hyps) in enumerate(zip(some, translator.translate_nbest(some, search)))]
        assert_same_records(reply.json()["translations"], expected)

    # LibreTranslate's alternatives: the n-best of a beam at least as wide.
    search = SearchOptions(**{**OPTIONS, "nbest": 3, "beam_size": 3})
    expected = [[h.text for h in hyps] for hyps in translator.translate_nbest(some[:2], search)]
    reply = post_json(server.url + "/translate", {"q": some[:2], "source": "auto", "target": "de", "alternatives": 2})
    assert reply.json()["translatedText"] == [texts[0] for texts in expected]
    assert reply.json()["alternatives"] == [texts[1:] for texts in expected]
    assert reply.json()["detectedLanguage"] == [{"confidence": 100.0, "language": "en"}] * 2


def test_32_concurrent_clients_get_their_own_translations(server, lines, cli_json):
    batches = server.metric("seq2seq_batch_sentences_count")
    start = threading.Barrier(32)

    def client(k: int):
        start.wait()
        return post_json(server.url + "/v1/translate", {"q": lines[3 * k : 3 * k + 3]})

    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(client, range(32)))
    for k, reply in enumerate(replies):
        assert reply.status == 200
        got = reply.json()["translations"]
        # Scores differ from sentence to sentence (more than the tolerance), so a mixed-up answer cannot pass.
        assert_same_records(got, [{**r, "line": i} for i, r in enumerate(cli_json[3 * k : 3 * k + 3])])
    # Each request alone would be a batch of its own (3 sentences fit the 64-token budget): fewer
    # batches than requests means requests were translated together.
    assert server.metric("seq2seq_batch_sentences_count") - batches < 32


BAD = [
    # (route, body bytes, content type, status, words the message must hold)
    ("/translate", b'{"q": "A dog.", ', "application/json", 400, "not valid JSON"),
    ("/translate", b'["A dog."]', "application/json", 400, "JSON object"),
    ("/translate", b'{"source": "en", "target": "de"}', "application/json", 400, "q is missing"),
    ("/translate", b'{"q": 5}', "application/json", 400, "q must be a string or a list of strings"),
    ("/translate", b'{"q": ["A dog.", null]}', "application/json", 400, "q[1] must be a string"),
    ("/translate", b'{"q": "A dog.", "source": "fr", "target": "de"}', "application/json", 400, "translates en to de"),
    ("/translate", b'{"q": "A dog.", "source": "en", "target": "fr"}', "application/json", 400, "target 'de'"),
    ("/translate", b'{"q": "A dog.", "format": "xml"}', "application/json", 400, "format must be 'text' or 'html'"),
    ("/translate", b"q=A+dog.&alternatives=many", "application/x-www-form-urlencoded", 400, "alternatives must be an integer"),
    ("/translate", b'{"q": "A dog.", "alternatives": 40}', "application/json", 400, "alternatives must be an integer from 0 to 31"),
    ("/translate", b"A dog.", "text/plain", 415, "application/json"),
    ("/translate", b'{"q": "Der Mann ist nicht auf der Stra\\u00dfe und die Frau ist mit dem Hund.", "source": "auto"}', "application/json", 400, "'de'"),
    ("/detect", b'{"q": ""}', "application/json", 400, "missing q parameter"),
    ("/translate_file", b"q=A+dog.", "application/x-www-form-urlencoded", 400, "missing file parameter"),
    ("/suggest", b'{"q": "a", "s": "b"}', "application/json", 403, "Suggestions are disabled"),
    ("/translate", json.dumps({"q": ["a"] * (MAX_LINES + 1)}).encode(), "application/json", 413, "--max-lines"),
    ("/translate", json.dumps({"q": "a " * MAX_BODY}).encode(), "application/json", 413, "--max-body-bytes"),
    ("/v1/translate", b'{"q": "A dog.", "beam_size": "5"}', "application/json", 422, "beam_size"),
    ("/v1/translate", b'{"q": "A dog.", "beam_sise": 5}', "application/json", 422, "beam_sise is not an option"),
    ("/v1/translate", b'{"q": "A dog.", "nbest": 3}', "application/json", 422, "nbest (3) cannot exceed beam_size (2)"),
    ("/v1/translate", b'{"q": "A dog.", "beam_size": 1000}', "application/json", 422, "--max-beam-size"),
    ("/v1/translate", b'{"q": "A dog.", "temperature": 0}', "application/json", 422, "temperature must be a number > 0"),
    ("/v1/attention", b'{"q": ["A dog."]}', "application/json", 400, "q must be a string"),
    ("/v1/attention", b'{"q": "A dog.", "mode": "sample"}', "application/json", 422, "beam search"),
    ("/v1/attention", b'{"q": "   "}', "application/json", 422, "empty"),
]


@pytest.mark.parametrize(("route", "body", "content_type", "status", "words"), BAD, ids=[f"{b[0]}-{b[3]}-{b[4][:24]}" for b in BAD])
def test_bad_input_is_refused_then_the_server_translates(server, lines, cli_text, route, body, content_type, status, words):
    reply = request(server.url + route, "POST", body, {"Content-Type": content_type})
    assert reply.status == status, reply.body
    assert words in reply.json()["error"]
    still_serving(server, lines, cli_text)


def test_wrong_method_and_route_answer_in_the_error_shape(server, lines, cli_text):
    assert request(server.url + "/translate").status == 405
    reply = request(server.url + "/nowhere")
    assert reply.status == 404 and "error" in reply.json()
    still_serving(server, lines, cli_text)


HOSTILE = [
    "The dog sees the cat.",
    "",
    "   \t ",
    "The woman\x07 sleeps\x1b.\x00",  # control characters, NUL too
    "The man\u2028reads the letter.\u2029",  # line and paragraph separators
    "The bird\u0085swims.\r\nA cat.",  # NEL, CR LF inside one string
    "The child 😀 laughs 👩‍👩‍👧.",
    "猫はテーブルの上にいます。狗在桌子上。",
    "الرجل يقرأ الكتاب. האיש קורא.",
    "<s> </s> <unk> <pad> ▁ ⁇",
]


def test_hostile_lines_get_one_answer_each_as_from_the_command(server, trained_model_dir, lines, cli_text):
    reply = post_json(server.url + "/translate", {"q": HOSTILE})
    assert reply.status == 200
    # Each string is cut into sentences (line breaks, U+2028 among them, end one and are kept); each
    # sentence is what the command translates for it, control characters turned into spaces as it turns them.
    from seq2seq.inference.output import clean_line
    from seq2seq.inference.text import plan_text

    plans = [plan_text(h) for h in HOSTILE]
    sentences = [clean_line(s) for p in plans for s in p.sentences]
    translated = iter(translate_cli(trained_model_dir, sentences, *CLI).decode().split("\n")[:-1])
    expected = [p.join([next(translated) for _ in p.sentences]) if p.sentences else "" for p in plans]
    assert reply.json()["translatedText"] == expected
    assert expected[5].count("\r\n") == 1 and expected[2] == ""
    # Lone surrogates can be escaped in JSON but not encoded in UTF-8: replaced, as the command replaces bytes that are not UTF-8.
    reply = request(server.url + "/translate", "POST", b'{"q": ["A \\ud800 dog \\udfff.", "\\udc80"]}', {"Content-Type": "application/json"})
    assert reply.status == 200 and len(reply.json()["translatedText"]) == 2
    # 12,000 words: translated in pieces (short outputs keep it quick).
    reply = post_json(server.url + "/v1/translate", {"q": ["the big dog " * 4000, ""], "beam_size": 1, "max_len_ratio": 0.05})
    assert reply.status == 200
    assert [r["source"] for r in reply.json()["translations"]] == ["the big dog " * 4000, ""]
    assert reply.json()["translations"][0]["hypotheses"][0]["text"] and reply.json()["translations"][1]["hypotheses"][0]["text"] == ""
    still_serving(server, lines, cli_text)
    assert "Traceback" not in server.stderr()


def test_hostile_paragraphs_pages_and_files_get_an_answer_or_a_clear_4xx(server, lines, cli_text):
    """A paragraph of 200 sentences, a page of 1 MiB, broken HTML, empty elements, mixed languages, empty q
    and files that cannot be read: each gets its answer or a 4xx, never a 5xx, and the server goes on."""
    from seq2seq.inference.text import plan_text

    by_line = dict(zip(lines, cli_text))
    paragraph = " ".join(lines[:200])
    reply = post_json(server.url + "/translate", {"q": paragraph, "source": "en", "target": "de"})
    assert reply.status == 200, reply.body[:300]
    sentences = plan_text(paragraph).sentences
    assert len(sentences) >= 190  # a person would cut it into the 200 captions
    assert reply.json()["translatedText"] == plan_text(paragraph).join([by_line.get(s) or cli_line(server, s) for s in sentences])

    script = "<script>" + "var x = '<p>not text</p>';\n" * 40_000 + "</script>"
    page = f"<!doctype html><html><head><title>{lines[0]}</title>{script}</head><body><p>{lines[1]}</p>{'<div></div>' * 1000}</body></html>"
    assert len(page.encode()) > 1 << 20
    reply = post_json(server.url + "/translate", {"q": page, "source": "auto", "target": "de", "format": "html"})
    assert reply.status == 200, reply.body[:300]
    assert script in reply.json()["translatedText"] and f"<p>{cli_text[1]}</p>" in reply.json()["translatedText"]

    for q, fmt in (
        ("<div><p>The dog</div></span><<<>>> &bogus; &#xZZ; <b", "html"),
        ("<p></p><div> </div><br/><img src=x>", "html"),
        (["", " ", "\n\n"], "text"),
        ([], "text"),
        ("", "text"),
        (f"{lines[0]} Der Mann ist nicht auf der Straße. {lines[1]}", "text"),
    ):
        reply = post_json(server.url + "/translate", {"q": q, "source": "en", "target": "de", "format": fmt})
        assert reply.status == 200, (q, reply.body[:300])
    assert post_json(server.url + "/translate", {"q": ["", " "], "source": "en"}).json() == {"translatedText": ["", ""]}
    assert post_json(server.url + "/translate", {"q": "<p></p><br/>", "format": "html"}).json()["translatedText"] == "<p></p><br/>"
    mixed = post_json(server.url + "/translate", {"q": f"{lines[0]} {lines[1]} Der Hund ist klein. {lines[2]} {lines[3]}", "source": "auto"})
    assert mixed.status == 200 and mixed.json()["detectedLanguage"]["language"] == "en"

    files = importlib.util.find_spec("seq2seq.inference.files") is not None  # written beside this server; else /translate_file is 501
    for filename, data, status in (("report.docx", b"not a zip at all", 400), ("notes.txt", f"{lines[0]}\n\n{lines[1]} {lines[2]}\n".encode(), 200)):
        body, headers = multipart_file(filename, data)
        reply = request(server.url + "/translate_file", "POST", body, headers)
        assert reply.status == (status if files else 501), reply.body[:300]
    if files:
        assert request(reply.json()["translatedFileUrl"]).body.decode() == f"{cli_text[0]}\n\n{cli_text[1]} {cli_text[2]}\n"
    assert request(server.url + "/health").status == 200
    still_serving(server, lines, cli_text)
    assert "Traceback" not in server.stderr()


def cli_line(server: Server, sentence: str) -> str:
    return post_json(server.url + "/translate", {"q": sentence, "source": "en", "target": "de"}).json()["translatedText"]


def multipart_file(filename: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "b0undary7f3a"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="source"\r\n\r\nen\r\n'
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_a_client_that_disconnects_is_dropped_from_the_queue(server, lines, cli_text):
    dropped = server.metric("seq2seq_dropped_sentences_total", 'reason="disconnected"')
    translated = server.metric("seq2seq_sentences_total")
    heavy = {"q": [" ".join(lines[i : i + 4]) for i in range(150)], "beam_size": 32, "max_len_ratio": 2.0}
    light = {"q": lines[:20]}
    sockets = []
    for body in (heavy, light):  # the worker is busy with the first while the second waits behind it
        data = json.dumps(body).encode()
        s = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        s.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        sockets.append(s)
    time.sleep(0.5)
    for s in sockets:
        s.close()
    until, done = time.monotonic() + 60, (0.0, 0.0)
    while time.monotonic() < until:  # until every sentence has been translated or dropped
        done = (server.metric("seq2seq_dropped_sentences_total", 'reason="disconnected"') - dropped, server.metric("seq2seq_sentences_total") - translated)
        if sum(done) >= 170:
            break
        time.sleep(0.1)
    assert sum(done) == 170 and server.metric("seq2seq_queue_sentences") == 0
    assert done[0] >= 20  # at least all of the second request
    still_serving(server, lines, cli_text)
    assert server.stderr().count('"POST /v1/translate HTTP/1.1" 499') >= 2


def test_operational_endpoints(server, trained_model_dir):
    assert request(server.url + "/health").json() == {"status": "alive"}
    assert request(server.url + "/ready").json() == {"status": "ready"}
    assert request(server.url + "/languages").json() == [{"code": "en", "name": "English", "targets": ["de"]}]
    model = request(server.url + "/v1/model").json()
    meta = json.loads((trained_model_dir / "meta.json").read_text())
    assert (model["source"], model["target"], model["parameters"]) == ("en", "de", meta["num_parameters"])
    assert model["scores"]["validation"] == {"bleu": meta["valid_bleu"], "signature": meta["valid_bleu_signature"]}
    assert model["search_defaults"] == {**dataclasses.asdict(SearchOptions()), **OPTIONS}
    assert model["versions"]["seq2seq"] and model["versions"]["fastapi"]
    metrics = request(server.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in (
        "seq2seq_requests_total",
        "seq2seq_request_seconds_bucket",
        "seq2seq_sentences_total",
        "seq2seq_target_tokens_total",
        "seq2seq_batch_sentences_bucket",
        "seq2seq_queue_sentences",
    ):
        assert name in metrics.body.decode()
    assert server.metric("seq2seq_requests_total", 'endpoint="/languages",status="200"') >= 1
    # One access line per request on stderr.
    assert '"GET /languages HTTP/1.1" 200' in server.stderr()


def test_attention_is_the_plot_tools(server, trained_model_dir, lines):
    """/v1/attention (Translator.attention) gives what tools/plot_attention.py computes on its own."""
    from conftest import load_tool

    src, tgt, translation, weights = load_tool("plot_attention").attend(trained_model_dir, lines[5], beam_size=2)
    reply = post_json(server.url + "/v1/attention", {"q": lines[5], "beam_size": 2, "max_len_ratio": 2.0})
    assert reply.status == 200, reply.body
    got = reply.json()
    assert (got["source"], got["target"], got["translation"]) == (src, tgt, translation)
    assert torch.allclose(torch.tensor(got["weights"]), weights, atol=1e-6)


def text_of(driver, selector: str, part: str = "") -> list[str]:
    """The exact text (textContent, no whitespace folded) of the elements a CSS selector finds, or of a part of each."""
    return driver.execute_script(f"return [...document.querySelectorAll(arguments[0])].map((e) => e{'.' + part if part else ''}.textContent)", selector)


def test_page_in_headless_chromium(server, trained_model_dir, lines):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    translator = Translator.from_pretrained(trained_model_dir, device="cpu")
    sentence = lines[3]
    best = translator.translate([sentence], SearchOptions(**OPTIONS))[0]
    nbest = [h.text for h in translator.translate_nbest([sentence], SearchOptions(**{**OPTIONS, "beam_size": 5, "nbest": 5}))[0]]
    attention = translator.attention(sentence, SearchOptions(**OPTIONS))

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(server.url + "/")
        calls = server.metric("seq2seq_requests_total", 'endpoint="/v1/translate",status="200"')
        driver.find_element(By.ID, "source").send_keys(sentence)  # typed key by key
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: text_of(d, "#translation") == [best])
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr")) == len(attention.target))
        # Debounced: one translation for the whole sentence, not one per key.
        assert server.metric("seq2seq_requests_total", 'endpoint="/v1/translate",status="200"') - calls <= 2 < len(sentence)
        assert text_of(driver, "#heatmap tbody th") == attention.target
        assert len(driver.find_elements(By.CSS_SELECTOR, "#heatmap thead th")) == len(attention.source) + 1
        assert len(driver.find_elements(By.CSS_SELECTOR, "#heatmap tbody td")) == len(attention.target) * len(attention.source)
        driver.find_element(By.ID, "alternatives").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#nbest li")) == 5)
        assert text_of(driver, "#nbest li", "firstChild") == nbest
        assert driver.find_element(By.ID, "status").text == ""
        # Paragraph mode: /translate cuts the text into sentences and keeps its line breaks.
        driver.find_element(By.ID, "paragraphs").click()
        source = driver.find_element(By.ID, "source")
        source.clear()
        source.send_keys(f"{lines[0]} {lines[1]}\n\n{lines[2]}")
        expected = post_json(server.url + "/translate", {"q": f"{lines[0]} {lines[1]}\n\n{lines[2]}", "source": "en", "target": "de"}).json()
        wait.until(lambda d: text_of(d, "#translation") == [expected["translatedText"]])
        assert expected["translatedText"].count("\n") == 2 and driver.find_element(By.ID, "status").text == ""
    finally:
        driver.quit()
