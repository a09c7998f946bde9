"""Sentences of real text (seq2seq/inference/text.py): paragraphs split as a person would, the
whitespace and line breaks kept exactly, over-long sentences cut at sentence and clause boundaries."""

import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seq2seq.inference.text import CLAUSE_CUTS, TextPlan, cut_long, plan, plan_text, split_sentences

from conftest import FAST

# The 71 paragraphs written for docs/logs/2026-12-06-sentence-splitters.md: each a list of gold
# sentences with their trailing whitespace, so "".join(segments) is the paragraph.
GOLD = [
    ("abbr-titles", ["Dr. Meyer and Mr. Okafor arrived late. ", "Mrs. Lindqvist had already started the meeting without them."]),
    ("abbr-eg-ie", ["Bring something warm, e.g. a jacket or a scarf. ", "The forecast says it will be cold, i.e. below freezing at night."]),
    ("abbr-etc-end", ["We packed tents, stoves, ropes, etc. ", "The car was full before noon."]),
    ("abbr-etc-mid", ["Apples, pears, plums, etc. are sold by weight here. ", "Bread is sold by the loaf."]),
    ("abbr-us", ["The U.S. dollar fell against the euro on Tuesday. ", "Analysts blamed weak export figures."]),
    ("abbr-us-end", ["She spent ten years working in the U.S. ", "Then she moved back to Lisbon with her family."]),
    ("abbr-ampm", ["The train leaves at 7:15 a.m. and arrives at 1 p.m. sharp. ", "Tickets cost less before 9 a.m. on weekdays."]),
    ("abbr-ampm-end", ["The shop opens at 9 a.m. ", "Staff arrive half an hour earlier to unpack deliveries."]),
    ("abbr-inc-st", ["Northwind Inc. moved its office to 14 St. Albans Road last spring. ", "The old building on Market St. is now empty."]),
    ("abbr-vs", ["The final was Leeds vs. Porto. ", "Porto won on penalties after a goalless draw."]),
    ("abbr-prof-no", ["Prof. Tanaka's talk starts at approx. 4 o'clock in room No. 12. ", "Please arrive early, as seats are limited."]),
    ("abbr-jr", ["The report was signed by Martin Hale Jr. and two witnesses. ", "None of them could be reached for comment."]),
    ("abbr-fig-cf", ["The results are shown in Fig. 3 of the appendix. ", "For the method, cf. Section 4 and Eq. 7."]),
    ("abbr-co-end", ["The parcel was shipped by Acme Co. ", "It arrived two days late."]),
    ("abbr-nbsp", ["Mr.\xa0Brown opened the window. ", "Mrs.\xa0Brown closed it again."]),
    ("init-tolkien", ["J. R. R. Tolkien taught at Oxford for many years. ", "His friend C. S. Lewis taught there too."]),
    ("init-single", ["The paper by A. Smith and B. Nguyen was cited twice. ", "A later study by K. Osei reached the opposite conclusion."]),
    ("init-middle", ["The memo came from Paul D. Ramirez, the new director. ", "It was two pages long."]),
    ("num-decimal", ["The trail is 3.5 km long and climbs 420 m. ", "Most hikers finish it in 2.5 hours."]),
    ("num-price", ["A coffee costs $4.99 here, and a sandwich costs £6.50. ", "Prices rose by 3.2% last year."]),
    ("num-thousands", ["The account held 1,000.5 units at the end of the quarter. ", "By March it held 12,480.75 units."]),
    ("num-version", ["Version 2.0.1 fixes the crash on start-up. ", "Users of version 1.9 should upgrade before 3.0 is released."]),
    ("num-end", ["The average mark was 3.5. ", "Nobody had expected it to be so low."]),
    ("num-clause", ["Clause 4.2.1 of the lease covers repairs. ", "Clause 4.3 covers rent."]),
    ("date-abbr", ["The contract was signed on Dec. 6, 2026, in Vienna. ", "It takes effect on Jan. 1, 2027."]),
    ("date-ordinal", ["She finished 2nd in the race on the 14th of May. ", "Her sister finished 5th."]),
    ("date-dotted", ["The deadline is 31.12.2026. ", "Late entries are not accepted."]),
    ("quote-stop", ['"Stop!" she said. ', "The dog sat down at once."]),
    ("quote-why", ['He asked, "Why?" ', "Then he left without waiting for an answer."]),
    ("quote-period-inside", ['The sign read "Closed for repairs." ', "We walked on to the next village."]),
    ("quote-curly-dialogue", ["“Are you coming?” asked Lena. ", "“Not yet,” said Tom. ", "“I still have to pack.”"]),
    ("quote-run", ["“Run!” ", "The crowd scattered in every direction."]),
    ("quote-single", ["She called the plan 'a bit optimistic.' ", "Her manager disagreed."]),
    ("quote-who", ['"Who is there?" called the guard. ', "No one replied."]),
    ("quote-end-question", ["Why did she call it “a small problem”? ", "It cost us a week."]),
    ("ellipsis-lower", ["Well... maybe we should wait. ", "The rain might stop soon."]),
    ("ellipsis-upper", ["I knocked twice and waited... ", "Nobody answered."]),
    ("ellipsis-trailing", ["We have apples, pears, plums... ", "Take whatever you like. ", "There is more in the cellar..."]),
    ("ellipsis-unicode", ["It was late… ", "We went home and slept until noon…"]),
    ("ellipsis-spaced", ["He paused . . . and then spoke again. ", "The room was silent."]),
    ("paren-inside", ["The museum (open since 1998) has a new wing. ", "Entry is free on Sundays."]),
    ("paren-sentence", ["The bridge was closed for a week. ", "(Repairs took longer than planned.) ", "It reopened on Friday."]),
    ("paren-abbr", ["Bring a valid ID (e.g. a passport). ", "Children under 12 need a parent present."]),
    ("paren-end", ["He left the party early (he was tired). ", "Nobody minded."]),
    ("list-bullets", ["Before you leave:\n", "- lock the door\n", "- turn off the heating\n", "- water the plants"]),
    (
        "list-bullets-sent",
        ["Three rules apply.\n", "- Keep your ticket until the end of the trip.\n", "- Do not leave bags unattended.\n", "- Report lost items at the desk."],
    ),
    ("list-numbered-dot", ["To install the printer:\n", "1. Unpack the box.\n", "2. Connect the power cable.\n", "3. Press the green button."]),
    ("list-numbered-paren", ["Choose one option:\n", "1) pay online\n", "2) pay at the counter\n", "3) pay by post"]),
    ("list-star", ["Packing list\n", "* two shirts\n", "* one pair of boots\n", "* a torch"]),
    ("list-inline", ["You will need three things: 1. a passport, 2. a return ticket, and 3. proof of funds. ", "Without them you cannot board."]),
    ("list-inline-letters", ["The form asks for (a) your name, (b) your address and (c) a phone number. ", "It takes five minutes."]),
    ("web-url", ["The manual is at https://example.org/docs/v2.0/index.html for now. ", "A printed copy costs extra."]),
    ("web-url-end", ["Read more at www.example.com. ", "The page is updated weekly."]),
    ("web-email", ["Write to anna.berg@example.com if the link fails. ", "She answers within a day."]),
    ("web-file-names", ["Open config.yaml and set the batch size. ", "Then run train.py again."]),
    ("heading-newline", ["Opening hours\n", "The library is open from Monday to Saturday. ", "It is closed on public holidays."]),
    ("heading-blank", ["Chapter 3: The Journey North\n\n", "They left the city before dawn. ", "Snow had fallen overnight."]),
    ("heading-numbered", ["2. Results\n", "The model improved by two points. ", "The gain held on both test sets."]),
    # A line break always ends a sentence here (the log's gold keeps a hard-wrapped sentence whole).
    ("space-wrap", ["The committee met on Thursday to discuss\n", "the budget for next year. ", "Most members agreed\n", "that the library needs a new roof."]),
    ("space-wrap-boundary", ["The storm passed in the night.\n", "By morning the streets were dry again."]),
    ("space-crlf", ["The first line ends here.\r\n", "The second line follows it."]),
    ("space-repeated", ["Thank you. ", "It was a pleasure to work with you. ", "Thank you."]),
    ("space-leading", ["  Indented text starts here. ", "It ends with a line break.\n"]),
    ("space-odd", ["This sentence is followed by two spaces.  ", "This one by a tab.\t", "This one by nothing."]),
    ("excl-q", ["What a day! ", "Did you see the sunset? ", "It was red and gold!"]),
    ("excl-multi", ["Are you serious?! ", "That is wonderful news!!! ", "When did it happen?"]),
    ("lower-all", ["ok thanks. ", "see you at six. ", "bring the keys."]),
    ("lower-brand", ["The launch went well. ", "iPhone owners can update today."]),
    ("lower-code", ["Call the function first. ", "numpy arrays are returned as lists."]),
    (
        "long-semicolon",
        [
            "The old mill, which had stood by the river since the eighteenth century, was sold in 1987 to a family from the north; they repaired the roof, replaced the wheel, and opened a small café on the ground floor; within a few years it had become the busiest place in the valley, although the owners, who had never run a business before, often said that they had no idea how it had happened. ",
            "Today it is run by their grandchildren.",
        ],
    ),
    (
        "long-clauses",
        [
            "If the weather holds and the ferry runs on time, we will reach the island by noon, walk to the lighthouse along the cliff path, which the guidebook describes as steep but safe, eat lunch in the harbour, and catch the last boat back, provided that nobody has lost their ticket, which, given our record, is far from certain."
        ],
    ),
]
# Where sentencex 1.0.32 and a reader disagree (the log's failures that this module does not mend):
# "approx. 4", "Eq. 7" split, "420 m. Most" not split. The join identity still holds for them.
KNOWN_MISSES = {"abbr-prof-no", "abbr-fig-cf", "num-decimal"}


