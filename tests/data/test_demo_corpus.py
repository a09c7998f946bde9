"""Tests for the synthetic English->German demo corpus (seq2seq/data/demo_corpus.py)."""

import gzip
import hashlib

import pytest

from seq2seq.data import demo_corpus as dc
from seq2seq.data.demo_corpus import NounPhrase as NP


@pytest.fixture(scope="module")
def pairs():
    return dc.generate_pairs(3000, seed=1)


def read_lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


# --- noun phrases: article, adjective and noun agree in gender, number and case --------


@pytest.mark.parametrize(
    "np, case, en, de",
    [
        (NP("dog", "the", ("big",)), "nom", "the big dog", "der große Hund"),
        (NP("dog", "a", ("big",)), "nom", "a big dog", "ein großer Hund"),
        (NP("dog", "the", ("big",)), "acc", "the big dog", "den großen Hund"),
        (NP("dog", "a", ("big",)), "acc", "a big dog", "einen großen Hund"),
        (NP("dog", "the", ("big",)), "dat", "the big dog", "dem großen Hund"),
        (NP("dog", "a", ("big",)), "dat", "a big dog", "einem großen Hund"),
        (NP("child", "a", ("small",)), "nom", "a small child", "ein kleines Kind"),
        (NP("child", "my", ("small",)), "acc", "my small child", "mein kleines Kind"),
        (NP("child", "the", ("small",)), "acc", "the small child", "das kleine Kind"),
        (NP("woman", "a", ("old",)), "dat", "an old woman", "einer alten Frau"),
        (NP("woman", "the", ("tired",)), "nom", "the tired woman", "die müde Frau"),
        (NP("apple", "a"), "acc", "an apple", "einen Apfel"),
        (NP("ball", "a", ("big", "red")), "nom", "a big red ball", "ein großer roter Ball"),
        (NP("dog", "the", plural=True), "nom", "the dogs", "die Hunde"),
        (NP("dog", "the", ("big",), plural=True), "dat", "the big dogs", "den großen Hunden"),
        (NP("child", "", ("small",), plural=True), "dat", "small children", "kleinen Kindern"),
        (NP("child", "", ("small",), plural=True), "acc", "small children", "kleine Kinder"),
        (NP("man", "my", ("old",), plural=True), "nom", "my old men", "meine alten Männer"),
        (NP("woman", "the", plural=True), "dat", "the women", "den Frauen"),  # no extra -n
        (NP("car", "the", plural=True), "dat", "the cars", "den Autos"),  # no -n after -s
        (NP("Anna", ""), "dat", "Anna", "Anna"),
    ],
)
def test_noun_phrase_agreement(np, case, en, de):
    assert dc.render_np(np, case) == (en, de)


def test_plural_indefinite_and_object_pronouns_are_rejected():
    with pytest.raises(ValueError):
        dc.render_np(NP("dog", "a", plural=True), "nom")
    with pytest.raises(ValueError, match="subject"):
        dc.render_np(NP("he", ""), "acc")


# --- verbs agree with the subject --------------------------------------------------------


@pytest.mark.parametrize(
    "verb, person, en, de",
    [
        ("see", "1sg", "see", "sehe"),
        ("see", "2sg", "see", "siehst"),
        ("see", "3sg", "sees", "sieht"),
        ("see", "1pl", "see", "sehen"),
        ("see", "3pl", "see", "sehen"),
        ("read", "2sg", "read", "liest"),
        ("eat", "3sg", "eats", "isst"),
        ("drive", "3sg", "drives", "fährt"),
        ("run", "2sg", "run", "läufst"),
        ("take", "3sg", "takes", "nimmt"),
        ("give", "3sg", "gives", "gibt"),
        ("wash", "3sg", "washes", "wäscht"),
        ("carry", "3sg", "carries", "trägt"),
        ("wait", "2sg", "wait", "wartest"),
        ("find", "3sg", "finds", "findet"),
        ("open", "3sg", "opens", "öffnet"),
        ("buy", "3sg", "buys", "kauft"),
        ("know", "1sg", "know", "weiß"),
    ],
)
def test_conjugation(verb, person, en, de):
    assert dc.conjugate(verb, person) == (en, de)


# --- prepositions govern their case, with contractions ------------------------------------


@pytest.mark.parametrize(
    "prep, np, en, de",
    [
        ("with", NP("woman", "the", ("old",)), "with the old woman", "mit der alten Frau"),
        ("with", NP("dog", "a"), "with a dog", "mit einem Hund"),
        ("with", NP("child", "the", plural=True), "with the children", "mit den Kindern"),
        ("to", NP("dog", "the"), "to the dog", "zum Hund"),
        ("to", NP("school", "the"), "to the school", "zur Schule"),
        ("at", NP("doctor", "the"), "at the doctor", "beim Arzt"),
        ("from", NP("house", "the", ("big",)), "from the big house", "vom großen Haus"),
        ("out of", NP("house", "the"), "out of the house", "aus dem Haus"),
        ("for", NP("dog", "the", ("small",)), "for the small dog", "für den kleinen Hund"),
        ("without", NP("child", "a"), "without a child", "ohne ein Kind"),
        ("through", NP("garden", "my"), "through my garden", "durch meinen Garten"),
    ],
)
def test_prepositional_phrase(prep, np, en, de):
    assert dc.prepositional_phrase(prep, np) == (en, de)


# --- whole sentences: word order, capitals, punctuation ------------------------------------


def test_ditransitive_simple_sentence():
    clause = dc.make_clause(NP("woman", "the", ("small",)), "give", (NP("child"), NP("apple", "a")))
    assert dc.simple_sentence(clause) == ("The small woman gives the child an apple.", "Die kleine Frau gibt dem Kind einen Apfel.")


def test_dative_verb_and_accusative_object_with_pp():
    helps = dc.make_clause(NP("I", ""), "help", (NP("man", "the", ("old",)),))
    assert dc.simple_sentence(helps)[1] == "Ich helfe dem alten Mann."
    sees = dc.make_clause(NP("you", ""), "see", (NP("dog", "a", ("big",)),), ("with", NP("cat", "my")))
    assert dc.simple_sentence(sees) == ("You see a big dog with my cat.", "Du siehst einen großen Hund mit meiner Katze.")


def test_dass_clause_puts_verb_last():
    clause = dc.make_clause(NP("man"), "see", (NP("dog"),))
    assert dc.reported_sentence(NP("I", ""), "know", clause) == ("I know that the man sees the dog.", "Ich weiß, dass der Mann den Hund sieht.")
    gives = dc.make_clause(NP("she", ""), "give", (NP("Anna", ""), NP("book", "a")), ("after", NP("school", "the")))
    assert dc.reported_sentence(NP("teacher", "the", plural=True), "say", gives)[1] == ("Die Lehrer sagen, dass sie Anna ein Buch nach der Schule gibt.")


def test_weil_and_wenn_clauses():
    main = dc.make_clause(NP("dog"), "sleep")
    sub = dc.make_clause(NP("child", "the", ("happy",)), "read", (NP("book", "a"),))
    assert dc.joined_sentence(main, "because", sub) == (
        "The dog sleeps because the happy child reads a book.",
        "Der Hund schläft, weil das glückliche Kind ein Buch liest.",
    )
    assert dc.joined_sentence(main, "when", dc.make_clause(NP("we", ""), "sing"))[1] == ("Der Hund schläft, wenn wir singen.")


def test_make_clause_checks_valency():
    with pytest.raises(ValueError):
        dc.make_clause(NP("dog"), "see")
    with pytest.raises(ValueError):
        dc.make_clause(NP("dog"), "know")


def test_sentences_are_cased_and_punctuated(pairs):
    for en, de in pairs:
        assert en[0].isupper() and de[0].isupper(), (en, de)
        assert en.endswith(".") and de.endswith("."), (en, de)
        assert 4 <= len(en.split()) <= 20, en
        assert "  " not in en and "  " not in de
        assert (", dass " in de) == (" that " in en)
        assert (", weil " in de) == (" because " in en)


# --- generate_pairs -----------------------------------------------------------------------


def test_generate_pairs_is_deterministic_and_distinct(pairs):
    assert dc.generate_pairs(3000, seed=1) == pairs
    assert dc.generate_pairs(200, seed=2) != pairs[:200]
    assert len(pairs) == 3000
    assert len({en for en, _ in pairs}) == len(pairs)
    assert len({de for _, de in pairs}) == len(pairs)
    assert dc.generate_pairs(0, seed=1) == []


def test_generate_pairs_validates_arguments():
    with pytest.raises(ValueError, match="n must be"):
        dc.generate_pairs(-1, seed=0)
    with pytest.raises(ValueError, match="n must be"):
        dc.generate_pairs(2.5, seed=0)
    with pytest.raises(ValueError, match="seed must be"):
        dc.generate_pairs(1, seed="x")


def test_generate_pairs_reports_exhausted_grammar(monkeypatch):
    only_pair = ("The dog sleeps.", "Der Hund schläft.")
    monkeypatch.setattr(dc, "_random_sentence", lambda rng: only_pair)
    monkeypatch.setattr(dc, "MAX_REPEATED_DRAWS", 50)
    assert dc.generate_pairs(1, seed=0) == [only_pair]
    with pytest.raises(ValueError, match="cannot yield n=2 distinct"):
        dc.generate_pairs(2, seed=0)


# --- write_demo_corpus --------------------------------------------------------------------


def test_write_demo_corpus_layout_and_held_out_splits(tmp_path):
    out = dc.write_demo_corpus(tmp_path / "demo", seed=3, train_size=400, valid_size=50, test_size=60)
    assert out == tmp_path / "demo"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{s}.{lang}.gz" for s in ("train", "val", "test") for lang in ("en", "de"))
    lines = {(s, lang): read_lines(out / f"{s}.{lang}.gz") for s in ("train", "val", "test") for lang in ("en", "de")}
    for split, size in (("train", 400), ("val", 50), ("test", 60)):
        assert len(lines[split, "en"]) == len(lines[split, "de"]) == size
    train, val, test = (set(lines[s, "en"]) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    expected = dc.generate_pairs(510, seed=3)
    assert list(zip(lines["train", "en"], lines["train", "de"])) == expected[:400]


def test_write_demo_corpus_is_reproducible_and_idempotent(tmp_path):
    def digests(path):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.iterdir()}

    a = dc.write_demo_corpus(tmp_path / "a", seed=5, train_size=100, valid_size=10, test_size=10)
    b = dc.write_demo_corpus(tmp_path / "b", seed=5, train_size=100, valid_size=10, test_size=10)
    assert digests(a) == digests(b)
    with gzip.open(a / "train.en.gz", "rb") as f:
        f.read()
    raw = (a / "train.en.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08  # mtime 0, no file name stored
    mtimes = {p.name: p.stat().st_mtime_ns for p in a.iterdir()}
    dc.write_demo_corpus(a, seed=5, train_size=100, valid_size=10, test_size=10)
    assert {p.name: p.stat().st_mtime_ns for p in a.iterdir()} == mtimes
    # A wrong line count (here: a truncated split) makes it regenerate everything.
    (a / "val.de.gz").write_bytes(b"")
    dc.write_demo_corpus(a, seed=5, train_size=100, valid_size=10, test_size=10)
    assert digests(a) == digests(b)


def test_write_demo_corpus_validates_sizes(tmp_path):
    for name in ("train_size", "valid_size", "test_size"):
        with pytest.raises(ValueError, match=name):
            dc.write_demo_corpus(tmp_path, **{name: 0})
    assert not any(tmp_path.iterdir())
