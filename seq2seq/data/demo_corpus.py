"""Synthetic English->German parallel corpus: the offline demo dataset.

Why: the real Multi30k download needs the network. This module writes a corpus in the
same file layout from a small grammar, so tokenizer training, model training and BLEU
evaluation can all run offline. Every English sentence has exactly one German rendering
and the translation is compositional, so a small attention model can learn it in
minutes; yet the German is real German: articles and adjectives agree in gender, number
and case (weak, mixed and strong declension), dative plurals take -n, verbs agree with
their subject (including stem-changing verbs), prepositions govern dative or accusative
(with the zum/zur/beim/vom contractions), and subordinate clauses put the verb last.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import random
from typing import NamedTuple

from seq2seq.textfiles import write_lines

# English singular -> (English plural, German singular, German plural, gender). No weak
# masculines (Junge -> den Jungen), so a noun's form depends on number and case only.
NOUNS: dict[str, tuple[str, str, str, str]] = {
    "dog": ("dogs", "Hund", "Hunde", "m"),
    "man": ("men", "Mann", "Männer", "m"),
    "teacher": ("teachers", "Lehrer", "Lehrer", "m"),
    "doctor": ("doctors", "Arzt", "Ärzte", "m"),
    "friend": ("friends", "Freund", "Freunde", "m"),
    "bird": ("birds", "Vogel", "Vögel", "m"),
    "king": ("kings", "König", "Könige", "m"),
    "apple": ("apples", "Apfel", "Äpfel", "m"),
    "table": ("tables", "Tisch", "Tische", "m"),
    "tree": ("trees", "Baum", "Bäume", "m"),
    "garden": ("gardens", "Garten", "Gärten", "m"),
    "ball": ("balls", "Ball", "Bälle", "m"),
    "letter": ("letters", "Brief", "Briefe", "m"),
    "key": ("keys", "Schlüssel", "Schlüssel", "m"),
    "coat": ("coats", "Mantel", "Mäntel", "m"),
    "cake": ("cakes", "Kuchen", "Kuchen", "m"),
    "woman": ("women", "Frau", "Frauen", "f"),
    "cat": ("cats", "Katze", "Katzen", "f"),
    "mother": ("mothers", "Mutter", "Mütter", "f"),
    "sister": ("sisters", "Schwester", "Schwestern", "f"),
    "queen": ("queens", "Königin", "Königinnen", "f"),
    "cow": ("cows", "Kuh", "Kühe", "f"),
    "mouse": ("mice", "Maus", "Mäuse", "f"),
    "flower": ("flowers", "Blume", "Blumen", "f"),
    "city": ("cities", "Stadt", "Städte", "f"),
    "door": ("doors", "Tür", "Türen", "f"),
    "school": ("schools", "Schule", "Schulen", "f"),
    "street": ("streets", "Straße", "Straßen", "f"),
    "lamp": ("lamps", "Lampe", "Lampen", "f"),
    "bag": ("bags", "Tasche", "Taschen", "f"),
    "cup": ("cups", "Tasse", "Tassen", "f"),
    "bottle": ("bottles", "Flasche", "Flaschen", "f"),
    "child": ("children", "Kind", "Kinder", "n"),
    "girl": ("girls", "Mädchen", "Mädchen", "n"),
    "horse": ("horses", "Pferd", "Pferde", "n"),
    "pig": ("pigs", "Schwein", "Schweine", "n"),
    "baby": ("babies", "Baby", "Babys", "n"),
    "house": ("houses", "Haus", "Häuser", "n"),
    "book": ("books", "Buch", "Bücher", "n"),
    "car": ("cars", "Auto", "Autos", "n"),
    "picture": ("pictures", "Bild", "Bilder", "n"),
    "window": ("windows", "Fenster", "Fenster", "n"),
    "egg": ("eggs", "Ei", "Eier", "n"),
    "boat": ("boats", "Boot", "Boote", "n"),
    "glass": ("glasses", "Glas", "Gläser", "n"),
    "bed": ("beds", "Bett", "Betten", "n"),
}
# Only these act as subjects and recipients, so the sentences read like plausible text.
ANIMATE = (
    "dog",
    "man",
    "teacher",
    "doctor",
    "friend",
    "bird",
    "king",
    "woman",
    "cat",
    "mother",
    "sister",
    "queen",
    "cow",
    "mouse",
    "child",
    "girl",
    "horse",
    "pig",
    "baby",
)

# Names take no article and are third person singular; same spelling in both languages.
NAMES = ("Anna", "Maria", "Lisa", "Julia", "Peter", "Thomas", "Paul", "Max")

# Subject pronouns only (never used as objects). "you" is always the familiar singular du,
# so the translation stays unambiguous.
PRONOUNS: dict[str, tuple[str, str]] = {
    "I": ("ich", "1sg"),
    "you": ("du", "2sg"),
    "he": ("er", "3sg"),
    "she": ("sie", "3sg"),
    "we": ("wir", "1pl"),
    "they": ("sie", "3pl"),
}

# English -> German base form. None end in -el/-er/-e clusters that drop a letter when
# inflected (dunkel -> dunkle), so the inflected form is always base + ending.
ADJECTIVES: dict[str, str] = {
    "big": "groß",
    "small": "klein",
    "old": "alt",
    "young": "jung",
    "new": "neu",
    "beautiful": "schön",
    "tired": "müde",
    "happy": "glücklich",
    "fast": "schnell",
    "slow": "langsam",
    "good": "gut",
    "poor": "arm",
    "rich": "reich",
    "quiet": "leise",
    "friendly": "freundlich",
    "cold": "kalt",
    "red": "rot",
    "blue": "blau",
    "green": "grün",
    "black": "schwarz",
}
# Colours go with things only, LIVELY adjectives with animate nouns only. A second
# adjective is always a colour after another one ("the big red ball"), as in both languages.
COLOURS = ("red", "blue", "green", "black")
LIVELY = ("young", "tired", "happy", "poor", "rich", "friendly")

# English base form -> (German infinitive, object cases, ich/du/er forms if irregular).
# Object cases: "" intransitive, "acc", "dat", "dat acc" (recipient then thing, the order
# of "gives the child an apple" in both languages), "that" for verbs taking a dass-clause.
VERBS: dict[str, tuple[str, str, str]] = {
    "sleep": ("schlafen", "", "schlafe schläfst schläft"),
    "wait": ("warten", "", ""),
    "run": ("laufen", "", "laufe läufst läuft"),
    "work": ("arbeiten", "", ""),
    "drive": ("fahren", "", "fahre fährst fährt"),
    "laugh": ("lachen", "", ""),
    "sing": ("singen", "", ""),
    "swim": ("schwimmen", "", ""),
    "see": ("sehen", "acc", "sehe siehst sieht"),
    "buy": ("kaufen", "acc", ""),
    "read": ("lesen", "acc", "lese liest liest"),
    "find": ("finden", "acc", ""),
    "eat": ("essen", "acc", "esse isst isst"),
    "open": ("öffnen", "acc", ""),
    "carry": ("tragen", "acc", "trage trägst trägt"),
    "take": ("nehmen", "acc", "nehme nimmst nimmt"),
    "wash": ("waschen", "acc", "wasche wäschst wäscht"),
    "catch": ("fangen", "acc", "fange fängst fängt"),
    "help": ("helfen", "dat", "helfe hilfst hilft"),
    "thank": ("danken", "dat", ""),
    "answer": ("antworten", "dat", ""),
    "show": ("zeigen", "dat acc", ""),
    "give": ("geben", "dat acc", "gebe gibst gibt"),
    "bring": ("bringen", "dat acc", ""),
    "send": ("schicken", "dat acc", ""),
    "say": ("sagen", "that", ""),
    "know": ("wissen", "that", "weiß weißt weiß"),
    "believe": ("glauben", "that", ""),
    "hope": ("hoffen", "that", ""),
}

PREPOSITIONS: dict[str, tuple[str, str]] = {
    "with": ("mit", "dat"),
    "from": ("von", "dat"),
    "to": ("zu", "dat"),
    "at": ("bei", "dat"),
    "after": ("nach", "dat"),
    "out of": ("aus", "dat"),
    "for": ("für", "acc"),
    "without": ("ohne", "acc"),
    "through": ("durch", "acc"),
    "against": ("gegen", "acc"),
}
# Always applied to preposition + definite article, as written German does.
CONTRACTIONS = {("zu", "dem"): "zum", ("zu", "der"): "zur", ("bei", "dem"): "beim", ("von", "dem"): "vom"}

CONJUNCTIONS = {"because": "weil", "when": "wenn"}


def _declension(nom: str, acc: str, dat: str) -> dict[str, dict[str, str]]:
    """Grammar-book table: one row per case, columns m f n pl; "-" marks no ending."""
    rows = {"nom": nom, "acc": acc, "dat": dat}
    return {case: dict(zip(("m", "f", "n", "pl"), row.replace("-", "").split(" "))) for case, row in rows.items()}


DEFINITE = _declension("der die das die", "den die das die", "dem der dem den")
EIN_WORDS = {"a": "ein", "my": "mein"}  # ein-words share one set of endings
EIN_ENDINGS = _declension("- e - e", "en e - e", "em er em en")
# Weak adjective endings follow a determiner that already shows gender and case.
WEAK = _declension("e e e en", "en e e en", "en en en en")
# Strong endings carry gender and case themselves: used with no determiner, and after
# an ein-word without ending (mixed declension: "ein großer Hund", "ein kleines Kind").
STRONG = _declension("er e es e", "en e es e", "em er em en")

NOUN_KEYS = tuple(NOUNS)
ANIMATE_ADJECTIVES = tuple(a for a in ADJECTIVES if a not in COLOURS)
THING_ADJECTIVES = tuple(a for a in ADJECTIVES if a not in LIVELY)
SIZE_ADJECTIVES = tuple(a for a in THING_ADJECTIVES if a not in COLOURS)
CLAUSE_VERBS = tuple(v for v, entry in VERBS.items() if entry[1] != "that")
REPORTING_VERBS = tuple(v for v, entry in VERBS.items() if entry[1] == "that")
SPLITS = ("train", "val", "test")
MIN_WORDS, MAX_WORDS = 4, 20
# Give up once this many draws in a row repeat earlier sentences: the grammar is spent.
MAX_REPEATED_DRAWS = 10_000


class NounPhrase(NamedTuple):
    """A noun (English key of NOUNS), a name or a pronoun, with its modifiers."""

    head: str
    det: str = "the"  # "the", "a", "my", or "" for names, pronouns and bare plurals
    adjectives: tuple[str, ...] = ()
    plural: bool = False


class Clause(NamedTuple):
    """A finished English clause and the German parts that word order rearranges."""

    en: str
    subject: str
    verb: str
    rest: str  # objects and prepositional phrase, already in German order


def person_of(np: NounPhrase) -> str:
    """Grammatical person/number ("1sg" ... "3pl") that the verb must agree with."""
    if np.head in PRONOUNS:
        return PRONOUNS[np.head][1]
    return "3pl" if np.plural else "3sg"


def render_np(np: NounPhrase, case: str) -> tuple[str, str]:
    """English and German noun phrase; the German agrees in gender, number and case."""
    if np.head in PRONOUNS:
        if case != "nom":
            raise ValueError(f"pronoun {np.head!r} is only used as a subject")
        return np.head, PRONOUNS[np.head][0]
    if np.head in NAMES:
        return np.head, np.head
    en_plural, de_singular, de_plural, gender = NOUNS[np.head]
    if np.plural and np.det == "a":
        raise ValueError("'a' cannot go with a plural noun")
    key = "pl" if np.plural else gender
    if np.det == "the":
        article, endings = DEFINITE[case][key], WEAK
    elif np.det in EIN_WORDS:
        ending = EIN_ENDINGS[case][key]
        article, endings = EIN_WORDS[np.det] + ending, (STRONG if ending == "" else WEAK)
    else:
        article, endings = "", STRONG
    noun = de_plural if np.plural else de_singular
    if np.plural and case == "dat" and not noun.endswith(("n", "s")):
        noun += "n"  # dative plural: den Hunden, den Kindern (but den Frauen, den Autos)
    adjectives = [ADJECTIVES[a].removesuffix("e") + endings[case][key] for a in np.adjectives]
    de = " ".join(word for word in (article, *adjectives, noun) if word)
    en = " ".join([*np.adjectives, en_plural if np.plural else np.head])
    en_det = "an" if np.det == "a" and en[0] in "aeiou" else np.det
    return (f"{en_det} {en}" if en_det else en), de


def english_third_singular(verb: str) -> str:
    """'see' -> 'sees', 'wash' -> 'washes', 'carry' -> 'carries'."""
    if verb.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def conjugate(verb: str, person: str) -> tuple[str, str]:
    """Present tense of an English base form and its German translation for a person."""
    infinitive, _, irregular = VERBS[verb]
    en = english_third_singular(verb) if person == "3sg" else verb
    if person in ("1pl", "3pl"):
        return en, infinitive
    if irregular:
        singular = irregular.split()
    else:
        stem = infinitive[:-2]
        # An e keeps the ending audible after t/d and consonant+n: wartest, findet, öffnet.
        linking_e = stem.endswith(("t", "d")) or (stem.endswith("n") and stem[-2] not in "aeiouäöülrmnh")
        e = "e" if linking_e else ""
        du = stem + ("t" if stem.endswith(("s", "ß", "z", "x")) else e + "st")
        singular = [stem + "e", du, stem + e + "t"]
    return en, singular[("1sg", "2sg", "3sg").index(person)]


def prepositional_phrase(preposition: str, np: NounPhrase) -> tuple[str, str]:
    """Prepositional phrase with the case the German preposition governs."""
    de_prep, case = PREPOSITIONS[preposition]
    en_np, de_np = render_np(np, case)
    first, _, rest = de_np.partition(" ")
    if (de_prep, first) in CONTRACTIONS and np.det == "the" and not np.plural:
        return f"{preposition} {en_np}", f"{CONTRACTIONS[de_prep, first]} {rest}"
    return f"{preposition} {en_np}", f"{de_prep} {de_np}"


def make_clause(subject: NounPhrase, verb: str, objects: tuple[NounPhrase, ...] = (), pp: tuple[str, NounPhrase] | None = None) -> Clause:
    """Clause with the verb agreeing with the subject and objects in the verb's cases."""
    cases = VERBS[verb][1].split()
    if cases == ["that"] or len(objects) != len(cases):
        raise ValueError(f"verb {verb!r} takes objects in cases {cases}, got {len(objects)}")
    en_subject, de_subject = render_np(subject, "nom")
    en_verb, de_verb = conjugate(verb, person_of(subject))
    parts = [render_np(np, case) for np, case in zip(objects, cases)]
    if pp is not None:
        parts.append(prepositional_phrase(*pp))
    return Clause(" ".join([en_subject, en_verb, *(en for en, _ in parts)]), de_subject, de_verb, " ".join(de for _, de in parts))


