"""Language detection (seq2seq/inference/language.py): English and German named correctly, long and
short, a few other languages, confidences ordered and in LibreTranslate's 0..100, no answer for text
without letters. The sentences were written for docs/logs/2026-12-06-language-identifiers.md."""

import sys

import pytest

from seq2seq.inference import language
from seq2seq.inference.language import LANGUAGES, Detected, detect_languages

ENGLISH = [
    "The train to Manchester was delayed by forty minutes because of a signal failure.",
    "If you cannot find the receipt, the shop will still exchange the jacket.",
    "Where is the station?",
    "It is fine.",
    "Thanks for your help!",
]
GERMAN = [
    "Der Zug nach Hamburg hatte wegen einer Signalstörung vierzig Minuten Verspätung.",
    "Wenn du den Kassenbon nicht findest, tauscht das Geschäft die Jacke trotzdem um.",
    "Wo ist der Bahnhof?",
    "Das ist gut.",
    "Er kommt morgen.",
]
OTHERS = [
    ("fr", "Nous avons marché le long de la rivière jusqu'à la tombée de la nuit."),
    ("es", "Caminamos junto al río hasta que las luces del pueblo desaparecieron."),
    ("nl", "We liepen langs de rivier tot de lichten van de stad achter ons verdwenen."),
    ("it", "Abbiamo camminato lungo il fiume finché le luci del paese sono scomparse."),
    ("fr", "Le chien dort."),
]


@pytest.mark.parametrize("text", ENGLISH)
def test_english_is_named_english(text):
    assert detect_languages(text)[0].language == "en"


@pytest.mark.parametrize("text", GERMAN)
def test_german_is_named_german(text):
    assert detect_languages(text)[0].language == "de"


@pytest.mark.parametrize(("expected", "text"), OTHERS)
def test_other_languages(expected, text):
    assert detect_languages(text)[0].language == expected


def test_confidences_are_ordered_percentages_and_a_clear_sentence_is_confident():
    found = detect_languages(GERMAN[0], limit=5)
    assert len(found) == 5 and all(isinstance(d, Detected) for d in found)
    confidences = [d.confidence for d in found]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 100.0 for c in confidences) and sum(confidences) <= 100.01
    assert confidences[0] > 90.0
    assert len({d.language for d in found}) == 5 and {d.language for d in found} <= set(LANGUAGES)


def test_mixed_text_names_both_languages():
    found = detect_languages("Er hat mir gesagt, dass er kommt. But I don't believe him at all.")
    assert {"de", "en"} <= {d.language for d in found}


def test_upper_case_text_is_named_like_lower_case():
    assert detect_languages("WHERE IS THE STATION?")[0].language == "en"


def test_a_single_word_gets_a_best_guess_as_libretranslate_gives():
    found = detect_languages("Danke", limit=1)
    assert len(found) == 1 and found[0].language in LANGUAGES and found[0].confidence < 90.0


@pytest.mark.parametrize("text", ["", "   \n\t", "12345 678", "!!! ???", "3.14 + 2 = 5.14", "\U0001f600\U0001f44d"])
def test_text_without_letters_gets_no_answer(text):
    assert detect_languages(text) == []


def test_limit_is_respected_and_checked():
    assert len(detect_languages(ENGLISH[0], limit=1)) == 1
    assert len(detect_languages(ENGLISH[0], limit=1000)) == len(LANGUAGES)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="limit must be a positive integer"):
            detect_languages(ENGLISH[0], limit=bad)


def test_norwegian_gets_libretranslates_code():
    assert detect_languages("Vi gikk langs elva til lysene fra byen forsvant bak oss.")[0].language == "nb"


def test_missing_library_names_the_extra(monkeypatch):
    language._identifier.cache_clear()
    monkeypatch.setitem(sys.modules, "py3langid", None)
    monkeypatch.setitem(sys.modules, "py3langid.langid", None)
    try:
        with pytest.raises(ImportError, match=r"seq2seq\[text\]"):
            detect_languages(ENGLISH[0])
    finally:
        language._identifier.cache_clear()
