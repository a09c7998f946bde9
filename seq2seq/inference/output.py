"""How input lines are cleaned and how results are written: shared by seq2seq-translate and the server,
so that both answer the same lines with the same bytes. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translation


# Characters that would split a line in some readers or break the tokenizer: control characters
# and the Unicode line and paragraph separators (U+2028, U+2029, U+0085 is a control).
def clean_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def one_line(text: str) -> str:
    """A translation as one output line (a decoded subword could hold a line break)."""
    return text.replace("\r", " ").replace("\n", " ")


def json_record(line_no: int, source: str, hyps: Sequence[Translation], nbest: int) -> dict[str, Any]:
    """The object that `--output-type json` writes for one input line."""
    return {"line": line_no, "source": source, "hypotheses": [{"text": h.text, "score": h.score, "tokens": h.tokens} for h in hyps[:nbest]]}
