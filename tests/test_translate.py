"""The Translator API and seq2seq-translate: bad input keeps the line count, results agree."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seq2seq.translate import Translator

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def translator(trained_model_dir):
    return Translator.from_pretrained(trained_model_dir, device="cpu")


def translate_cli(model_dir, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "seq2seq-translate", "--model", str(model_dir), *args], input=data, capture_output=True, env=ENV, timeout=120)


def test_api_rejects_bad_arguments(translator):
    with pytest.raises(TypeError, match="not a single string"):
        translator.translate("A dog.")
    with pytest.raises(TypeError, match="list of strings"):
        translator.translate(None)
    with pytest.raises(TypeError, match=r"sentences\[1\] must be a str"):
        translator.translate(["A dog.", 3])
    with pytest.raises(ValueError, match="beam_size must be an integer >= 1"):
        translator.translate(["A dog."], beam_size=0)
    with pytest.raises(ValueError, match="cannot exceed beam_size"):
        translator.translate_nbest(["A dog."], beam_size=2, nbest=3)


def test_nbest_sorted_by_score(translator):
    nbest = translator.translate_nbest(["The big dog sees a small cat.", "We laugh."], beam_size=4, nbest=4)
    for hyps in nbest:
        assert len(hyps) == 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
    assert translator.translate(["The big dog sees a small cat."], beam_size=4)[0] == nbest[0][0].text


def test_sampling_is_seeded(translator):
    a = translator.translate_nbest(["The big dog sees a small cat."], nbest=3, mode="sample", temperature=1.5, seed=1)
    b = translator.translate_nbest(["The big dog sees a small cat."], nbest=3, mode="sample", temperature=1.5, seed=1)
    assert [h.text for h in a[0]] == [h.text for h in b[0]]


HOSTILE = [
    b"The dog sees the cat.",
    b"",
    b"   \t ",
    b"A cat \xff\xfe laughs.",  # invalid UTF-8
    b"The woman\x07 sleeps\x1b.",  # control characters
    "The man\u2028reads the letter.".encode(),  # U+2028 inside a line
    "The bird\u0085swims.".encode(),  # U+0085 (NEL) inside a line
    b"We help the child.\r",  # a CRLF line end
    b" ".join([b"the big dog"] * 200),  # far longer than the model's maximum length
    b"The last line has no newline.",
]


def test_hostile_input_keeps_one_line_out_per_line_in(trained_model_dir):
    result = translate_cli(trained_model_dir, b"\n".join(HOSTILE), "--beam-size", "2")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode("utf-8").split("\n")
    assert out[-1] == "" and len(out) - 1 == len(HOSTILE)
    assert out[1] == "" and out[2] == ""
    assert all(out[i] for i in (0, 3, 4, 5, 6, 7, 8, 9))
    err = result.stderr.decode()
    assert "line 4: invalid UTF-8" in err
    assert "line 9 has" in err and "pieces" in err


def test_api_equals_cli(trained_model_dir, translator):
    sentences = ["The dog sees the cat.", "A small woman laughs.", "", "They believe that the king reads a letter."]
    result = translate_cli(trained_model_dir, "\n".join(sentences).encode() + b"\n", "--beam-size", "3", "--batch-size", "2")
    assert result.stdout.decode().split("\n")[:-1] == translator.translate(sentences, beam_size=3)


def test_json_output_and_nbest_text_format(trained_model_dir):
    result = translate_cli(trained_model_dir, b"The dog sees the cat.\n\n", "--output-type", "json", "--nbest", "2", "--beam-size", "2")
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["line"] for r in records] == [0, 1]
    assert len(records[0]["hypotheses"]) == 2 and records[1]["hypotheses"][0]["text"] == ""
    result = translate_cli(trained_model_dir, b"The dog sees the cat.\nWe laugh.\n", "--nbest", "2", "--beam-size", "2")
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 4 and [line.split(" ||| ")[0] for line in lines] == ["0", "0", "1", "1"]


def test_files_instead_of_pipes(trained_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("The dog sees the cat.\nWe laugh.\n")
    out = tmp_path / "out.txt"
    result = translate_cli(trained_model_dir, b"", "--input", str(src), "--output", str(out))
    assert result.returncode == 0 and result.stdout == b""
    assert len(out.read_text().splitlines()) == 2
    assert b"translated 2 lines in" in result.stderr  # a long file job says what it did


def test_fifo_as_input_is_read_once(trained_model_dir, tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"The dog sees the cat.\nWe laugh.\n"), daemon=True)
    writer.start()
    result = translate_cli(trained_model_dir, b"", "--input", str(fifo), "--beam-size", "1")
    writer.join(timeout=10)
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.decode().splitlines()) == 2


def test_count_lines_counts_a_last_line_without_newline(tmp_path):
    from seq2seq.cli import _count_lines

    for content, expected in [(b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\r\n\nb\n", 3)]:
        (tmp_path / "f").write_bytes(content)
        assert _count_lines(str(tmp_path / "f")) == expected


def test_streams_before_stdin_closes(trained_model_dir):
    proc = subprocess.Popen([BIN / "seq2seq-translate", "--model", str(trained_model_dir), "--beam-size", "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    try:
        proc.stdin.write(b"The dog sees the cat.\n")
        proc.stdin.flush()
        first = proc.stdout.readline()  # blocks until translated, with stdin still open
        assert first.strip()
        assert proc.poll() is None
        proc.stdin.write(b"We laugh.\n")
        proc.stdin.close()
        assert proc.stdout.readline().strip()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


def test_precision_is_checked_and_low_precision_is_not_saved(trained_model_dir, tmp_path):
    with pytest.raises(ValueError, match="fp32, bf16, int8"):
        Translator.from_pretrained(trained_model_dir, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision='fp32'"):
        Translator.from_pretrained(trained_model_dir, device="cpu", precision="bf16").save_pretrained(tmp_path / "x")


def test_ensemble_cannot_be_saved_as_one_model(trained_model_dir, tmp_path):
    translator = Translator.from_pretrained([trained_model_dir, trained_model_dir], device="cpu")
    with pytest.raises(ValueError, match="seq2seq-average"):
        translator.save_pretrained(tmp_path / "out")