def german_clause(clause: Clause, verb_final: bool) -> str:
    """German word order: finite verb second in a main clause, last in a subordinate one."""
    if verb_final:
        order = (clause.subject, clause.rest, clause.verb)
    else:
        order = (clause.subject, clause.verb, clause.rest)
    return " ".join(part for part in order if part)


def _finish(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def simple_sentence(clause: Clause) -> tuple[str, str]:
    """'The dog sees the cat.' -> 'Der Hund sieht die Katze.'"""
    return _finish(clause.en), _finish(german_clause(clause, verb_final=False))


def reported_sentence(subject: NounPhrase, verb: str, clause: Clause) -> tuple[str, str]:
    """'I know that ...' -> 'Ich weiß, dass ...' with the verb last in the dass-clause."""
    if VERBS[verb][1] != "that":
        raise ValueError(f"verb {verb!r} does not take a that-clause")
    en_subject, de_subject = render_np(subject, "nom")
    en_verb, de_verb = conjugate(verb, person_of(subject))
    return (_finish(f"{en_subject} {en_verb} that {clause.en}"), _finish(f"{de_subject} {de_verb}, dass {german_clause(clause, verb_final=True)}"))


def joined_sentence(main: Clause, conjunction: str, sub: Clause) -> tuple[str, str]:
    """Main clause + 'because'/'when' clause -> '..., weil/wenn ... verb.'"""
    return (
        _finish(f"{main.en} {conjunction} {sub.en}"),
        _finish(f"{german_clause(main, verb_final=False)}, {CONJUNCTIONS[conjunction]} {german_clause(sub, verb_final=True)}"),
    )


def _random_np(rng: random.Random, animate: bool) -> NounPhrase:
    if rng.random() < 0.1:
        return NounPhrase(rng.choice(NAMES), "")
    plural = rng.random() < 0.25
    dets = ("the", "", "my") if plural else ("the", "a", "my")
    det = rng.choices(dets, weights=(6, 2.5, 1.5))[0]
    noun = rng.choice(ANIMATE if animate else NOUN_KEYS)
    roll = rng.random()
    if roll < 0.55:
        adjectives: tuple[str, ...] = ()
    elif noun in ANIMATE:
        adjectives = (rng.choice(ANIMATE_ADJECTIVES),)
    elif roll < 0.9:
        adjectives = (rng.choice(THING_ADJECTIVES),)
    else:
        adjectives = (rng.choice(SIZE_ADJECTIVES), rng.choice(COLOURS))
    return NounPhrase(noun, det, adjectives, plural)


def _random_subject(rng: random.Random) -> NounPhrase:
    if rng.random() < 0.25:
        return NounPhrase(rng.choice(tuple(PRONOUNS)), "")
    return _random_np(rng, animate=True)


def _random_clause(rng: random.Random, pp_chance: float) -> Clause:
    verb = rng.choice(CLAUSE_VERBS)
    # Recipients (dative objects) are animate; things given, seen or eaten can be anything.
    objects = tuple(_random_np(rng, animate=(case == "dat")) for case in VERBS[verb][1].split())
    pp = None
    if rng.random() < (pp_chance if objects else 2 * pp_chance):
        pp = (rng.choice(tuple(PREPOSITIONS)), _random_np(rng, animate=False))
    return make_clause(_random_subject(rng), verb, objects, pp)


def _random_sentence(rng: random.Random) -> tuple[str, str]:
    """One random (english, german) pair of 4-20 English words."""
    while True:
        roll = rng.random()
        if roll < 0.55:
            pair = simple_sentence(_random_clause(rng, pp_chance=0.45))
        elif roll < 0.75:
            pair = reported_sentence(_random_subject(rng), rng.choice(REPORTING_VERBS), _random_clause(rng, pp_chance=0.2))
        else:
            conjunction = "because" if roll < 0.9 else "when"
            pair = joined_sentence(_random_clause(rng, pp_chance=0.15), conjunction, _random_clause(rng, pp_chance=0.15))
        if MIN_WORDS <= len(pair[0].split()) <= MAX_WORDS:
            return pair


def _check_int(name: str, value: object, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def generate_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """n distinct (english, german) pairs, deterministic for a seed.

    Distinct by the English side (the German is a function of it), so any split of the
    result keeps its parts disjoint. Raises ValueError if the grammar runs out.
    """
    _check_int("n", n, 0)
    _check_int("seed", seed)
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    repeats = 0
    while len(pairs) < n:
        en, de = _random_sentence(rng)
        if en in seen:
            repeats += 1
            if repeats >= MAX_REPEATED_DRAWS:
                raise ValueError(f"the grammar cannot yield n={n} distinct pairs (found {len(pairs)})")
            continue
        repeats = 0
        seen.add(en)
        pairs.append((en, de))
    return pairs


def _line_count(path: pathlib.Path) -> int:
    """Lines in a gzip file, or -1 if it is missing or unreadable."""
    try:
        with gzip.open(path, "rb") as f:
            return sum(1 for _ in f)
    except (OSError, EOFError):
        return -1


def write_demo_corpus(out_dir: str | os.PathLike, seed: int = 0, train_size: int = 20000, valid_size: int = 500, test_size: int = 500) -> pathlib.Path:
    """Write train/val/test splits in the Multi30k task-1 layout: {split}.en.gz and {split}.de.gz
    (split names exactly 'train', 'val', 'test'), one sentence per line, UTF-8, gzip. The English
    sides of val and test never occur in train nor in each other (held out). Returns out_dir.
    Idempotent: if the six files already exist with the right line counts, it does not rewrite them.
    """
    _check_int("seed", seed)
    _check_int("train_size", train_size, 1)
    _check_int("valid_size", valid_size, 1)
    _check_int("test_size", test_size, 1)
    out = pathlib.Path(out_dir)
    sizes = dict(zip(SPLITS, (train_size, valid_size, test_size)))
    files = {(split, lang): out / f"{split}.{lang}.gz" for split in SPLITS for lang in ("en", "de")}
    if all(_line_count(path) == sizes[split] for (split, _), path in files.items()):
        return out
    # One distinct sample cut into consecutive pieces: this is what keeps val/test held out.
    # Train comes first, so changing the val/test sizes leaves the training data unchanged.
    pairs = generate_pairs(sum(sizes.values()), seed)
    out.mkdir(parents=True, exist_ok=True)
    start = 0
    for split in SPLITS:
        chunk = pairs[start : start + sizes[split]]
        start += sizes[split]
        write_lines(files[split, "en"], [en for en, _ in chunk])
        write_lines(files[split, "de"], [de for _, de in chunk])
    return out
