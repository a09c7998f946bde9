"""HTML: the text of a fragment or a whole document translated, its markup kept byte for byte.

plan_html(markup) gives the sentences to translate and join(translations) the markup with only its
text changed: plan_html(m).join(plan_html(m).sentences) == m for every string m, broken HTML too
(a sentence whose translation is its own text keeps its bytes).

The parser is the standard library's html.parser.HTMLParser with convert_charrefs=False. It takes
any string (unclosed tags, stray end tags, a bare "<", unquoted attributes) without raising (the
one exception, a malformed "<![" section, is read as a comment here), needs no dependency, and
reports where each event starts, so every token's original text is the slice of the input up to
the next event: the output is built from slices of the input, never re-serialised. bs4, lxml and
html5lib re-serialise their trees (quotes, entities, implied and unclosed tags change), which
would break that guarantee; their trees would add nothing that the event stream does not give.

What is translated. Text is grouped into blocks: a block ends at every tag that is not inline
(p, div, li, td, h1, br, title, button...), so a block's text runs through its inline elements
(b, i, em, strong, a, span, sub, sup, q, cite... in INLINE) and is cut into sentences as one text
(text.split_sentences, with line breaks read as spaces, as a browser reads them). Entities are
decoded for the model (&amp; → &, &nbsp; → no-break space) and the translation is escaped back
(& < > only). Whitespace around sentences is kept as it was; inside a sentence runs of whitespace
reach the model as one space. Blocks or sentences without letters (numbers, punctuation, blank)
are not sent, and identical sentences are sent once. Kept as they are: the content of script,
style and textarea (data, not text), of pre, of any element with translate="no" or the class
notranslate (up to its end tag, or where a browser ends it: an li, p, td... left open ends at its
next sibling, any element at its parent's end tag), and of code, kbd, samp and var, which stand
inside their sentence (the model sees their text, so the sentence reads whole, and the element
comes back unchanged); comments, declarations and every attribute (alt and title too, as in
LibreTranslate, so that each start tag stays byte for byte). noscript is translated: it is text
shown to readers without scripts.

How inline elements are placed (this needs no attention weights: the exported runtime has none).
Every tag comes back, in its original order, so the tag tree is the input's; only where a tag
stands in the translation is approximate. An element inside a sentence that wraps letters has
its own text translated as one more sentence of the plan; join looks for that translation in the
sentence's translation (ignoring case and the fragment's outer punctuation, at word boundaries,
nearest to where the element stood) and wraps what it finds. A code-like element is looked for by
its text and replaces it where found. Otherwise an element wraps the words at the same relative
place (measured between the tags already placed around it), its start tag snapped to a word start
and its end tag to a word end; a lone tag (an image, a comment, a code-like element not found: the
model's copy of its text then stays too) stands at the nearest word boundary. Tags around a whole
sentence wrap its whole translation.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal, NamedTuple

# Elements that stand inside a sentence (phrasing content): a block's text runs through them.
INLINE = frozenset(
    {"a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font", "i", "img", "input", "ins", "kbd", "label"}
    | {"mark", "meter", "nobr", "output", "progress", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strike"}
    | {"strong", "sub", "sup", "time", "tt", "u", "var", "wbr"}
)
# Elements without an end tag: they wrap nothing.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr"})
CODE = frozenset({"code", "kbd", "samp", "var"})  # kept, inside the sentence's text
DATA = frozenset({"script", "style", "textarea"})  # kept, no part of any text
PREFORMATTED = frozenset({"pre", "listing", "xmp", "plaintext"})  # kept, a block of their own
# Elements that the start of a sibling of the same name closes when their end tag is left out.
IMPLIED_END = frozenset({"p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "rt", "rp"})
# Aligned elements per sentence at most (one more sentence each); past that, the relative position alone.
MAX_ALIGNED = 32

# What an atom of a block is: text, a start or end tag of an inline element, a tag or markup that
# wraps nothing (void tag, comment, kept data), or a kept element with text (code-like).
Role = Literal["text", "start", "end", "point", "kept"]

_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
# A text without any of these is one sentence: sentencex is not asked (most blocks of a page are short labels).
_TERMINATOR = re.compile(r"[.!?;\u2026\u0589\u061f\u06d4\u0964\u0965\u3002\uff01\uff0e\uff1f\uff61]")
# Line breaks become spaces before splitting: in HTML a line break is whitespace, not the end of a sentence.
_LINE_BREAKS = str.maketrans(dict.fromkeys("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", " "))
# What a translated fragment may carry around the words it shares with the sentence ("Haus." for "house").
_EDGES = " .,;:!?\u2026\"'\u00ab\u00bb\u201c\u201d\u201e\u2018\u2019()[]\u00a1\u00bf"


class _Tag(NamedTuple):
    """A piece of markup inside a translated sentence."""

    raw: str  # its original text
    pos: int  # where it stands in the sentence's source text (characters from the sentence's start)
    width: int  # the characters of that text it covers (a code-like element's text); 0 for a tag
    role: Role  # never "text": a sentence's text is what the translation replaces
    partner: int  # a start tag's end tag in the same sentence (or an end tag's start); -1 if none
    extra: int  # a start tag's element's own text: its index in the plan's sentences; -1 if none
    needle: str  # looked for in the translation: a code-like element's text, or an element's text without letters ("42")
    wraps: bool  # a start tag whose element wraps letters: it wraps words of the translation


class _Slot(NamedTuple):
    """A sentence of the markup: where its translation goes, with the markup inside it."""

    sentence: int  # index into the plan's sentences
    length: int  # characters of its source text
    tags: tuple[_Tag, ...]
    raw: str  # its original text, markup included: what a translation equal to the source gives back


@dataclass(frozen=True)
class HtmlPlan:
    """A markup cut into sentences, and how to put their translations back.

    pieces is the markup in order: original text kept as it is (str), and the sentences' slots.
    """

    sentences: list[str]  # what goes to the model, each once, in order of first appearance
    pieces: list[str | _Slot]

    def join(self, translations: list[str]) -> str:
        """One translation per sentence → the markup with each sentence's text replaced by its
        translation (escaped) and the tags inside it placed as the module docstring says."""
        if isinstance(translations, str) or len(translations) != len(self.sentences):
            got = "a str" if isinstance(translations, str) else f"{len(translations)}"
            raise ValueError(f"join needs one translation per sentence ({len(self.sentences)}); got {got}")
        return "".join(piece if isinstance(piece, str) else _fill(piece, translations, self.sentences) for piece in self.pieces)


def plan_html(markup: str, *, language: str = "en") -> HtmlPlan:
    """Plan the translation of an HTML fragment or document whose text is in `language`."""
    if not isinstance(markup, str):
        raise TypeError(f"markup must be a str; got {type(markup).__name__}")
    builder = _Builder(language)
    parser = _Events(markup, builder.take)
    try:
        parser.feed(markup)
        parser.close()
    except AssertionError:  # _markupbase's answer to some malformed declarations: the rest is kept as markup
        pass
    parser.take_rest()
    builder.finish()
    return HtmlPlan(builder.sentences, builder.pieces)


# Reading: markup → tokens (kind, raw, name, attrs) whose raws concatenate to the markup → blocks.


class _Events(HTMLParser):
    """Hands each token to take(kind, raw, name, attrs): an event's raw runs from where it starts to
    where the next one starts (updatepos, which the parser calls once per piece it consumes, in
    order, counts the characters), so what the parser skips stays, as markup."""

    def __init__(self, markup: str, take) -> None:
        super().__init__(convert_charrefs=False)
        self.markup, self.take, self.at = markup, take, 0
        self.pending: tuple[int, str, str, list] = (0, "mark", "", [])  # the event whose end is not known yet

    def updatepos(self, i: int, j: int) -> int:
        if i < j:
            self.at += j - i
        return j

    def _event(self, kind: str, name: str = "", attrs: list | None = None) -> None:
        at = min(max(self.at, self.pending[0]), len(self.markup))  # never backwards: the raws cover the markup once
        self._take_pending(at)
        self.pending = (at, kind, name, attrs or [])

    def take_rest(self) -> None:
        self._take_pending(len(self.markup))
        self.pending = (len(self.markup), "mark", "", [])

    def _take_pending(self, end: int) -> None:
        start, kind, name, attrs = self.pending
        raw = self.markup[start:end]
        if kind == "text" or kind == "ref":
            own = name + ";" if kind == "ref" and raw.startswith(";", len(name)) else name
            if raw.startswith(own):
                self.take(kind, own, "", attrs)
                if len(raw) > len(own):  # what the parser skipped: the "&" of an "&x" at the very end is text, the rest markup
                    self.take("text" if raw[len(own) :] == "&" else "mark", raw[len(own) :], "", attrs)
                return
            kind = "mark"
        if raw:
            self.take(kind, raw, name, attrs)

    def handle_starttag(self, tag, attrs):
        self._event("start", tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._event("point", tag, attrs)

    def handle_endtag(self, tag):
        self._event("end", tag)

    def handle_data(self, data):
        # A lone "<" is text; data that starts with "<" and goes on is a tag the parser gave up on: markup.
        self._event("text" if data == "<" or data[:1] != "<" else "mark", data)

    def handle_charref(self, name):
        self._event("ref", "&#" + name)

    def handle_entityref(self, name):
        self._event("ref", "&" + name)

    def handle_comment(self, data):
        self._event("mark")

    handle_decl = handle_pi = unknown_decl = handle_comment

    def parse_html_declaration(self, i):
        at = self.at
        try:
            return super().parse_html_declaration(i)
        except AssertionError:  # "<![" without a known keyword: a bogus comment, as a browser reads it
            self.at = at  # _markupbase moved on before raising
            return self.parse_bogus_comment(i)


def _keeps(name: str, attrs: list) -> bool:
    """Whether an element's content is kept as it is."""
    if name in CODE or name in DATA or name in PREFORMATTED:
        return True
    for key, value in attrs:
        if (key == "translate" and (value or "").strip().lower() == "no") or (key == "class" and "notranslate" in (value or "").split()):
            return True
    return False


