"""seq2seq-translate (seq2seq/cli/translate.py): lines in, lines out, its flags and exit codes."""

import json
import os
import queue
import subprocess
import sys
import threading

import pytest
import torch
from commands import BIN, ENV, SENTENCES, exit_code, run, translate_cli
from hypothesis import given
from hypothesis import strategies as st

from seq2seq.cli.translate import main as translate_main
from seq2seq.options import SearchOptions

from conftest import FAST, HOSTILE, HOSTILE_CLEANED


def test_bad_model_directory_exits_2_without_traceback(tmp_path):
    result = run([BIN / "seq2seq-translate", "--model", str(tmp_path / "missing")], input=b"hello\n")
    assert result.returncode == 2
    assert b"is not a directory" in result.stderr and b"Traceback" not in result.stderr


def test_clean_line_replaces_controls_and_line_separators():
    from seq2seq.inference.output import clean_line

    for raw, cleaned in [("a\x07b\x1bc", "a b c"), ("a\u2028b\u2029c\u0085d", "a b c d"), ("a\tb\x00", "a b "), ("Grüße, „Hund“ ⁇ 😀", "Grüße, „Hund“ ⁇ 😀")]:
        assert clean_line(raw) == cleaned


@pytest.mark.slow
def test_hostile_input_keeps_one_line_out_per_line_in(trained_model_dir, translator):
    result = translate_cli(trained_model_dir, b"\n".join(HOSTILE), "--beam-size", "2")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode("utf-8")
    out = text.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(HOSTILE)
    assert len(text.splitlines()) == len(HOSTILE)  # no U+2028, U+0085 or CR reached the output either
    assert out[1] == "" and out[2] == ""
    assert all(out[i] for i in range(len(HOSTILE)) if i not in (1, 2))
    err = result.stderr.decode()
    assert "line 4: invalid UTF-8" in err
    too_long = next(i for i, line in enumerate(HOSTILE) if len(line) > 1000)
    assert f"line {too_long + 1} has" in err and "pieces" in err
    # The model saw the cleaned lines: the JSON output echoes what was translated, and each
    # translation is the API's translation of the cleaned line.
    result = translate_cli(trained_model_dir, b"\n".join(HOSTILE), "--beam-size", "2", "--output-type", "json")
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [r["source"] for r in records] == HOSTILE_CLEANED
    expected = translator.translate(HOSTILE_CLEANED, SearchOptions(beam_size=2))
    assert [r["hypotheses"][0]["text"] for r in records] == expected
    assert out[:-1] == expected


@pytest.mark.slow
@FAST
@given(data=st.binary(max_size=3000), long_words=st.integers(0, 400))
def test_translate_command_keeps_the_line_count(trained_model_dir, tmp_path_factory, data, long_words):
    data = data + b"\n" + b"dog " * long_words
    work = tmp_path_factory.mktemp("fuzz")
    (work / "in").write_bytes(data)
    code = translate_main(["--model", str(trained_model_dir), "--input", str(work / "in"), "--output", str(work / "out"), "--beam-size", "1", "--quiet"])
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
    from seq2seq.cli.translate import _count_lines

    for content, expected in [(b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\r\n\nb\n", 3)]:
        (tmp_path / "f").write_bytes(content)
        assert _count_lines(str(tmp_path / "f")) == expected


def readline_within(stream, seconds: float) -> bytes:
    """One line from a pipe, or a test failure after `seconds`: a regression must fail, not hang."""
    box: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: box.put(stream.readline()), daemon=True).start()
    try:
        return box.get(timeout=seconds)
    except queue.Empty:
        pytest.fail(f"no line within {seconds} s")


@pytest.mark.slow
def test_streams_before_stdin_closes(trained_model_dir):
    proc = subprocess.Popen(
        [BIN / "seq2seq-translate", "--model", str(trained_model_dir), "--beam-size", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    try:
        proc.stdin.write(b"The dog sees the cat.\n")
        proc.stdin.flush()
        first = readline_within(proc.stdout, 60)  # start-up and one translation, with stdin still open
        assert first.strip()
        assert proc.poll() is None
        proc.stdin.write(b"We laugh.\n")
        proc.stdin.flush()
        assert readline_within(proc.stdout, 10).strip()  # the second line is answered without EOF too
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()


@pytest.mark.slow
def test_translate_command_takes_several_models(trained_model_dir):
    data = "\n".join(SENTENCES).encode() + b"\n"
    one = translate_cli(trained_model_dir, data)
    two = subprocess.run(
        [BIN / "seq2seq-translate", "--model", str(trained_model_dir), str(trained_model_dir)],
        input=data,
        capture_output=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout


def test_translate_usage_errors_exit_2(tmp_path, capsys):
    for args, message in [
        (["--device", "tpu"], "device must be one of auto, cpu, cuda, cuda:N; got 'tpu'"),
        (["--beam-size", "0"], "--beam-size must be an integer >= 1"),
        (["--precision", "fp16"], "invalid choice: 'fp16'"),
        (["--top-k", "10"], "--top-k applies to sampling only: add --sample"),
        (["--top-p", "0.9", "--seed", "3"], "--top-p, --seed apply to sampling only"),
    ]:
        assert exit_code(translate_main, ["--model", str(tmp_path), *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)


def parse_nbest(stdout: bytes) -> list[tuple[int, str, str]]:
    rows = []
    for line in stdout.decode().splitlines():
        number, text, score = line.split(" ||| ")
        rows.append((int(number), text, score))
    return rows


@pytest.mark.slow
def test_nbest_score_field_and_length_penalty_equal_the_api(trained_model_dir, translator):
    result = translate_cli(trained_model_dir, "\n".join(SENTENCES).encode() + b"\n", "--nbest", "3", "--beam-size", "3", "--length-penalty", "0")
    assert result.returncode == 0, result.stderr.decode()
    api = translator.translate_nbest(SENTENCES, SearchOptions(beam_size=3, nbest=3, length_penalty=0.0))
    assert parse_nbest(result.stdout) == [(i, h.text, f"{h.score:.4f}") for i, hyps in enumerate(api) for h in hyps]
    # The flag matters: with the default penalty the scores are others.
    default = translator.translate_nbest(SENTENCES, SearchOptions(beam_size=3, nbest=3))
    assert [f"{h.score:.4f}" for hyps in default for h in hyps] != [row[2] for row in parse_nbest(result.stdout)]


@pytest.mark.slow
def test_precision_flag_loads_the_model_in_that_precision(trained_model_dir, translator):
    from seq2seq.inference.translator import Translator

    result = translate_cli(trained_model_dir, "\n".join(SENTENCES).encode() + b"\n", "--precision", "int8", "--output-type", "json", "--beam-size", "2")
    assert result.returncode == 0, result.stderr.decode()
    scores = [json.loads(line)["hypotheses"][0]["score"] for line in result.stdout.decode().splitlines()]
    int8 = Translator.from_pretrained(trained_model_dir, device="cpu", precision="int8").translate_nbest(SENTENCES, SearchOptions(beam_size=2))
    fp32 = translator.translate_nbest(SENTENCES, SearchOptions(beam_size=2))
    assert scores == pytest.approx([hyps[0].score for hyps in int8], abs=1e-5)
    assert scores != pytest.approx([hyps[0].score for hyps in fp32], abs=1e-5)


@pytest.mark.slow
def test_max_len_ratio_and_device_flags(trained_model_dir, translator):
    sentences = ["They believe that the king reads a letter to the small children in the garden.", *SENTENCES]
    unlimited = translator.translate_nbest(sentences, SearchOptions(beam_size=2))
    assert max(len(hyps[0].tokens) for hyps in unlimited) > 10  # so that the limit below bites
    result = translate_cli(
        trained_model_dir, "\n".join(sentences).encode() + b"\n", "--max-len-ratio", "0", "--device", "cpu", "--output-type", "json", "--beam-size", "2"
    )
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert all(len(r["hypotheses"][0]["tokens"]) <= 10 for r in records)  # 0 * S + max_len_offset 10
    limited = translator.translate(sentences, SearchOptions(beam_size=2, max_len_ratio=0.0))
    assert [r["hypotheses"][0]["text"] for r in records] == limited
    if not torch.cuda.is_available():
        result = translate_cli(trained_model_dir, b"We laugh.\n", "--device", "cuda")
        assert result.returncode == 2 and b"no CUDA device is available" in result.stderr


PARAGRAPHS = [
    "The dog sees the cat.  A small woman laughs.",
    "",
    "We laugh. They believe that the king reads a letter.\tThe man is sleeping.",
    "Two dogs play in the park.",
]


@pytest.mark.slow
def test_split_sentences_translates_each_sentence_of_a_line(trained_model_dir, translator):
    data = "\n".join(PARAGRAPHS).encode() + b"\n"
    result = translate_cli(trained_model_dir, data, "--split-sentences", "--beam-size", "2")
    assert result.returncode == 0, result.stderr.decode()
    options = SearchOptions(beam_size=2)
    from seq2seq.inference.output import clean_line

    expected = translator.translate_text([clean_line(p) for p in PARAGRAPHS], options)  # the tab becomes a space, as on every line
    assert result.stdout.decode().split("\n") == [*expected, ""]
    # One by one, joined with the line's own spacing.
    first = translator.translate(["The dog sees the cat.", "A small woman laughs."], options)
    assert expected[0] == f"{first[0]}  {first[1]}"
    # A line of one sentence gives what it gives without the flag.
    assert expected[3] == translator.translate([PARAGRAPHS[3]], options)[0]
    result = translate_cli(trained_model_dir, data, "--split-sentences", "--beam-size", "2", "--output-type", "json")
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["hypotheses"][0]["text"] for r in records] == expected
    assert [r["source"] for r in records] == [clean_line(p) for p in PARAGRAPHS]
    assert [s["source"] for s in records[2]["sentences"]] == ["We laugh.", "They believe that the king reads a letter.", "The man is sleeping."]
    assert records[1]["sentences"] == [] and records[1]["hypotheses"][0]["text"] == ""
    assert records[0]["hypotheses"][0]["score"] == pytest.approx(sum(s["score"] for s in records[0]["sentences"]))


@pytest.mark.slow
def test_format_html_keeps_the_markup(trained_model_dir, translator):
    pytest.importorskip("seq2seq.inference.html")
    lines = ['<p>The dog sees the cat. <b class="x">We laugh.</b></p>', "<ul><li>The man is sleeping.</li></ul>"]
    result = translate_cli(trained_model_dir, "\n".join(lines).encode() + b"\n", "--format", "html", "--beam-size", "2")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == translator.translate_text(lines, SearchOptions(beam_size=2), format="html")


def test_split_sentences_refuses_what_it_cannot_combine_with(tmp_path, capsys, monkeypatch):
    for args, message in [
        (["--split-sentences", "--nbest", "2", "--beam-size", "2"], "--nbest 2 cannot be combined with --split-sentences"),
        (["--format", "html", "--nbest", "2", "--beam-size", "2"], "--nbest 2 cannot be combined with --format html"),
        (["--split-sentences", "--input-type", "json"], "--input-type json cannot be combined with --split-sentences"),
        (["--format", "xml"], "invalid choice: 'xml'"),
    ]:
        assert exit_code(translate_main, ["--model", str(tmp_path), *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
    monkeypatch.setitem(sys.modules, "sentencex", None)
    assert exit_code(translate_main, ["--model", str(tmp_path), "--split-sentences"]) == 2
    assert 'pip install "seq2seq[text]"' in capsys.readouterr().err
