"""seq2seq/textfiles.py: read_lines on plain and gzip files keeps empty lines, strips only line ends, and fails
or replaces on invalid UTF-8."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seq2seq.textfiles import read_lines


def test_read_lines_gzip_keeps_empty_lines_and_strips_only_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "corpus.de.gz"
    with gzip.open(path, "wb") as f:
        f.write("erste Zeile \r\n\nzweite\u2028Zeile\nÄrger am Ende".encode("utf-8"))
    assert read_lines(path) == ["erste Zeile ", "", "zweite\u2028Zeile", "Ärger am Ende"]


def test_read_lines_plain_file_with_trailing_empty_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.de"
    path.write_bytes(b"eins\n\n")
    assert read_lines(path) == ["eins", ""]


def test_invalid_utf8_fails_a_score_but_is_replaced_in_training_data(tmp_path: Path) -> None:
    path = tmp_path / "corpus.de"
    path.write_bytes(b"gut\nkaputt \xff\n")
    with pytest.raises(UnicodeDecodeError):
        read_lines(path)
    assert read_lines(path, errors="replace") == ["gut", "kaputt \ufffd"]