class _Atom:
    """A piece of a block: text (decoded in .text), a tag (.text ""), or a kept element (its text)."""

    __slots__ = ("partner", "pos", "raw", "region", "role", "text")

    def __init__(self, raw: str, text: str, role: Role, pos: int = 0) -> None:
        self.raw, self.text, self.role, self.pos = raw, text, role, pos
        self.partner: _Atom | None = None
        self.region = -1  # 2k + 1: inside sentence k; 2k: the markup kept before it


class _Kept:
    """An element whose content is kept: its raw text until its end tag."""

    def __init__(self, name: str, raw: str) -> None:
        self.name, self.raws, self.texts = name, [raw], []
        self.open: list[str] = []  # elements begun inside it and not yet closed

    def add(self, kind: str, raw: str, name: str) -> bool | None:
        """Take a token: False while the element goes on, True when the token is its end tag, None
        (token not taken) when the token ends it from outside, as a browser reads unclosed elements:
        the end tag of an element around it, or the next sibling of an li, p, td... left open."""
        if kind == "end" and name != self.name and name not in self.open:
            return None
        if kind == "start" and name == self.name and name in IMPLIED_END and name not in self.open:
            return None
        self.raws.append(raw)
        if kind == "text" or kind == "ref":
            self.texts.append(raw if kind == "text" else html.unescape(raw))
        elif kind == "start" and name not in VOID:
            self.open.append(name)
        elif kind == "end":
            if name not in self.open:
                return True
            del self.open[len(self.open) - 1 - self.open[::-1].index(name) :]
        return False


class _Builder:
    """Collects the plan from the tokens: text outside blocks and kept elements as they are, blocks as sentences and slots."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.pieces: list[str | _Slot] = []
        self.sentences: list[str] = []
        self.index: dict[str, int] = {}
        self.block: list[_Atom] = []
        self.open: list[tuple[str, _Atom]] = []  # inline start tags of this block not yet closed
        self.kept: _Kept | None = None

    def take(self, kind: str, raw: str, name: str, attrs: list) -> None:
        if self.kept is not None:
            taken = self.kept.add(kind, raw, name)
            if taken is not False:
                self._close_kept()
            if taken is None:
                self.take(kind, raw, name, attrs)
        elif kind == "start" and name not in VOID and _keeps(name, attrs):
            if name not in INLINE and name not in DATA:
                self.flush()
            self.kept = _Kept(name, raw)
        elif name not in INLINE and (kind == "start" or kind == "end" or kind == "point"):
            self.flush()
            self.pieces.append(raw)
        elif kind == "text" or kind == "ref":
            self.block.append(_Atom(raw, raw if kind == "text" else html.unescape(raw), "text"))
        elif kind == "start" and name not in VOID:
            self.block.append(atom := _Atom(raw, "", "start"))
            self.open.append((name, atom))
        elif kind == "end":
            self.block.append(atom := _Atom(raw, "", "end"))
            # The nearest open element of that name (a browser closes it and what is open inside it).
            for depth in range(len(self.open) - 1, max(-1, len(self.open) - 65), -1):
                if self.open[depth][0] == name:
                    atom.partner, self.open[depth][1].partner = self.open[depth][1], atom
                    del self.open[depth:]
                    break
        else:
            self.block.append(_Atom(raw, "", "point"))

    def _close_kept(self) -> None:
        kept, self.kept = self.kept, None
        raw = "".join(kept.raws)
        if kept.name in INLINE:
            text = "".join(kept.texts)
            self.block.append(_Atom(raw, text, "kept" if text else "point"))
        elif kept.name in DATA:
            self.block.append(_Atom(raw, "", "point"))
        else:
            self.pieces.append(raw)

    def finish(self) -> None:
        if self.kept is not None:  # never closed: kept to the end
            self._close_kept()
        self.flush()

    def sentence(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.sentences)
            self.sentences.append(text)
        return self.index[text]

    def flush(self) -> None:
        """Plan the block collected so far."""
        atoms, self.block, self.open = self.block, [], []
        if atoms:
            _plan_block(atoms, self)


def _plan_block(atoms: list[_Atom], builder: _Builder) -> None:
    """A block's atoms → kept text and the slots of its sentences, appended to the builder's pieces."""
    pos = 0
    for atom in atoms:
        atom.pos = pos
        pos += len(atom.text)
    text = "".join(atom.text for atom in atoms)
    # The letters that count are those outside kept elements: a block of code alone is not sent.
    free = "".join(atom.text if atom.role != "kept" else "0" * len(atom.text) for atom in atoms)
    spans = _sentence_spans(text, free, atoms, builder.language) if _LETTER.search(free) else []
    raw = "".join(atom.raw for atom in atoms)
    if not spans or raw == text:  # nothing to translate, or plain text without tags or references: sliced directly
        edges = [0, *(edge for span in spans for edge in span), len(text)]
        for k, (start, end) in enumerate(spans):
            builder.pieces += [text[edges[2 * k] : start], _Slot(builder.sentence(" ".join(text[start:end].split())), end - start, (), text[start:end])]
        builder.pieces.append(raw[edges[-2] :])
        return
    atoms = _cut(atoms, spans)
    _assign(atoms, spans)
    start = 0
    for end in range(1, len(atoms) + 1):
        if end == len(atoms) or atoms[end].region != atoms[start].region:
            region = atoms[start].region
            if region % 2:
                builder.pieces.append(_slot(atoms[start:end], spans[region // 2], text, builder))
            else:
                builder.pieces.append("".join(atom.raw for atom in atoms[start:end]))
            start = end


def _sentence_spans(text: str, free: str, atoms: list[_Atom], language: str) -> list[tuple[int, int]]:
    """The sentences of a block's text that have letters, widened so as not to cut an entity or a kept element."""
    flat = text.translate(_LINE_BREAKS)
    if _TERMINATOR.search(flat):
        # Imported here: text.plan dispatches to this module, so text imports html, not the other way round.
        from seq2seq.inference.text import split_sentences

        spans = split_sentences(flat, language=language)
    else:
        start, end = len(flat) - len(flat.lstrip()), len(flat.rstrip())
        spans = [(start, end)] if start < end else []
    whole = [(a.pos, a.pos + len(a.text)) for a in atoms if len(a.text) > 1 and a.raw != a.text]
    starts = [s for s, _ in whole]
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        k = bisect_right(starts, start) - 1
        if k >= 0 and whole[k][0] < start < whole[k][1]:
            start = whole[k][0]
        k = bisect_left(starts, end) - 1
        if k >= 0 and whole[k][0] < end < whole[k][1]:
            end = whole[k][1]
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return [(start, end) for start, end in merged if _LETTER.search(free, start, end)]


