"""The commands (seq2seq/cli.py): exit codes and messages, stdin to stdout one line per line, files and
FIFOs, JSON and n-best output, several models."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seq2seq.cli import translate_main
from seq2seq.options import SearchOptions

from conftest import FAST

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]
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


def run(cmd, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, env=env, timeout=300, **kwargs)


def translate_cli(model_dir, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "seq2seq-translate", "--model", str(model_dir), *args], input=data, capture_output=True, env=ENV, timeout=120)


def test_cli_exit_code_2_without_traceback(capsys):
    from seq2seq.cli import train_main

    assert train_main(["recipes/demo.yaml", "model.atention=luong", "train.lr=abc"]) == 2
    err = capsys.readouterr().err
    assert "did you mean model.attention?" in err and "train.lr: expected a number" in err
    assert "Traceback" not in err


def test_print_config(capsys):
    from seq2seq.cli import train_main

    assert train_main(["recipes/demo.yaml", "train.lr=0.5", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.5" in out and "attention: bahdanau" in out


def test_bad_model_directory_exits_2_without_traceback(tmp_path):
    result = run([BIN / "seq2seq-translate", "--model", str(tmp_path / "missing")], input=b"hello\n")
    assert result.returncode == 2
    assert b"is not a directory" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.slow
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


@pytest.mark.slow
@FAST
@given(data=st.binary(max_size=3000), long_words=st.integers(0, 400))
def test_translate_command_keeps_the_line_count(trained_model_dir, tmp_path_factory, data, long_words):
    data = data + b"\n" + b"dog " * long_words
    work = tmp_path_factory.mktemp("fuzz")
    (work / "in").write_bytes(data)
    code = translate_main(["--model", str(trained_model_dir), "--input", str(work / "in"), "--output", str(work / "out"),
                           "--beam-size", "1", "--quiet"])
    assert code == 0
    expected = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    out = (work / "out").read_bytes()
    assert out.count(b"\n") == expected and out.endswith(b"\n")
    out.decode("utf-8")


@pytest.mark.slow
def test_api_equals_cli(trained_model_dir, translator):
    sentences = ["The dog sees the cat.", "A small woman laughs.", "", "They believe that the king reads a letter."]
    result = translate_cli(trained_model_dir, "\n".join(sentences).encode() + b"\n", "--beam-size", "3", "--batch-size", "2")
    assert result.stdout.decode().split("\n")[:-1] == translator.translate(sentences, SearchOptions(beam_size=3))


@pytest.mark.slow
def test_json_output_and_nbest_text_format(trained_model_dir):
    result = translate_cli(trained_model_dir, b"The dog sees the cat.\n\n", "--output-type", "json", "--nbest", "2", "--beam-size", "2")
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["line"] for r in records] == [0, 1]
    assert len(records[0]["hypotheses"]) == 2 and records[1]["hypotheses"][0]["text"] == ""
    result = translate_cli(trained_model_dir, b"The dog sees the cat.\nWe laugh.\n", "--nbest", "2", "--beam-size", "2")
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 4 and [line.split(" ||| ")[0] for line in lines] == ["0", "0", "1", "1"]


@pytest.mark.slow
def test_files_instead_of_pipes(trained_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("The dog sees the cat.\nWe laugh.\n")
    out = tmp_path / "out.txt"
    result = translate_cli(trained_model_dir, b"", "--input", str(src), "--output", str(out))
    assert result.returncode == 0 and result.stdout == b""
    assert len(out.read_text().splitlines()) == 2
    assert b"translated 2 lines in" in result.stderr  # a long file job says what it did


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_translate_command_takes_several_models(trained_model_dir):
    data = "\n".join(SENTENCES).encode() + b"\n"
    one = translate_cli(trained_model_dir, data)
    two = subprocess.run([BIN / "seq2seq-translate", "--model", str(trained_model_dir), str(trained_model_dir)],
                         input=data, capture_output=True, env=ENV, timeout=120, check=False)
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout
