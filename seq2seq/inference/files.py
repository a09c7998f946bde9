"""Files: a document read into the units to translate, and written back in its own format with their
translations, everything else kept as it was.

- .txt: UTF-8, with or without a byte order mark (kept). Each block of non-blank lines is one unit
  of format "text" (the text plan keeps its line breaks); the blank lines between blocks are kept.
- .html, .htm: UTF-8; the whole file is one unit of format "html" (the HTML plan keeps the markup).
- .docx: each paragraph (`w:p`) of the body, the tables, the text boxes, the headers, the footers and
  the foot- and endnotes is one unit. Word cuts a paragraph's text into runs (`w:r`) that carry its
  formatting; a paragraph with text in several runs becomes inline HTML, one `<span data-r="i">`
  per text element (`w:t`), and `<br>` where a tab or a break stands between two of them, so that
  the HTML plan translates the paragraph as one text and places the spans in its translation (as
  it places inline elements: seq2seq.inference.html); each span's text goes back into its own `w:t`, in its own run, with its own formatting. A
  paragraph with text in one `w:t` is plain text.

A .docx is rewritten by splicing the new text into the XML's bytes at the positions the parser
reports, not by re-serialising a parsed tree: ElementTree renames namespace prefixes and drops the
declarations that only `mc:Ignorable` names (Word then calls the file corrupt), and python-docx
saves through lxml, which keeps more but still re-serialises every part it loaded. Splicing changes
only the text of the `w:t` elements (and adds `xml:space="preserve"` where new text needs it); every
other byte of the XML, and every other part of the zip (styles, images, relationships, settings), is
copied unchanged. Parsing is the standard library's expat, which expands no external entity; a
document type declaration, the only place an entity can be declared (the "billion laughs" bomb), is
refused outright, as defusedxml does with forbid_dtd. Declared uncompressed sizes are checked
against `max_bytes` before anything is decompressed (a zip bomb), and zipfile stops reading an
entry at its declared size.

Everything a hostile or broken file can cause is a FileError with a message that says why.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Literal
from xml.parsers import expat

FILE_FORMATS = (".txt", ".html", ".htm", ".docx")
MAX_BYTES = 64 * 2**20  # a document's uncompressed size at most (all parts of a .docx together)

_BOM = b"\xef\xbb\xbf"
_LINE = re.compile(r"(\r\n|\r|\n)")
# The parts of a .docx whose paragraphs are translated.
_DOCX_PARTS = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml")
# WordprocessingML's namespace, transitional and strict.
_WORD = ("http://schemas.openxmlformats.org/wordprocessingml/2006/main", "http://purl.oclc.org/ooxml/wordprocessingml/main")
_PARAGRAPH = {f"{ns} p" for ns in _WORD}
_TEXT = {f"{ns} t" for ns in _WORD}
_BREAKS = {f"{ns} {name}" for ns in _WORD for name in ("tab", "br", "cr", "ptab")}
# Characters XML 1.0 does not allow, whatever the escaping.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_NEEDS_PRESERVE = re.compile(r"^\s|\s$|\s\s")


class FileError(ValueError):
    """A file that cannot be read (not a zip, bad encoding, too large, hostile XML…); the message says why."""


@dataclass(frozen=True)
class Document:
    """A file read into units to translate, and how to write it back with their translations."""

    texts: list[str]  # the units to translate, in order
    formats: list[Literal["text", "html"]]  # how each unit is planned (plan(text, format))
    rebuild: Callable[[list[str]], bytes] = field(repr=False, compare=False)  # one translation per unit → the file's bytes

    def write(self, translations: list[str]) -> bytes:
        """The file in the same format, with the translated units in place of the units."""
        if isinstance(translations, str) or len(translations) != len(self.texts):
            got = "a str" if isinstance(translations, str) else str(len(translations))
            raise ValueError(f"write needs one translation per unit ({len(self.texts)}); got {got}")
        return self.rebuild(list(translations))


def read_document(data: bytes, filename: str, max_bytes: int = MAX_BYTES) -> Document:
    """Read a file into its units; the suffix of `filename` picks the reader (FILE_FORMATS)."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FILE_FORMATS:
        raise FileError(f"file {filename!r}: unsupported format {suffix or '(no suffix)'!r}; supported: {', '.join(FILE_FORMATS)}")
    if len(data) > max_bytes:
        raise FileError(f"file {filename!r} is {len(data)} bytes, over the limit of {max_bytes}")
    if suffix == ".txt":
        return _read_txt(data, filename)
    if suffix in (".html", ".htm"):
        text, bom = _decode(data, filename)
        return Document([text] if text.strip() else [], ["html"] if text.strip() else [], lambda t: _encode(t[0] if t else text, bom))
    return _read_docx(data, filename, max_bytes)