def _cut(atoms: list[_Atom], spans: list[tuple[int, int]]) -> list[_Atom]:
    """Plain text atoms cut at the sentences' edges, so that each lies inside one sentence or outside all."""
    edges = sorted({edge for span in spans for edge in span})
    out = []
    for atom in atoms:
        end = atom.pos + len(atom.text)
        cuts = edges[bisect_right(edges, atom.pos) : bisect_left(edges, end)] if atom.raw == atom.text else []
        start = atom.pos
        for cut in [*cuts, end] if cuts else []:
            piece = atom.text[start - atom.pos : cut - atom.pos]
            out.append(_Atom(piece, piece, "text", start))
            start = cut
        if not cuts:
            out.append(atom)
    return out


def _assign(atoms: list[_Atom], spans: list[tuple[int, int]]) -> None:
    """Each atom's region: text by where it lies; tags at a sentence's edge by what they wrap."""
    starts = [start for start, _ in spans]
    i = 0
    while i < len(atoms):
        atom = atoms[i]
        if atom.text:
            k = bisect_right(starts, atom.pos) - 1
            atom.region = 2 * k + 1 if k >= 0 and atom.pos < spans[k][1] else 2 * k + 2
            i += 1
            continue
        j = i
        while j < len(atoms) and not atoms[j].text and atoms[j].pos == atom.pos:
            j += 1
        _assign_edge(atoms[i:j], atom.pos, spans, starts)
        i = j


def _assign_edge(group: list[_Atom], x: int, spans: list[tuple[int, int]], starts: list[int]) -> None:
    """Tags at one position x: inside a sentence, or at its edges. At the end of a sentence the end
    tags of elements begun inside it stay inside; at a start, the elements that end inside the
    sentence (without wrapping all of it) go inside; the rest stands between, in its order."""
    k = bisect_right(starts, x) - 1
    if k >= 0 and spans[k][0] < x < spans[k][1]:
        for atom in group:
            atom.region = 2 * k + 1
        return
    following = k if k >= 0 and spans[k][0] == x else None
    before = k - 1 if following is not None else k
    before = before if before >= 0 and spans[before][1] == x else None
    m = 0
    while before is not None and m < len(group) and group[m].role == "end" and group[m].partner and group[m].partner.region == 2 * before + 1:
        group[m].region = 2 * before + 1
        m += 1
    for atom in group[m:]:
        atom.region = 2 * following if following is not None else 2 * k + 2
    if following is None:
        return
    inside: set[int] = set()
    for atom in group[m:]:
        partner = atom.partner
        if partner is not None and ((atom.role == "start" and partner.pos < spans[following][1]) or (atom.role == "end" and id(partner) in inside)):
            inside.add(id(atom))
    t = len(group)
    while t > m and id(group[t - 1]) in inside:
        t -= 1
        group[t].region = 2 * following + 1


