"""Real text: a paragraph cut into sentences, and their translations put back with the original
whitespace and line breaks; over-long sentences cut at sentence and then clause boundaries.

Sentences come from sentencex (Wikimedia's rule-based splitter, chosen by measurement in
docs/logs/2026-12-06-sentence-splitters.md); it is an optional extra (`pip install "seq2seq[text]"`)
and imported inside the functions that need it, so the translation path stays light. Nothing else
beyond the standard library is imported here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

FORMATS = ("text", "html")
Format = Literal["text", "html"]

# The characters that end a line for str.splitlines: a line break always ends a sentence.
LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")

# A list item's marker on its own ("1.", "2)", "(a)"), which sentencex cuts off the item it opens.
_MARKER = re.compile(r"\(?(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})[.)]")
# A sentence that ends with an inline list's number ("three things: 1."), when the next one starts lowercase.
_INLINE_NUMBER = re.compile(r"(?:^|\s)\(?\d{1,2}[.)]$")

# Sentence ends that sentencex 1.0.32 misses but treats alike when spelt otherwise: "late… We"
# (it splits "late... We") and "planned.) It" (it splits "planned. It").
_MISSED_END = re.compile(r"(?:\u2026|[.!?]\))\s+(?=[\"'\u201c\u2018(\[]?[A-Z])")

# Where an over-long sentence may be cut, best first; the cut falls after the match, so the
# whitespace stays with the left piece and the pieces concatenate back to the sentence.
CLAUSE_CUTS = (
    re.compile(r";\s+"),
    re.compile(r":\s+"),
    # Relative pronouns (which, who, where) are left to the plain comma: cutting before them
    # separates a subject from its relative clause (measured in the log above).
    re.compile(r",\s+(?=(?:and|but|or|nor|so|yet|while|although|though|because|provided|if|unless)\b)"),
    re.compile(r",\s+"),
)
# A unit of count spans at most this many characters (SentencePiece's pieces are 16 at most by
# default; twice that leaves room for runs of whitespace): no boundary further out can fit.
_CHARS_PER_UNIT = 32
# Without sentencex, a sentence end for the over-long cut: final punctuation, closing quotes or
# brackets, whitespace, then a capital, a digit or an opening quote.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")


class Plan(Protocol):
    """What a text or HTML plan offers its caller: the sentences to translate, and how to put their translations back."""

    @property
    def sentences(self) -> list[str]: ...

    def join(self, translations: list[str]) -> str: ...


@dataclass(frozen=True)
class TextPlan:
    """A text cut into sentences, and how to put their translations back.

    gaps holds the text around the sentences (whitespace and line breaks only):
    gaps[0] + sentences[0] + gaps[1] + ... + sentences[-1] + gaps[-1] is the text.
    """

    sentences: list[str]  # what goes to the model, in order (no blank ones)
    gaps: list[str]  # len(sentences) + 1 entries

    def join(self, translations: list[str]) -> str:
        """One translation per sentence → the translated text, with the original whitespace and line
        breaks; a line break inside a translation becomes a space, so the lines stay the input's."""
        if isinstance(translations, str) or len(translations) != len(self.sentences):
            got = "a str" if isinstance(translations, str) else f"{len(translations)}"
            raise ValueError(f"join needs one translation per sentence ({len(self.sentences)}); got {got}")
        out = [self.gaps[0]]
        for translation, gap in zip(translations, self.gaps[1:]):
            out += [LINE_BREAK.sub(" ", translation), gap]
        return "".join(out)