def _decode(data: bytes, filename: str) -> tuple[str, bool]:
    """UTF-8 text, and whether it started with a byte order mark."""
    bom = data.startswith(_BOM)
    try:
        return data[len(_BOM) if bom else 0 :].decode("utf-8"), bom
    except UnicodeDecodeError as error:
        raise FileError(f"file {filename!r} is not UTF-8 (byte {error.start}: {data[error.start : error.start + 1]!r}); save it as UTF-8") from None


def _encode(text: str, bom: bool) -> bytes:
    return (_BOM if bom else b"") + text.encode("utf-8", errors="replace")


def _read_txt(data: bytes, filename: str) -> Document:
    """Blocks of non-blank lines are the units; pieces[0::2] are the gaps around them (blank lines)."""
    text, bom = _decode(data, filename)
    pieces = [""]  # gap, block, gap, block, …, gap
    in_block = False
    parts = _LINE.split(text)  # line, break, line, break, …, line
    for index in range(0, len(parts), 2):
        line, line_break = parts[index], parts[index + 1] if index + 1 < len(parts) else ""
        if not line.strip():
            pieces[-1] += line + line_break
            in_block = False
        elif in_block:  # the previous line's break joins the block
            pieces[-2] += pieces[-1] + line
            pieces[-1] = line_break
        else:
            pieces += [line, line_break]
            in_block = True
    blocks = pieces[1::2]

    def rebuild(translations: list[str]) -> bytes:
        out = [pieces[0]]
        for translation, gap in zip(translations, pieces[2::2]):
            out += [translation, gap]
        return _encode("".join(out), bom)

    return Document(blocks, ["text"] * len(blocks), rebuild)


@dataclass(frozen=True)
class _Piece:
    """One `w:t` with text: where its start tag and content lie in the part's bytes."""

    tag_start: int
    tag_end: int  # just after the start tag's ">"
    end: int  # the "<" of the end tag
    text: str
    preserved: bool  # has xml:space="preserve"


@dataclass(frozen=True)
class _Paragraph:
    part: str
    pieces: list[_Piece]
    broken_before: list[bool]  # per piece: a tab or break stands between it and the piece before


def _read_docx(data: bytes, filename: str, max_bytes: int) -> Document:
    """Each paragraph with text is one unit: plain text for one `w:t`, spans for several."""
    entries = _unzip(data, filename, max_bytes)
    if "word/document.xml" not in entries:
        raise FileError(f"file {filename!r} is a zip without word/document.xml, so not a .docx")
    paragraphs = [p for name, body in entries.items() if _DOCX_PARTS.fullmatch(name) for p in _paragraphs(body, name, filename)]
    texts = [p.pieces[0].text if len(p.pieces) == 1 else _spans(p) for p in paragraphs]
    formats: list[Literal["text", "html"]] = ["text" if len(p.pieces) == 1 else "html" for p in paragraphs]

    def rebuild(translations: list[str]) -> bytes:
        edits: dict[str, list[tuple[_Piece, str]]] = {}
        for paragraph, translation in zip(paragraphs, translations):
            new = [translation] if len(paragraph.pieces) == 1 else _unspan(translation, len(paragraph.pieces))
            edits.setdefault(paragraph.part, []).extend(zip(paragraph.pieces, new))
        return _rezip(data, {name: _splice(entries[name], changes) for name, changes in edits.items()})

    return Document(texts, formats, rebuild)


def _unzip(data: bytes, filename: str, max_bytes: int) -> dict[str, bytes]:
    """The zip's entries by name, after checking that their declared sizes fit in max_bytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            if total > max_bytes:
                raise FileError(f"file {filename!r} unpacks to {total} bytes, over the limit of {max_bytes}")
            return {info.filename: archive.read(info) for info in infos if not info.is_dir()}
    except FileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as error:
        raise FileError(f"file {filename!r} is not a readable .docx (a zip archive): {error}") from None


def _rezip(original: bytes, changed: dict[str, bytes]) -> bytes:
    """The original zip with the changed entries' contents replaced; names, order, dates and compression kept."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, changed[info.filename] if info.filename in changed else source.read(info))
    return out.getvalue()


