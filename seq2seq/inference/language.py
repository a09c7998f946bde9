"""Language detection: which languages a text is in, best first, with a confidence from 0 to 100 as
LibreTranslate's /detect reports it.

The identifier is py3langid, the maintained fork of langid.py (a naive Bayes model over byte
n-grams, shipped inside its wheel: nothing is downloaded at run time; BSD-3-Clause). It was chosen by
measurement in docs/logs/2026-12-06-language-identifiers.md: of six identifiers it was the only one
right on every English and German sentence there, short ones included, at a few hundredths of a
millisecond per call and 0.5 s to load its model once. It is an optional extra (`pip install
"seq2seq[text]"`), imported on the first call, so the translation path stays light.

The candidates are restricted to LANGUAGES, the languages LibreTranslate offers: fewer candidates
means fewer wrong guesses on short text (a three-word English sentence is never Pidgin or Haitian
Creole, which the full 140-language model proposes), and the answers are codes a LibreTranslate
client knows. Short text gets the best guess, as LibreTranslate gives; only text without a single
letter (digits, punctuation, emoji) gets no answer at all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# LibreTranslate's languages (Argos Translate's models), ISO 639-1, Norwegian as "nb" as LibreTranslate names it.
LANGUAGES = (
    *("ar", "az", "bg", "bn", "ca", "cs", "da", "de", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "ga", "gl", "he", "hi", "hu", "id", "it"),
    *("ja", "ko", "lt", "lv", "ms", "nb", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sq", "sr", "sv", "th", "tl", "tr", "uk", "ur", "vi", "zh"),
)
# Where py3langid's code for a language differs from LibreTranslate's.
_PY3LANGID_CODE = {"nb": "no"}
_OUR_CODE = {theirs: ours for ours, theirs in _PY3LANGID_CODE.items()}


@dataclass(frozen=True)
class Detected:
    """One candidate language of a text."""

    language: str  # ISO 639-1 code, e.g. "en"
    confidence: float  # 0..100, as LibreTranslate reports it


def detect_languages(text: str, limit: int = 3) -> list[Detected]:
    """The `limit` likeliest languages of `text`, best first; [] for text with no letters.

    Confidences are the model's probabilities over LANGUAGES, in percent, rounded to two decimals;
    over all of LANGUAGES they add up to 100, so a short or ambiguous text shows as a low first one.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer; got {limit!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    if not any(character.isalpha() for character in text):
        return []
    ranked = _identifier().rank(text)[:limit]
    return [Detected(_OUR_CODE.get(code, code), round(100.0 * float(probability), 2)) for code, probability in ranked]


@functools.lru_cache(maxsize=1)
def _identifier():
    """py3langid's identifier over LANGUAGES, with probabilities; loaded once (about half a second)."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as error:
        raise ImportError(f"language detection needs py3langid, which is not installed: pip install 'seq2seq[text]' ({error})") from error
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([_PY3LANGID_CODE.get(code, code) for code in LANGUAGES])
    return identifier
