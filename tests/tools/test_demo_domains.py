"""tools/demo_domains.py: the new domain's nouns never occur in the general domain, and each sentence of the new domain has one."""

import re

from seq2seq.textfiles import read_lines

from conftest import load_tool


def test_the_new_nouns_occur_in_the_new_domain_only(tmp_path):
    tool = load_tool("demo_domains")
    dirs = tool.write_domains(tmp_path, ("king", "cow"), seed=3, sizes={"general": (60, 10, 10), "new": (30, 5, 5)})
    words = {"king", "kings", "cow", "cows"}
    german = {"König", "Könige", "Königen", "Kuh", "Kühe", "Kühen"}
    for split, size in (("train", 30), ("val", 5), ("test", 5)):
        en, de = read_lines(dirs["new"] / f"{split}.en.gz"), read_lines(dirs["new"] / f"{split}.de.gz")
        assert len(en) == len(de) == size and all(words & set(re.findall(r"[a-z]+", s.lower())) for s in en)
    for split, size in (("train", 60), ("val", 10), ("test", 10)):
        en, de = read_lines(dirs["general"] / f"{split}.en.gz"), read_lines(dirs["general"] / f"{split}.de.gz")
        assert len(en) == size and not any(words & set(re.findall(r"[a-z]+", s.lower())) for s in en)
        assert not any(german & set(re.findall(r"\w+", s)) for s in de)