def sentences_of(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


@pytest.mark.parametrize(("name", "segments"), GOLD, ids=[name for name, _ in GOLD])
def test_gold_paragraphs_split_as_a_person_would(name, segments):
    text = "".join(segments)
    found = plan_text(text)
    assert found.join(found.sentences) == text
    assert all(gap.isspace() for gap in found.gaps[1:-1])
    if name not in KNOWN_MISSES:
        assert found.sentences == [s.strip() for s in segments]


def test_gold_set_accuracy_holds():
    """At most the known misses: a sentencex release that splits worse fails here, not in translations."""
    wrong = {name for name, segments in GOLD if sentences_of("".join(segments)) != [s.strip() for s in segments]}
    assert wrong <= KNOWN_MISSES, wrong - KNOWN_MISSES
    assert len(GOLD) == 71


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Meyer arrived. e.g. is an abbreviation.  The U.S. Army came.", ["Dr. Meyer arrived.", "e.g. is an abbreviation.", "The U.S. Army came."]),
        ("J. R. R. Tolkien wrote it in 3.5 years. It sold well.", ["J. R. R. Tolkien wrote it in 3.5 years.", "It sold well."]),
        ('"Stop!" she said. He asked, "Why?" Then he left.', ['"Stop!" she said.', 'He asked, "Why?"', "Then he left."]),
        ("He waited... Nobody came. It was late\u2026 We left.", ["He waited...", "Nobody came.", "It was late\u2026", "We left."]),
        ("Steps:\n1. Unpack the box.\n2. Plug it in.", ["Steps:", "1. Unpack the box.", "2. Plug it in."]),
        (
            "Bring three things: 1. a passport, 2. a ticket, and 3. money. Then go.",
            ["Bring three things: 1. a passport, 2. a ticket, and 3. money.", "Then go."],
        ),
        ("2. Results\nThe model improved.", ["2. Results", "The model improved."]),
        ("Title\r\n\r\n  First one.   Second one.\t\nThird", ["Title", "First one.", "Second one.", "Third"]),
        (
            "The bridge was shut. (Repairs took longer than planned.) It reopened.",
            ["The bridge was shut.", "(Repairs took longer than planned.)", "It reopened."],
        ),
    ],
)
def test_hard_cases(text, expected):
    assert sentences_of(text) == expected