def plan_text(text: str, max_chars: int | None = None, *, language: str = "en") -> TextPlan:
    """Cut text into its sentences (split_sentences); with max_chars, a sentence longer than that is
    cut further at clause boundaries (cut_long), where one allows. Blank text gives no sentences."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(f"max_chars must be a positive int or None; got {max_chars!r}")
    spans = split_sentences(text, language=language)
    if max_chars is not None:
        spans = [piece for span in spans for piece in _cut_span(text, span, max_chars)]
    sentences = [text[start:end] for start, end in spans]
    edges = [0] + [i for span in spans for i in span] + [len(text)]
    gaps = [text[edges[k] : edges[k + 1]] for k in range(0, len(edges), 2)]
    return TextPlan(sentences, gaps)


def plan(text: str, format: Format, *, language: str = "en") -> Plan:
    """The plan of a text ("text": plan_text in that language) or of an HTML fragment or document
    ("html": seq2seq.inference.html.plan_html)."""
    if format == "text":
        return plan_text(text, language=language)
    elif format == "html":
        from seq2seq.inference.html import plan_html

        return plan_html(text)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")


def split_sentences(text: str, *, language: str = "en") -> list[tuple[int, int]]:
    """(start, end) character spans of text's sentences, in order, with the whitespace outside them.

    Lines are split first (a line break always ends a sentence, so a hard-wrapped sentence is two),
    then each line by sentencex. A list marker that sentencex cuts off ("1." | "Unpack the box.",
    "things: 1." | "a passport") is given back to the item it opens, and "late… We" and
    "planned.) It" are cut as sentencex cuts "late... We".
    """
    splitter = _sentencex()
    spans: list[tuple[int, int]] = []
    for line_start, line_end in _lines(text):
        line = text[line_start:line_end]
        if not line.strip():
            continue
        found = []
        for bound in splitter.get_sentence_boundaries(language, line):
            start, end = bound["start_index"], bound["end_index"]
            for cut in [m.end() for m in _MISSED_END.finditer(line, start, end)] + [end]:
                span = _trim(line, start, cut)
                if span is not None:
                    found.append(span)
                start = cut
        spans += [(line_start + s, line_start + e) for s, e in _rejoin_markers(line, found)]
    return spans


def cut_long(text: str, limit: int, count: Callable[[str], int], *, language: str = "en") -> list[str]:
    """Pieces of an over-long text whose concatenation is text, cut where a reader would pause.

    A text within limit (by count: characters, words or the model's subword tokens) is one piece.
    Otherwise it is cut at every sentence boundary (sentencex when it is installed, else a sentence-end
    pattern), and each sentence still over limit after the last clause boundary of the best class
    that leaves the left piece within limit (; then : then a comma before a conjunction, then any
    comma), again on the rest. A piece with no such boundary stays over limit: the caller cuts it.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive; got {limit}")
    if count(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sentence in _sentence_pieces(text, language):
        pieces += _clause_pieces(sentence, limit, count)
    return pieces


def _sentence_pieces(text: str, language: str) -> list[str]:
    """text cut before each sentence (sentencex if installed); each piece keeps its trailing whitespace."""
    try:
        starts = [start for start, _ in split_sentences(text, language=language)][1:]
    except ImportError:
        starts = [m.end() for m in _SENTENCE_END.finditer(text)]
    edges = [0] + starts + [len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges) if a < b]


def _clause_pieces(sentence: str, limit: int, count: Callable[[str], int]) -> list[str]:
    pieces = []
    while _over(sentence, limit, count):
        cut = _last_fitting_cut(sentence, limit, count)
        if cut is None:
            break
        pieces.append(sentence[:cut])
        sentence = sentence[cut:]
    return pieces + [sentence]


def _over(text: str, limit: int, count: Callable[[str], int]) -> bool:
    """count(text) > limit, settled on a prefix where it can be: a long rest is not counted at every cut."""
    window = _CHARS_PER_UNIT * limit
    if len(text) > window and count(text[:window]) > limit:
        return True
    return count(text) > limit


def _last_fitting_cut(sentence: str, limit: int, count: Callable[[str], int]) -> int | None:
    """The end of the last boundary of the best class whose left piece is within limit, or None.

    Counts grow with the text, so the last fitting boundary of a class is found by bisection, and
    only boundaries within limit * _CHARS_PER_UNIT characters are looked at: a text of a million
    commas costs a few counts per cut, not a million.
    """
    window = min(len(sentence) - 1, _CHARS_PER_UNIT * limit)
    for pattern in CLAUSE_CUTS:
        ends = [m.end() for m in pattern.finditer(sentence, 0, window + 1) if m.end() <= window]
        low, high, best = 0, len(ends) - 1, None
        while low <= high:
            mid = (low + high) // 2
            if count(sentence[: ends[mid]]) <= limit:
                best, low = ends[mid], mid + 1
            else:
                high = mid - 1
        if best is not None:
            return best
    return None


def _cut_span(text: str, span: tuple[int, int], max_chars: int) -> list[tuple[int, int]]:
    """A sentence's span, or the spans of its clause pieces (whitespace outside them) when it is over max_chars."""
    start, end = span
    out, pos = [], start
    for piece in cut_long(text[start:end], max_chars, len):
        trimmed = _trim(text, pos, pos + len(piece))
        if trimmed is not None:
            out.append(trimmed)
        pos += len(piece)
    return out


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, line breaks excluded."""
    edges, pos = [], 0
    for m in LINE_BREAK.finditer(text):
        edges.append((pos, m.start()))
        pos = m.end()
    return edges + [(pos, len(text))]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """text[start:end] without its leading and trailing whitespace; None when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _rejoin_markers(line: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join a span to the next one when it is only a list marker, or when it ends with an inline
    list's number and the next one starts in lower case."""
    out: list[tuple[int, int]] = []
    for span in spans:
        if out:
            prev = line[out[-1][0] : out[-1][1]]
            head = line[span[0] : span[1]]
            if _MARKER.fullmatch(prev) or (_INLINE_NUMBER.search(prev) and head[:1].islower()):
                out[-1] = (out[-1][0], span[1])
                continue
        out.append(span)
    return out


def _sentencex():
    try:
        import sentencex
    except ImportError:
        raise ImportError('splitting text into sentences needs sentencex: pip install "seq2seq[text]"') from None
    return sentencex
