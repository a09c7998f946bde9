"""Corpus files as lists of lines, split exactly as the toolkit counts lines everywhere."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal, TextIO


def split_lines(text: str) -> list[str]:
    """Split on "\\n" only, so empty lines and other Unicode separators survive.

    str.splitlines() would also split on characters such as U+2028 and so misalign a corpus; a
    single final newline does not start another line, and a CRLF line end loses its "\\r".
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [strip_line_end(line) for line in lines]


def strip_line_end(line: str) -> str:
    """A line without its "\\n" or "\\r\\n" end; any other "\\r" is the line's own."""
    line = line[:-1] if line.endswith("\n") else line
    return line[:-1] if line.endswith("\r") else line


def open_text(path: str | os.PathLike[str], errors: Literal["strict", "replace"] = "strict") -> TextIO:
    """Open a UTF-8 corpus for reading, gzip-compressed if the name ends in .gz. Only "\n" ends a
    line when it is iterated, and line ends reach the caller untranslated.

    errors="strict" raises on invalid UTF-8 (scoring: a broken file must not score); "replace"
    turns it into U+FFFD (training data: one bad byte should not stop a run)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8", errors=errors, newline="\n")


def read_lines(path: str | os.PathLike[str], errors: Literal["strict", "replace"] = "strict") -> list[str]:
    """Read a UTF-8 corpus (see open_text), one entry a line."""
    with open_text(path, errors) as f:
        return split_lines(f.read())


def write_lines(path: str | os.PathLike[str], lines: list[str]) -> None:
    """Write a UTF-8 corpus, each line "\\n"-terminated, gzip-compressed if the name ends in .gz.

    mtime=0 and an empty filename make gzip's bytes reproducible; writing to a temporary name first
    means an interrupted run never leaves a truncated file behind."""
    path = Path(path)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(data)
        else:
            raw.write(data)
    tmp.replace(path)
