"""Language detection for the web layer: /detect's answer, and the source language of `source: "auto"`.

The identifier is seq2seq.inference.language (imported when first needed: an optional package); it
runs in a thread of its own, off the event loop and off the model's worker. As LibreTranslate, a
request's texts are detected together, and every q of a list is answered the same language.
"""

from __future__ import annotations

import asyncio
from typing import Any

from seq2seq.serve.inputs import InputError

# Characters of a request that the identifier reads at most: more does not change its answer, and a
# 1 MiB page would hold the thread for long.
DETECT_CHARS = 20_000


async def detect(texts: list[str], limit: int = 3) -> list[dict[str, Any]]:
    """LibreTranslate's /detect answer for texts read together: [{"confidence", "language"}], best first;
    [] where the text has no letters."""
    try:
        from seq2seq.inference.language import detect_languages
    except ImportError as err:
        raise InputError(501, f"language detection is not installed on this server ({err}); install the text extra: pip install 'seq2seq[text]'") from None
    text = "\n".join(texts)[:DETECT_CHARS]
    found = await asyncio.to_thread(detect_languages, text, limit)
    return [{"confidence": round(float(d.confidence), 2), "language": d.language} for d in found]


async def source_language(texts: list[str], src_lang: str) -> dict[str, Any]:
    """The detected language of `source: "auto"` when it is the model's source; a 400 naming it when it is
    another. Text with no letters (digits, emoji) is taken as the source language at confidence 0."""
    found = await detect(texts, limit=1)
    if not found:
        return {"confidence": 0.0, "language": src_lang}
    best = found[0]
    if best["language"] != src_lang:
        raise InputError(
            400,
            f"the text is in {best['language']!r} (detected with confidence {best['confidence']:g}); this server translates from {src_lang!r} only",
            "source",
        )
    return best