def test_join_keeps_whitespace_and_line_structure():
    text = "  Dr. Meyer came.  He sat down.\n\nThen he left.\r\nThe end. "
    found = plan_text(text)
    assert found.gaps == ["  ", "  ", "\n\n", "\r\n", " "]
    # A translation's own line break becomes a space: the lines are the input's.
    joined = found.join(["Dr. Meyer kam.", "Er setzte\nsich.", "Dann ging er.", "Ende."])
    assert joined == "  Dr. Meyer kam.  Er setzte sich.\n\nDann ging er.\r\nEnde. "
    assert len(joined.splitlines()) == len(text.splitlines())
    with pytest.raises(ValueError, match=r"one translation per sentence \(4\); got 3"):
        found.join(["a", "b", "c"])
    with pytest.raises(ValueError, match="got a str"):
        found.join("abcd")


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\r\n\u2028 "])
def test_blank_text_has_no_sentences(text):
    found = plan_text(text)
    assert found.sentences == [] and found.join([]) == text and split_sentences(text) == []


@FAST
@given(text=st.text(alphabet=st.sampled_from(list('ab .!?,;:\n\r\t\u2026"()1AZ\u00a0\u2028')) | st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_join_gives_the_text_back(text):
    found = plan_text(text)
    assert found.join(found.sentences) == text
    assert len(found.gaps) == len(found.sentences) + 1
    assert all(s and s == s.strip() for s in found.sentences)
    assert all(not gap.strip() for gap in found.gaps)
    # A line break always ends a sentence: no sentence holds one.
    assert all(len(s.splitlines()) == 1 for s in found.sentences)
    # The same number of lines after translation, whatever the translations hold.
    assert len(found.join(["x\ny"] * len(found.sentences)).splitlines()) == len(text.splitlines())


LONG = [
    "The old mill, which had stood by the river since the eighteenth century, was sold in 1987 to a family from the north; they repaired the roof, "
    "replaced the wheel, and opened a small caf\u00e9 on the ground floor; within a few years it had become the busiest place in the valley, although "
    "the owners, who had never run a business before, often said that they had no idea how it had happened.",
    "If the weather holds and the ferry runs on time, we will reach the island by noon, walk to the lighthouse along the cliff path, which the "
    "guidebook describes as steep but safe, eat lunch in the harbour, and catch the last boat back, provided that nobody has lost their ticket, "
    "which, given our record, is far from certain.",
]


def words(text: str) -> int:
    return len(text.split())


def test_clause_cuts_follow_the_order_of_boundaries():
    """The log's sketch at 30 words: semicolons first, then a comma before a conjunction, then any comma."""
    assert cut_long(LONG[0], 30, words) == [
        "The old mill, which had stood by the river since the eighteenth century, was sold in 1987 to a family from the north; ",
        "they repaired the roof, replaced the wheel, and opened a small caf\u00e9 on the ground floor; ",
        "within a few years it had become the busiest place in the valley, ",
        "although the owners, who had never run a business before, often said that they had no idea how it had happened.",
    ]
    assert cut_long(LONG[1], 30, words) == [
        "If the weather holds and the ferry runs on time, we will reach the island by noon, walk to the lighthouse along the cliff path, ",
        "which the guidebook describes as steep but safe, eat lunch in the harbour, and catch the last boat back, ",
        "provided that nobody has lost their ticket, which, given our record, is far from certain.",
    ]
    assert cut_long("One: two three four five six seven, eight nine", 6, words) == ["One: ", "two three four five six seven, ", "eight nine"]
    # No boundary leaves a left piece within 5 words: the rest is left whole, for the token cut.
    assert cut_long("One: two three four five six seven, eight nine", 5, words) == ["One: ", "two three four five six seven, eight nine"]


@pytest.mark.parametrize("limit", [1, 3, 8, 20, 200])
@pytest.mark.parametrize("text", [*LONG, "A dog runs. A cat sleeps; the bird sings, and we laugh. " * 4, "no boundary at all in these words " * 5])
def test_cut_long_pieces_join_and_fit(text, limit):
    pieces = cut_long(text, limit, words)
    assert "".join(pieces) == text and all(pieces)
    if words(text) <= limit:
        assert pieces == [text]
    for piece in pieces:
        # A piece over the limit has no boundary left to cut at: the translator cuts it by tokens.
        assert words(piece) <= limit or not any(m.end() < len(piece) and words(piece[: m.end()]) <= limit for rx in CLAUSE_CUTS for m in rx.finditer(piece))


def test_cut_long_cuts_at_every_sentence_first():
    text = "The dog sleeps. The cat, which is small, sleeps too. We laugh."
    assert cut_long(text, 8, words) == ["The dog sleeps. ", "The cat, which is small, sleeps too. ", "We laugh."]
    assert cut_long(text, 100, words) == [text]
    with pytest.raises(ValueError, match="limit must be positive"):
        cut_long(text, 0, words)


def test_cut_long_without_sentencex_cuts_at_sentence_ends(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencex", None)  # import sentencex raises ImportError
    text = 'The dog sleeps. "Why?" The cat, which is small, sleeps too... We laugh.'
    assert cut_long(text, 7, words) == ["The dog sleeps. ", '"Why?" ', "The cat, which is small, sleeps too... ", "We laugh."]


def test_max_chars_cuts_long_sentences_at_clauses():
    text = "Short one.  " + LONG[1] + "\nEnd."
    found = plan_text(text, max_chars=120)
    assert found.join(found.sentences) == text
    assert found.sentences[0] == "Short one." and found.sentences[-1] == "End."
    assert [len(s) <= 120 for s in found.sentences] == [True] * len(found.sentences)
    assert " ".join(found.sentences[1:-1]) == LONG[1]
    assert plan_text(text).sentences == ["Short one.", LONG[1], "End."]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_chars must be a positive int or None"):
            plan_text(text, max_chars=bad)


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="text must be a str; got list"):
        plan_text(["a"])
    with pytest.raises(ValueError, match="format must be one of text, html; got 'xml'"):
        plan("a", "xml")
    assert isinstance(plan("A dog. A cat.", "text"), TextPlan)


def test_missing_sentencex_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencex", None)
    with pytest.raises(ImportError, match=re.escape('pip install "seq2seq[text]"')):
        plan_text("A dog. A cat.")


def test_html_format_goes_to_the_html_planner():
    html = pytest.importorskip("seq2seq.inference.html")
    markup = "<p>The dog sleeps. The <b>cat</b> laughs.</p>"
    assert plan(markup, "html").sentences == html.plan_html(markup).sentences