def _slot(atoms: list[_Atom], span: tuple[int, int], text: str, builder: _Builder) -> _Slot:
    """A sentence's slot: its text to translate, with its tags (and their elements' own texts)."""
    start, end = span
    marks = [atom for atom in atoms if atom.role != "text"]
    index = {id(atom): i for i, atom in enumerate(marks)}
    tags, aligned = [], 0
    for i, atom in enumerate(marks):
        partner = index.get(id(atom.partner), -1)
        own = " ".join((text[atom.pos : marks[partner].pos] if atom.role == "start" and partner > i else atom.text).split())
        wraps = atom.role == "start" and bool(_LETTER.search(own))
        extra = builder.sentence(own) if wraps and aligned < MAX_ALIGNED else -1
        aligned += extra >= 0
        tags.append(_Tag(atom.raw, atom.pos - start, len(atom.text), atom.role, partner, extra, "" if wraps else own, wraps))
    return _Slot(builder.sentence(" ".join(text[start:end].split())), end - start, tuple(tags), "".join(atom.raw for atom in atoms))


# Joining: a slot and the translations → the translated sentence with its markup.


def _fill(slot: _Slot, translations: list[str], sentences: list[str]) -> str:
    if translations[slot.sentence] == sentences[slot.sentence]:
        return slot.raw  # untouched text keeps its bytes (references and whitespace as written)
    target = " ".join(translations[slot.sentence].split())
    out, cursor = [], 0
    for tag, (left, right) in zip(slot.tags, _place(slot, target, translations)):
        out += [html.escape(target[cursor:left], quote=False), tag.raw]
        cursor = right
    out.append(html.escape(target[cursor:], quote=False))
    return "".join(out)


class _Anchors:
    """Tags placed so far: index → (left, right) in the translation, in the tags' order on both sides."""

    def __init__(self, tags: tuple[_Tag, ...], length: int, target: str) -> None:
        self.tags, self.target = tags, target
        self.order = [-1, len(tags)]
        self.at = {-1: (0, 0), len(tags): (len(target), len(target))}
        self.source = {-1: (0, 0), len(tags): (length, length)}

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """The anchors before i and after j (as positions in order), and the translation between them."""
        a, b = bisect_left(self.order, i) - 1, bisect_right(self.order, j)
        return a, b, self.at[self.order[a]][1], self.at[self.order[b]][0]

    def inner(self, a: int, b: int) -> tuple[int, int]:
        """Between the anchors at positions a and b in order: the leftmost start and the rightmost end of
        the anchors in between (an element must start at or before the first and end at or after the last)."""
        if b == a + 1:
            return self.at[self.order[b]][0], self.at[self.order[a]][1]
        return self.at[self.order[a + 1]][0], self.at[self.order[b - 1]][1]

    def fits(self, i: int, j: int, left: int, right: int) -> bool:
        a, b, low, high = self.window(i, j)
        latest_start, earliest_end = self.inner(a, b)
        return low <= left <= min(right, latest_start) and max(left, earliest_end) <= right <= high

    def add(self, i: int, j: int, left: int, right: int) -> None:
        places = {i: (left, right)} if i == j else {i: (left, left), j: (right, right)}
        for k, place in places.items():
            if k not in self.at:
                self.order.insert(bisect_left(self.order, k), k)
            self.at[k] = place
            self.source[k] = (self.tags[k].pos, self.tags[k].pos + self.tags[k].width)

    def guess(self, i: int) -> float:
        """Where tag i would stand at the same relative position between the anchors around it."""
        a, b, low, high = self.window(i, i)
        source_low, source_high = self.source[self.order[a]][1], self.source[self.order[b]][0]
        if source_high <= source_low:
            return low
        share = min(max((self.tags[i].pos - source_low) / (source_high - source_low), 0.0), 1.0)
        return low + share * (high - low)


