"""Files (seq2seq/inference/files.py): .txt, .html and .docx read into units and written back with
only the text changed; hostile and broken files give a FileError, never another exception."""

import io
import random
import re
import zipfile
from xml.etree import ElementTree

import pytest

from seq2seq.inference.files import FILE_FORMATS, MAX_BYTES, Document, FileError, read_document
from seq2seq.inference.text import plan

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
STYLES = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:styles xmlns:w="' + W.encode() + b'"/>'
# Two paragraphs with bold and italic runs, a tab between runs, a run with spaces to keep, an empty
# w:t, a table cell, and namespace declarations that only mc:Ignorable names (ElementTree would drop them).
DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="{W}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" mc:Ignorable="w14">
<w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>The red car</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">A man </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>rides</w:t></w:r><w:r><w:t xml:space="preserve"> a </w:t></w:r><w:r><w:rPr><w:i/></w:rPr><w:t>bike &amp; sings</w:t></w:r><w:r><w:t>.</w:t></w:r><w:r><w:t/></w:r></w:p>
<w:p><w:r><w:t>Name:</w:t></w:r><w:r><w:tab/><w:t>Anna</w:t></w:r></w:p>
<w:p><w:pPr><w:jc w:val="center"/></w:pPr></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:rPr><w:b/><w:i/></w:rPr><w:t>In a cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
<w:sectPr/>
</w:body>
</w:document>""".encode()
HEADER = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:hdr xmlns:w="{W}"><w:p><w:r><w:t>Page head</w:t></w:r></w:p></w:hdr>'.encode()


def make_docx(document: bytes = DOCUMENT, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("word/document.xml", document)
        archive.writestr("word/styles.xml", STYLES)
        archive.writestr("word/header1.xml", HEADER)
        archive.writestr("word/media/image1.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def shout(unit: str, format: str) -> str:
    """A fake translation that changes text: upper case, markup and entity references left alone."""
    if format == "text":
        return unit.upper()
    return "".join(part if part.startswith(("<", "&")) else part.upper() for part in re.split(r"(<[^>]*>|&[#\w]+;)", unit))


def translate(document: Document) -> bytes:
    return document.write([shout(text, format) for text, format in zip(document.texts, document.formats)])


def test_txt_keeps_blank_lines_line_breaks_and_the_bom():
    data = "\ufeffFirst line.\nSecond line.\n\n\n  Indented block.  \r\n\r\nLast".encode()
    document = read_document(data, "notes.TXT")
    assert document.texts == ["First line.\nSecond line.", "  Indented block.  ", "Last"]
    assert document.formats == ["text"] * 3
    assert translate(document) == "\ufeffFIRST LINE.\nSECOND LINE.\n\n\n  INDENTED BLOCK.  \r\n\r\nLAST".encode()


def test_txt_through_the_text_plan_keeps_its_lines():
    data = b"One sentence. Another one.\nA new line.\n\nA second paragraph!\n"
    document = read_document(data, "a.txt")
    plans = [plan(text, format) for text, format in zip(document.texts, document.formats)]
    out = document.write([p.join([s.upper() for s in p.sentences]) for p in plans])
    assert out == data.upper()


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_txt_without_text_has_no_units_and_comes_back_unchanged(data):
    document = read_document(data, "empty.txt")
    assert document.texts == [] and document.write([]) == data


def test_html_is_one_unit_and_keeps_its_markup():
    data = b'<!DOCTYPE html>\n<html><body><p class="x">The <b>red</b> car &amp; the bike.</p><script>var a = "no";</script></body></html>'
    document = read_document(data, "page.htm")
    assert document.texts == [data.decode()] and document.formats == ["html"]
    assert read_document(data, "page.html").texts == document.texts
    out = document.write(['<p class="x">Das <b>rote</b> Auto.</p>'])
    assert out == b'<p class="x">Das <b>rote</b> Auto.</p>'


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_docx_units_are_paragraphs_with_runs_as_spans():
    document = read_document(make_docx(), "letter.docx")
    assert document.texts == [
        "The red car",
        '<span data-r="0">A man </span><span data-r="1">rides</span><span data-r="2"> a </span><span data-r="3">bike &amp; sings</span><span data-r="4">.</span>',
        '<span data-r="0">Name:</span><br><span data-r="1">Anna</span>',
        "In a cell",
        "Page head",
    ]
    assert document.formats == ["text", "html", "html", "text", "text"]


def test_docx_round_trip_changes_only_text():
    original = make_docx()
    out = translate(read_document(original, "letter.docx"))
    before, after = parts(original), parts(out)
    assert list(after) == list(before)  # the same parts, in the same order
    for name in ("[Content_Types].xml", "word/styles.xml", "word/media/image1.png"):
        assert after[name] == before[name]
    assert after["word/header1.xml"] == before["word/header1.xml"].replace(b"Page head", b"PAGE HEAD")
    assert b'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" mc:Ignorable="w14"' in after["word/document.xml"]
    # The same tree (tags, attributes, paragraph count, run formatting); only the texts upper-cased.
    old, new = ElementTree.fromstring(before["word/document.xml"]), ElementTree.fromstring(after["word/document.xml"])
    old_elements, new_elements = list(old.iter()), list(new.iter())
    assert [(e.tag, e.attrib) for e in new_elements] == [(e.tag, e.attrib) for e in old_elements]
    assert len(new.findall(f".//{{{W}}}p")) == 5
    assert [(e.text or "") for e in new_elements] == [(e.text or "").upper() for e in old_elements]
    rpr = [ElementTree.tostring(r) for r in new.iter(f"{{{W}}}rPr")]
    assert rpr == [ElementTree.tostring(r) for r in old.iter(f"{{{W}}}rPr")] and len(rpr) == 3


def test_docx_spans_go_back_to_their_runs_and_spaces_are_preserved():
    document = read_document(make_docx(), "letter.docx")
    translations = list(document.texts)
    translations[1] = '<span data-r="1">Ein Mann</span> <span data-r="0">fährt</span><span data-r="3">  Rad</span>'
    xml = parts(document.write(translations))["word/document.xml"].decode()
    texts = re.findall(r"<w:t(?: [^>]*)?>([^<]*)</w:t>", xml)
    assert texts[1:6] == ["fährt", "Ein Mann ", "", "  Rad", ""]  # text between spans joins the span before; missing spans empty
    assert '<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">Ein Mann </w:t></w:r>' in xml
    assert '<w:t xml:space="preserve">  Rad</w:t>' in xml


def test_docx_through_the_html_plan_keeps_every_run():
    document = read_document(make_docx(), "letter.docx")
    plans = [plan(text, format) for text, format in zip(document.texts, document.formats)]
    out = document.write([p.join([s.upper() for s in p.sentences]) for p in plans])
    xml = parts(out)["word/document.xml"].decode()
    runs = re.findall(r"<w:t(?: [^>]*)?>([^<]*)</w:t>", xml)
    assert "".join(runs[1:6]).split() == ["A", "MAN", "RIDES", "A", "BIKE", "&amp;", "SINGS."]  # & unescaped for the model, escaped again
    assert runs[6:8] == ["NAME:", "ANNA"]
    assert xml.count("<w:p>") + xml.count("<w:p ") == DOCUMENT.decode().count("<w:p>") + DOCUMENT.decode().count("<w:p ")


def test_docx_write_checks_the_count():
    document = read_document(make_docx(), "letter.docx")
    with pytest.raises(ValueError, match="one translation per unit"):
        document.write(["one"])


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&lol3;</w:t></w:r></w:p></w:body></w:document>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&secret;</w:t></w:r></w:p></w:body></w:document>"""


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"PK\x03\x04 this is not really a zip", "a.docx", "not a readable .docx"),
        (b"Hello, plain text named .docx", "a.docx", "not a readable .docx"),
        (make_docx()[:300], "a.docx", "not a readable .docx"),
        (zip_of({"word/other.xml": b"<x/>"}), "a.docx", "without word/document.xml"),
        (zip_of({"word/document.xml": b"\0" * (2 * 2**20)}), "a.docx", "unpacks to 2097152 bytes, over the limit"),
        (make_docx(BOMB), "a.docx", "document type or entities"),
        (make_docx(EXTERNAL), "a.docx", "document type or entities"),
        (make_docx(b"<w:document><w:body>"), "a.docx", "not well-formed XML"),
        (make_docx(DOCUMENT.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')), "a.docx", "only UTF-8 parts"),
        (b"caf\xe9 au lait", "a.txt", r"not UTF-8 \(byte 3"),
        (b"<p>caf\xe9</p>", "a.html", "not UTF-8"),
        (b"text", "a.pdf", "unsupported format '.pdf'; supported: .txt, .html, .htm, .docx"),
        (b"text", "README", r"unsupported format '\(no suffix\)'"),
        (b"x" * 1025, "a.txt", "1025 bytes, over the limit of 1024"),
    ],
)
def test_bad_files_give_a_file_error_that_says_why(data, filename, message):
    max_bytes = 1024 if message.startswith("1025") else 2**20
    with pytest.raises(FileError, match=message):
        read_document(data, filename, max_bytes=max_bytes)


def test_a_corrupted_entry_is_caught_by_zlib_or_the_crc_check():
    data = bytearray(make_docx())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("word/document.xml")
    compressed_at = info.header_offset + 30 + len(info.filename.encode())
    data[compressed_at + info.compress_size // 2] ^= 0x55
    with pytest.raises(FileError, match=r"not a readable \.docx"):
        read_document(bytes(data), "a.docx")


def test_mangled_docx_files_never_raise_anything_but_file_error():
    original = make_docx()
    rng = random.Random(33)
    outcomes = set()
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            document = read_document(bytes(data), "a.docx")
            document.write([shout(t, f) for t, f in zip(document.texts, document.formats)])
            outcomes.add("read")
        except FileError:
            outcomes.add("refused")
    assert outcomes == {"read", "refused"}


def test_formats_and_limit_are_what_the_server_lists():
    assert FILE_FORMATS == (".txt", ".html", ".htm", ".docx") and MAX_BYTES >= 2**20
