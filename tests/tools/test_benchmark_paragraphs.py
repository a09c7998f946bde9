"""tools/benchmark_paragraphs.py: its helpers alone, a failed request stopping a load, and one sitting
on the tiny model, where paragraphs of the demo's one-sentence lines come back as their lines joined."""

import gzip
import json

import pytest

from conftest import load_tool

benchmark_paragraphs = load_tool("benchmark_paragraphs")


def test_grouping_and_sentence_ends():
    lines = ["A man runs", "A dog sits.", "Is it raining?", "  ", "She said “no”"]
    assert benchmark_paragraphs.grouped(lines[:3], 2) == ["A man runs A dog sits.", "Is it raining?"]
    ended = benchmark_paragraphs.end_sentences(lines)
    assert ended == ["A man runs.", "A dog sits.", "Is it raining?", "  ", "She said “no”."]
    # Without the full stop the first caption runs into the second: one sentence where two went in.
    split = benchmark_paragraphs.split_sentences
    assert len(split(benchmark_paragraphs.grouped(lines, 2)[0], language="en")) == 1
    assert len(split(benchmark_paragraphs.grouped(ended, 2)[0], language="en")) == 2


def test_a_failed_request_stops_the_load():
    # Nothing listens on the port: the clients fail, and the load says so instead of returning empty answers.
    with pytest.raises(SystemExit, match="a client's request failed: ConnectionRefusedError"):
        benchmark_paragraphs.load(benchmark_paragraphs.free_port(), ["A man runs.", "A dog sits.", "Hi."], 2)


def test_the_load_reads_each_answer_and_stops_at_one_that_is_not_200():
    import http.server
    import threading

    class Answers(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the load's clients expect

        def do_POST(self):
            text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["q"]
            status, body = (503, b'{"error": "busy"}') if text == "Hi." else (200, json.dumps({"translatedText": text.upper()}).encode())
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        seconds, latencies, answers = benchmark_paragraphs.load(port, ["A man runs.", "A dog sits."], 2)
        assert answers == ["A MAN RUNS.", "A DOG SITS."] and seconds > 0 and all(t > 0 for t in latencies)
        with pytest.raises(SystemExit, match=r"request 2 answered 503: b'\{\"error\": \"busy\"\}'"):
            benchmark_paragraphs.load(port, ["A man runs.", "A dog sits.", "Hi."], 2)
    finally:
        server.shutdown()


def test_wrong_arguments_are_usage_errors(tmp_path, capsys):
    src, ref = tmp_path / "src.en", tmp_path / "ref.de"
    src.write_text("A man runs.\nA dog sits.\n")
    ref.write_text("Ein Mann läuft.\n")
    with pytest.raises(SystemExit) as stopped:
        benchmark_paragraphs.main(["--model", "unused", "--src", str(src), "--ref", str(ref)])
    assert stopped.value.code == 2 and "--src has 2 lines and --ref 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        benchmark_paragraphs.main(["--model", "unused", "--src", str(src), "--ref", str(src), "--concurrency", "1", "0"])
    assert stopped.value.code == 2 and "every --concurrency >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_paragraphs_against_lines(trained_model_dir, demo_dir, tmp_path, capsys):
    # 22 sentences in groups of 4: five full paragraphs and a short last one of 2.
    src, ref = tmp_path / "src.en.gz", tmp_path / "ref.de.gz"
    for name, out in (("test.en.gz", src), ("test.de.gz", ref)):
        with gzip.open(demo_dir / name, "rt", encoding="utf-8") as f:
            out.write_bytes(gzip.compress("".join(f.readlines()[:22]).encode("utf-8")))
    out = tmp_path / "figures.json"
    code = benchmark_paragraphs.main(
        [
            "--model", str(trained_model_dir), "--src", str(src), "--ref", str(ref), "--limit", "22", "--group", "4",
            "--concurrency", "1", "3", "--serve-args", '--options {"beam_size":1,"max_len_ratio":0.5}', "--json", str(out),
        ]
    )  # fmt: skip
    figures = json.loads(out.read_text())
    assert code == 0 and figures["server_exit_code"] == 0
    assert (figures["sentences"], figures["paragraphs"], figures["group"]) == (22, 6, 4)
    assert [r["concurrency"] for r in figures["rows"]] == [1, 3]
    for r in figures["rows"]:
        assert r["lines_sentences_per_s"] > 0 and r["paragraphs_sentences_per_s"] > 0 and r["speed_ratio"] > 0
        assert 0 < r["lines_p50_ms"] <= r["lines_p95_ms"] and 0 < r["paragraphs_p50_ms"] <= r["paragraphs_p95_ms"]
        assert r["answers_unlike_first"] == 0  # an answer does not depend on what it was batched with
    # Each demo line is one sentence ending in a full stop, so a paragraph's translation is its lines' translations joined.
    assert figures["source_paragraphs_split_unlike_their_lines"] == 0
    assert figures["paragraphs_identical_to_joined_lines"] == 6
    assert figures["bleu_paragraphs"] == figures["bleu_lines_joined"] and figures["bleu_difference"] == 0
    assert 0 <= figures["bleu_lines"] <= 100 and "nrefs:1" in figures["bleu_signature"]
    assert 0 <= figures["paragraphs_split_in_other_counts"] <= 6
    table = capsys.readouterr().out
    assert "| 1 |" in table and "| 3 |" in table and figures["bleu_signature"] in table
