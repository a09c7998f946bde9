"""Stand-ins for seq2seq.inference.language and seq2seq.inference.files with their interfaces, for the
web layer's tests where those modules (or their optional packages) are not installed."""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from typing import Literal

GERMAN = {"der", "die", "das", "und", "ist", "ein", "eine", "nicht", "mit", "auf"}
ENGLISH = {"the", "a", "is", "and", "of", "on", "with", "not", "an", "dog", "man"}


@dataclass(frozen=True)
class Detected:
    language: str
    confidence: float


def detect_languages(text: str, limit: int = 3) -> list[Detected]:
    words = [w.strip(".,!?").lower() for w in text.split()]
    if not any(ch.isalpha() for ch in text):
        return []
    de, en = sum(w in GERMAN for w in words), sum(w in ENGLISH for w in words)
    total = max(1, de + en)
    found = sorted([Detected("en", 100.0 * max(en, 0.5) / total), Detected("de", 100.0 * de / total)], key=lambda d: -d.confidence)
    return found[:limit]


class FileError(ValueError):
    pass


FILE_FORMATS = (".txt", ".html", ".docx")


@dataclass(frozen=True)
class Document:
    texts: list[str]
    formats: list[Literal["text", "html"]]
    suffix: str

    def write(self, translations: list[str]) -> bytes:
        return "\n\n".join(translations).encode("utf-8")


def read_document(data: bytes, filename: str) -> Document:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in FILE_FORMATS:
        raise FileError(f"{filename}: not a supported file; send one of {', '.join(FILE_FORMATS)}")
    if suffix == ".docx":
        if not data.startswith(b"PK"):
            raise FileError(f"{filename} is not a .docx file (not a zip archive)")
        raise FileError("the stand-in reads no .docx")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FileError(f"{filename} is not UTF-8 text ({err})") from None
    paragraphs = text.split("\n\n")
    return Document(paragraphs, ["html" if suffix == ".html" else "text"] * len(paragraphs), suffix)


def install() -> list[str]:
    """Put the stand-ins in sys.modules where the real modules cannot be imported; the names put there."""
    installed = []
    for name, members in (
        ("seq2seq.inference.language", {"Detected": Detected, "detect_languages": detect_languages}),
        ("seq2seq.inference.files", {"FileError": FileError, "FILE_FORMATS": FILE_FORMATS, "Document": Document, "read_document": read_document}),
    ):
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(members)
            sys.modules[name] = module
            installed.append(name)
    return installed


def uninstall(names: list[str]) -> None:
    for name in names:
        sys.modules.pop(name, None)
