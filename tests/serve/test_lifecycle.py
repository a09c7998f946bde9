"""seq2seq-serve's keys, deadlines, graceful SIGTERM and usage errors; and the translation path without it."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from serving import ENV, assert_same_records, cli_records, post_json, request, running_server

from seq2seq.textfiles import read_lines

pytestmark = pytest.mark.slow  # trained_model_dir trains

OPTIONS = {"beam_size": 2, "max_len_ratio": 0.5}
CLI = ["--beam-size", "2", "--max-len-ratio", "0.5"]
KEY = "k-3f9a7c"
TIMEOUT_S = 2


@pytest.fixture(scope="module")
def lines(demo_dir) -> list[str]:
    return read_lines(demo_dir / "train.en.gz")[:40]


@pytest.fixture(scope="module")
def expected(trained_model_dir, lines) -> dict[str, dict]:
    """seq2seq-translate's JSON record of each line, by line."""
    return {r["source"]: r for r in cli_records(trained_model_dir, lines, *CLI)}


@pytest.fixture(scope="module")
def guarded(trained_model_dir, tmp_path_factory):
    """A server that needs a key and answers 503 after TIMEOUT_S seconds."""
    tmp = tmp_path_factory.mktemp("guarded")
    (tmp / "keys").write_text(f"# the test's key\n{KEY}\n\nanother-key  # a second one\n")
    args = ["--options", json.dumps(OPTIONS), "--api-keys", str(tmp / "keys"), "--timeout", str(TIMEOUT_S), "--max-batch-tokens", "64"]
    with running_server(trained_model_dir, tmp / "stderr.log", *args, headers={"Authorization": f"Bearer {KEY}"}) as server:
        yield server