def _paragraphs(body: bytes, part: str, filename: str) -> list[_Paragraph]:
    """The paragraphs with text of one XML part, innermost paragraph first where they nest (text boxes)."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileError(f"file {filename!r}: {part} is UTF-16; only UTF-8 parts are read")
    finder = _ParagraphFinder(body, part, filename)
    try:
        finder.parser.Parse(body, True)
    except expat.ExpatError as error:
        raise FileError(f"file {filename!r}: {part} is not well-formed XML ({error})") from None
    return finder.found


class _ParagraphFinder:
    """expat's handlers for one part: paragraphs, their w:t elements with text, and the breaks between those."""

    def __init__(self, body: bytes, part: str, filename: str):
        self.body, self.part, self.filename = body, part, filename
        self.found: list[_Paragraph] = []
        self.open: list[_Paragraph] = []  # innermost last
        self.pending_break: list[bool] = []  # per open paragraph: a tab or break since its last piece
        self.text: list[str] | None = None  # the open w:t's characters
        self.start = (0, 0, False)  # the open w:t's tag start, tag end, preserve
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.buffer_text = True
        self.parser.StartDoctypeDeclHandler = self.refuse
        self.parser.EntityDeclHandler = self.refuse
        self.parser.XmlDeclHandler = self.declaration
        self.parser.StartElementHandler = self.open_element
        self.parser.EndElementHandler = self.close_element
        self.parser.CharacterDataHandler = self.characters

    def refuse(self, *_):
        raise FileError(f"file {self.filename!r}: {self.part} declares a document type or entities, which a .docx never needs; refused (it may be an XML bomb)")

    def declaration(self, _version, encoding, _standalone):
        if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise FileError(f"file {self.filename!r}: {self.part} is encoded as {encoding}; only UTF-8 parts are read")

    def open_element(self, name, attributes):
        if name in _PARAGRAPH:
            self.open.append(_Paragraph(self.part, [], []))
            self.pending_break.append(False)
        elif name in _TEXT and self.open:
            at = self.parser.CurrentByteIndex
            self.start = (at, _tag_end(self.body, at), attributes.get("http://www.w3.org/XML/1998/namespace space") == "preserve")
            self.text = []
        elif name in _BREAKS and self.open and self.open[-1].pieces:
            self.pending_break[-1] = True

    def close_element(self, name):
        if name in _TEXT and self.text is not None:
            if self.text:  # an empty <w:t/> has nothing to translate
                tag_start, tag_end, preserved = self.start
                self.open[-1].pieces.append(_Piece(tag_start, tag_end, self.parser.CurrentByteIndex, "".join(self.text), preserved))
                self.open[-1].broken_before.append(self.pending_break[-1])
                self.pending_break[-1] = False
            self.text = None
        elif name in _PARAGRAPH:
            paragraph = self.open.pop()
            self.pending_break.pop()
            if paragraph.pieces:
                self.found.append(paragraph)

    def characters(self, data):
        if self.text is not None:
            self.text.append(data)


def _tag_end(body: bytes, at: int) -> int:
    """The index just after the start tag that begins at `at` (a ">" inside a quoted value does not end it)."""
    quote = None
    for index in range(at, len(body)):
        byte = body[index : index + 1]
        if quote:
            quote = None if byte == quote else quote
        elif byte in (b'"', b"'"):
            quote = byte
        elif byte == b">":
            return index + 1
    raise FileError("unterminated start tag")  # unreachable: expat parsed the element


def _spans(paragraph: _Paragraph) -> str:
    """A paragraph's text elements as inline HTML: one span each, <br> where a tab or break parts two."""
    out = []
    for index, (piece, broken) in enumerate(zip(paragraph.pieces, paragraph.broken_before)):
        out.append(("<br>" if broken and index else "") + f'<span data-r="{index}">{html.escape(piece.text, quote=False)}</span>')
    return "".join(out)


class _SpanText(HTMLParser):
    """Collects the text inside each `<span data-r="i">` of a translated paragraph."""

    def __init__(self, count: int):
        super().__init__(convert_charrefs=True)
        self.texts = [""] * count
        self.current: int | None = None
        self.last = 0

    def handle_starttag(self, tag, attrs):
        index = dict(attrs).get("data-r")
        if tag == "span" and index is not None and index.isdigit() and int(index) < len(self.texts):
            self.current = self.last = int(index)

    def handle_endtag(self, tag):
        if tag == "span":
            self.current = None

    def handle_data(self, data):
        # Text outside every span (a translation shared out onto the gap between two) joins the span before it.
        self.texts[self.last if self.current is None else self.current] += data


def _unspan(translation: str, count: int) -> list[str]:
    reader = _SpanText(count)
    reader.feed(translation)
    reader.close()
    return reader.texts


def _splice(body: bytes, changes: list[tuple[_Piece, str]]) -> bytes:
    """The part's bytes with each piece's content replaced by its new text (escaped), nothing else changed."""
    out, position = [], 0
    for piece, new_text in sorted(changes, key=lambda change: change[0].tag_start):
        new_text = _NOT_XML.sub("", new_text)
        tag = body[piece.tag_start : piece.tag_end]
        if not piece.preserved and _NEEDS_PRESERVE.search(new_text):
            tag = tag[:-1] + b' xml:space="preserve">'
        out += [body[position : piece.tag_start], tag, html.escape(new_text, quote=False).encode("utf-8")]
        position = piece.end
    out.append(body[position:])
    return b"".join(out)
