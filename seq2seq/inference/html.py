"""HTML: translate the text of a fragment or document and keep its markup byte for byte.

The markup is read by the standard library's `html.parser.HTMLParser` (with character references
left as written), and each event's original text is sliced out of the input by position, so every
tag, attribute, comment, declaration and reference that is not translated comes back exactly as
it was, broken HTML included: `plan_html(m).join(plan_html(m).sentences) == m`.

Text is translated in units. A unit is the run of text and inline elements (b, i, a, span, …)
between block boundaries (any other element, `<br>`, the edges of a skipped element), so
`<p>The <b>red</b> car stops.</p>` is one unit, "The red car stops.", cut into sentences by
seq2seq.inference.text. Not translated: the contents of script, style, code, pre, textarea,
noscript and template, elements marked `translate="no"` or class `notranslate`, comments, and
attribute values.

Inline elements are kept where they were, around the translated words by position. This is the
documented fallback, used because the exported runtime gives no attention weights to align with. A
unit's translation is shared out over its text pieces (the text between its tags) in proportion to
the pieces' lengths in the source, each share ending at a space. So `<b>` wraps the words at the
same relative place in the translation, which for short inline spans is usually, though not always,
their translation. Every tag stays, in order, so the tag tree is the input's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser

from seq2seq.inference.text import TextPlan, plan_text

INLINE = frozenset(
    [
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "big",
        "cite",
        "data",
        "del",
        "dfn",
        "em",
        "font",
        "i",
        "img",
        "ins",
        "kbd",
        "label",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
    ]
)
SKIPPED = frozenset(["script", "style", "code", "pre", "textarea", "noscript", "template"])
VOID = frozenset(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"])


@dataclass(frozen=True)
class _Unit:
    pieces: list[int]  # indices of its text pieces in HtmlPlan.parts
    plan: TextPlan


@dataclass(frozen=True)
class HtmlPlan:
    """An HTML text's translatable sentences, and how to put their translations back into its markup."""

    parts: list[str]  # the input cut into tags and text pieces, as written: "".join(parts) is the input
    units: list[_Unit]

    @property
    def sentences(self) -> list[str]:
        return [s for unit in self.units for s in unit.plan.sentences]

    def join(self, translations: list[str]) -> str:
        """One translation per sentence → the markup with its text translated and every tag as it was."""
        if isinstance(translations, str) or len(translations) != len(self.sentences):
            got = "a str" if isinstance(translations, str) else f"{len(translations)}"
            raise ValueError(f"join needs one translation per sentence ({len(self.sentences)}); got {got}")
        parts, start = list(self.parts), 0
        for unit in self.units:
            mine = translations[start : start + len(unit.plan.sentences)]
            start += len(unit.plan.sentences)
            if mine == unit.plan.sentences:
                continue  # unchanged text keeps its bytes (references as written)
            sources = [html.unescape(self.parts[i]) for i in unit.pieces]
            for i, text in zip(unit.pieces, _share_out(unit.plan.join(mine), sources)):
                parts[i] = html.escape(text, quote=False)
        return "".join(parts)


def plan_html(markup: str) -> HtmlPlan:
    """Cut an HTML fragment or document into tags and text units, and the units into sentences."""
    if not isinstance(markup, str):
        raise TypeError(f"markup must be a str; got {type(markup).__name__}")
    parts, units, pieces = [], [], []

    def close_unit() -> None:
        if pieces:
            text = "".join(html.unescape(parts[i]) for i in pieces)
            if any(ch.isalpha() for ch in text):
                units.append(_Unit(list(pieces), plan_text(text)))
            pieces.clear()

    skipping = 0  # depth inside skipped elements
    stack: list[tuple[str, bool]] = []  # open elements: (name, skipped)
    for kind, raw, name, skips in _events(markup):
        if kind == "text":
            parts.append(raw)
            if not skipping:
                if pieces and pieces[-1] == len(parts) - 2:  # a reference right after text: one piece
                    parts[-2:] = [parts[-2] + raw]
                else:
                    pieces.append(len(parts) - 1)
            continue
        parts.append(raw)
        if kind == "start" and name not in VOID:
            if name not in INLINE or skips:
                close_unit()
            stack.append((name, skips))
            skipping += skips
        elif kind == "end" and any(n == name for n, _ in stack):
            while stack:
                n, was_skipped = stack.pop()
                skipping -= was_skipped
                if n == name:
                    break
            if name not in INLINE or was_skipped:
                close_unit()
        elif kind == "other" or name not in INLINE:
            close_unit()  # comments, declarations, <br>, other void and stray block tags end a unit
    close_unit()
    return HtmlPlan(parts, units)


def _share_out(translation: str, sources: list[str]) -> list[str]:
    """The translation cut into one share per source piece, in proportion to the pieces' lengths
    without their outer whitespace; a share ends at a space where one is near, and each piece keeps
    its own leading and trailing whitespace. Pieces of only whitespace stay as they are."""
    words_at = [i for i, s in enumerate(sources) if s.strip()]
    out = list(sources)
    body = translation.strip()
    weights = [len(sources[i].strip()) for i in words_at]
    total, used, pos = sum(weights), 0, 0
    for k, i in enumerate(words_at):
        used += weights[k]
        end = len(body) if k == len(words_at) - 1 else _snap(body, round(len(body) * used / total), pos)
        share = body[pos:end].strip()
        lead = sources[i][: len(sources[i]) - len(sources[i].lstrip())]
        trail = sources[i][len(sources[i].rstrip()) :]
        out[i] = lead + share + trail
        pos = end
    return out


def _snap(text: str, cut: int, floor: int) -> int:
    """The space nearest to `cut` (not before `floor`), or `cut` when the text has none there."""
    before, after = text.rfind(" ", floor, cut + 1), text.find(" ", cut)
    candidates = [c for c in (before, after) if c >= floor]
    return min(candidates, key=lambda c: abs(c - cut)) if candidates else max(cut, floor)


class _Events(HTMLParser):
    """Each event's kind, tag name and start position; the text of an event is the input from its start to the next one's."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=False)
        self.starts = [0]
        offset = 0
        for line in markup.splitlines(keepends=True):
            offset += len(line)
            self.starts.append(offset)
        self.found: list[tuple[int, str, str, bool]] = []

    def _at(self, kind: str, name: str = "", skips: bool = False) -> None:
        line, column = self.getpos()
        self.found.append((self.starts[line - 1] + column, kind, name, skips))

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        self._at("start", tag, tag in SKIPPED or values.get("translate") == "no" or "notranslate" in (values.get("class") or "").split())

    def handle_startendtag(self, tag, attrs):
        self._at("other", tag)

    def handle_endtag(self, tag):
        self._at("end", tag)

    def handle_data(self, data):
        self._at("text")

    def handle_entityref(self, name):
        self._at("text")

    def handle_charref(self, name):
        self._at("text")

    def handle_comment(self, data):
        self._at("other")

    def handle_decl(self, decl):
        self._at("other")

    def handle_pi(self, data):
        self._at("other")

    def unknown_decl(self, data):
        self._at("other")


def _events(markup: str) -> list[tuple[str, str, str, bool]]:
    """(kind, original text, tag name, skipped) for each event: "start", "end", "text" or "other"."""
    parser = _Events(markup)
    parser.feed(markup)
    parser.close()
    found = sorted(set(parser.found), key=lambda e: e[0])
    if not found or found[0][0] > 0:
        found.insert(0, (0, "text", "", False))
    edges = [e[0] for e in found] + [len(markup)]
    return [(kind, markup[a:b], name, skips) for (a, kind, name, skips), b in zip(found, edges[1:]) if a < b]