def test_api_keys(guarded, lines, expected):
    url, body = guarded.url, {"q": lines[0], "source": "en", "target": "de"}
    for headers, extra in (({}, {}), ({}, {"api_key": "wrong"}), ({"Authorization": "Bearer wrong"}, {}), ({"Authorization": KEY}, {})):
        reply = post_json(url + "/translate", {**body, **extra}, headers)
        assert reply.status == 403 and "API key" in reply.json()["error"], (headers, extra)
    for headers, extra in (({}, {"api_key": KEY}), ({}, {"api_key": "another-key"}), ({"Authorization": f"Bearer {KEY}"}, {})):
        reply = post_json(url + "/translate", {**body, **extra}, headers)
        assert reply.status == 200 and reply.json()["translatedText"] == expected[lines[0]]["hypotheses"][0]["text"], (headers, extra)
    form = request(url + "/translate", "POST", f"q=A+dog.&api_key={KEY}".encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 200
    assert post_json(url + "/v1/translate", {"q": lines[0]}).status == 403
    assert post_json(url + "/v1/translate", {"q": lines[0], "api_key": KEY}).status == 200
    for path in ("/", "/languages", "/v1/model", "/metrics"):
        assert request(url + path).status == 403, path
        assert request(url + path + f"?api_key={KEY}").status == 200, path
    for path in ("/health", "/ready"):
        assert request(url + path).status == 200, path
    assert KEY not in guarded.stderr()  # the access log leaves the query string out


def test_a_request_over_its_deadline_gets_503_then_the_server_translates(guarded, lines, expected):
    auth = {"Authorization": f"Bearer {KEY}"}
    # About twice the work the deadline allows on a 2-core CPU: when it passes, sentences are still queued.
    heavy = {"q": [" ".join(lines[i : i + 4]) for i in range(30)] * 2, "beam_size": 32, "max_len_ratio": 2.0}
    start = time.monotonic()
    reply = post_json(guarded.url + "/v1/translate", heavy, auth)
    assert reply.status == 503, reply.body
    assert TIMEOUT_S <= time.monotonic() - start < TIMEOUT_S + 10
    assert "--timeout" in reply.json()["error"] and int(reply.headers["retry-after"]) >= 1
    reply = post_json(guarded.url + "/v1/translate", {"q": lines[:3]}, auth)
    assert reply.status == 200, reply.body
    assert_same_records(reply.json()["translations"], [{**expected[line], "line": i} for i, line in enumerate(lines[:3])])
    assert guarded.metric("seq2seq_dropped_sentences_total", 'reason="deadline"') > 0


def test_sigterm_under_load_answers_every_accepted_request(trained_model_dir, tmp_path, lines, expected):
    with running_server(trained_model_dir, tmp_path / "stderr.log", "--options", json.dumps(OPTIONS)) as server:
        answers: list[tuple[float, int, list[str], dict | None]] = []
        refused: list[str] = []
        stop = threading.Event()

        def client(k: int) -> None:
            n = k
            while not stop.is_set():
                q = [lines[n % len(lines)], lines[(n + 7) % len(lines)]]
                n += 3
                try:
                    reply = post_json(server.url + "/v1/translate", {"q": q}, timeout=60)
                except (ConnectionError, http.client.HTTPException, OSError) as err:  # not accepted: refused or closed before read
                    refused.append(type(err).__name__)
                    if sigterm_at:
                        return
                    continue
                answers.append((time.monotonic(), reply.status, q, reply.json() if reply.status == 200 else None))

        sigterm_at = 0.0
        threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        until = time.monotonic() + 60
        while len(answers) < 20 and time.monotonic() < until:
            time.sleep(0.05)
        sigterm_at = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(60)
        stop.set()
        for t in threads:
            t.join(60)
        log = server.stderr()

    assert code == 0, log
    assert [status for _, status, _, _ in answers] == [200] * len(answers)
    for _, _, q, body in answers:
        assert_same_records(body["translations"], [{**expected[line], "line": i} for i, line in enumerate(q)])
    assert any(at > sigterm_at for at, _, _, _ in answers)  # requests in flight at the signal were answered
    # None accepted is lost: every request the server logged was answered 200, and every 200 was logged.
    logged = [line for line in log.splitlines() if '"POST /v1/translate HTTP/1.1"' in line]
    assert len(logged) == len(answers) and all('" 200 ' in line for line in logged)
    assert "Traceback" not in log


def test_usage_errors_exit_2_with_a_message(tmp_path, trained_model_dir, capsys):
    from seq2seq.cli.serve import main as serve_main

    model = ["--model", str(trained_model_dir)]
    for args, words in (
        ([*model, "--options", '{"beam_sise": 3}'], "beam_sise is not an option"),
        ([*model, "--options", "[1]"], "JSON object"),
        ([*model, "--timeout", "0"], "--timeout"),
        ([*model, "--char-limit", "0"], "--char-limit must be >= 1, or -1 for no limit"),
        ([*model, "--req-limit", "-5"], "--req-limit"),
        ([*model, "--cors", " , "], "--cors needs at least one origin"),
        ([*model, "--file-ttl", "0"], "--file-ttl"),
        ([*model, "--workers", "-1"], "--workers must be >= 0"),
        ([*model, "--api-keys", str(tmp_path / "no-keys")], "--api-keys"),
        (["--model", str(tmp_path / "missing")], "missing"),
    ):
        try:
            code = serve_main(args)
        except SystemExit as usage:  # argparse's parser.error
            code = usage.code
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert words in err and "Traceback" not in err, (args, err)


def test_translate_command_imports_no_web_framework(trained_model_dir):
    code = (
        "import sys\n"
        "from seq2seq.cli.translate import main as translate_main\n"
        f"rc = translate_main(['--model', {str(trained_model_dir)!r}, '--quiet'])\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette', 'pydantic', 'prometheus_client', 'selenium')"
        " or m.startswith('seq2seq.serve'))\n"
        "print(web, file=sys.stderr)\n"
        "sys.exit(rc or (3 if web else 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=b"A man is sleeping.\n", capture_output=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().strip() == "[]" and done.stdout.count(b"\n") == 1