def _place(slot: _Slot, target: str, translations: list[str]) -> list[tuple[int, int]]:
    """(left, right) of each tag in the translation: a tag stands at left; a kept element replaces target[left:right]."""
    tags, anchors = slot.tags, _Anchors(slot.tags, slot.length, target)
    for i, tag in enumerate(tags):  # what can be found, first
        needle = _core(translations[tag.extra]) if tag.extra >= 0 else tag.needle
        if needle:
            _anchor(anchors, i, max(i, tag.partner), _find(anchors, i, max(i, tag.partner), needle))
    words = _Words(target)
    for i, tag in enumerate(tags):  # elements not found wrap the words at their relative position
        if tag.wraps and i not in anchors.at:
            _anchor(anchors, i, tag.partner, words.wrap(anchors, i, tag.partner))
    places, previous = [], 0
    for i, tag in enumerate(tags):
        if i in anchors.at:
            left, right = anchors.at[i]
        elif tag.role == "end" and 0 <= tag.partner < i and tags[tag.partner].pos == tag.pos:
            left = right = places[tag.partner][1]  # an empty element stays empty
        else:
            _, _, low, high = anchors.window(i, i)
            kind = words.starts if tag.role == "start" else words.ends if tag.role == "end" else words.bounds
            left = right = _nearest(kind, anchors.guess(i), low, high)
        left = max(left, previous)
        previous = right = max(right, left)
        places.append((left, right))
    return places


def _anchor(anchors: _Anchors, i: int, j: int, span: tuple[int, int] | None) -> None:
    if span is not None and anchors.fits(i, j, *span):
        anchors.add(i, j, *span)


def _core(translation: str) -> str:
    """A translated fragment without the punctuation a model adds around it."""
    core = " ".join(translation.split()).strip(_EDGES)
    return core if re.search(r"\w", core) else ""


def _find(anchors: _Anchors, i: int, j: int, needle: str) -> tuple[int, int] | None:
    """The occurrence of needle (ignoring case, at word boundaries) that fits between the anchors
    around tags i..j, nearest to where tag i would stand; the scan starts no further before that
    place than the first occurrence after it, so a long translation is not read once per element."""
    if not needle:
        return None
    edge = ("(?<!\\w)" if re.match(r"\w", needle) else "", "(?!\\w)" if re.search(r"\w$", needle) else "")
    pattern = re.compile(edge[0] + re.escape(needle) + edge[1], re.IGNORECASE)
    a, b, low, high = anchors.window(i, j)
    latest_start, earliest_end = anchors.inner(a, b)
    expected = round(anchors.guess(i))
    after = pattern.search(anchors.target, expected)
    best = None
    for m in pattern.finditer(anchors.target, max(low, expected - (after.start() - expected if after else expected))):
        if m.start() > latest_start or m.end() > high or (best is not None and m.start() - expected > abs(best[0] - expected)):
            break
        if earliest_end <= m.end() and (best is None or abs(m.start() - expected) <= abs(best[0] - expected)):
            best = m.span()
    return best


class _Words:
    """Where the words of a translation start and end."""

    def __init__(self, target: str) -> None:
        spans = [m.span() for m in _WORD.finditer(target)]
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]
        self.bounds = sorted({*self.starts, *self.ends})

    def wrap(self, anchors: _Anchors, i: int, j: int) -> tuple[int, int]:
        """Element i..j around the words at its relative position, around the anchors already inside it."""
        a, b, low, high = anchors.window(i, j)
        latest_start, earliest_end = anchors.inner(a, b)
        left = _nearest(self.starts, anchors.guess(i), low, latest_start)
        right = _nearest(self.ends, anchors.guess(j), max(left, earliest_end), high)
        if right <= left:  # at least the word that starts there
            k = bisect_right(self.ends, left)
            right = self.ends[k] if k < len(self.ends) and self.ends[k] <= high else right
        return left, max(right, left)


def _nearest(values: list[int], q: float, low: int, high: int) -> int:
    """The value nearest q within [low, high]; q itself (rounded, clamped) when none lies there."""
    a, b = bisect_left(values, low), bisect_right(values, high)
    if a >= b:
        return min(max(round(q), low), high)
    k = bisect_left(values, q, a, b)
    return min(values[max(a, k - 1) : min(b, k + 1)], key=lambda v: abs(v - q))
