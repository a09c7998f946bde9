"""Two domains from the demo grammar, for fine-tuning experiments offline.

    python tools/demo_domains.py --out runs/domains [--farm king queen horse cow pig egg] [--seed 0]

The demo grammar's sentences are split by their nouns: those that use none of the --farm nouns
form the general domain (runs/domains/general), those that use at least one of them the new
domain (runs/domains/new). A model trained on the general domain has never seen these nouns in
either language, nor the German words and forms they bring (König, Königin, Kühe, Eier, ...), so
its tokenizer spells them in smaller pieces and its decoder has no idea what they mean. Both
directories are in the Multi30k task-1 layout ({train,val,test}.{en,de}.gz), for data.dir.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from seq2seq.data.demo_corpus import NOUNS, generate_pairs
from seq2seq.textfiles import write_lines

FARM = ("king", "queen", "horse", "cow", "pig", "egg")
SIZES = {"general": (20000, 500, 500), "new": (2000, 300, 300)}  # train, val, test


def split_domains(pairs: list[tuple[str, str]], nouns: tuple[str, ...]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(general, new): the pairs whose English uses none of `nouns` (singular or plural), and the rest."""
    words = {w for noun in nouns for w in (noun, NOUNS[noun][0])}
    general, new = [], []
    for en, de in pairs:
        (new if words & set(re.findall(r"[a-z]+", en.lower())) else general).append((en, de))
    return general, new


def write_domains(out: Path, nouns: tuple[str, ...], seed: int, sizes: dict[str, tuple[int, int, int]] = SIZES) -> dict[str, Path]:
    """Write out/general and out/new with the sizes asked for; return the two directories."""
    unknown = [n for n in nouns if n not in NOUNS]
    if unknown:
        raise ValueError(f"--farm: {', '.join(unknown)} are not nouns of the demo grammar; choose from {', '.join(NOUNS)}")
    need = {name: sum(s) for name, s in sizes.items()}
    n = 2 * sum(need.values())  # 60% of the sentences are general with the default nouns
    general, new = split_domains(generate_pairs(n, seed), nouns)
    if len(general) < need["general"] or len(new) < need["new"]:
        raise ValueError(f"{n} sentences gave {len(general)} general and {len(new)} new ones; ask for smaller sizes or more nouns")
    dirs = {}
    for name, pairs in (("general", general), ("new", new)):
        dirs[name] = out / name
        dirs[name].mkdir(parents=True, exist_ok=True)
        start = 0
        for split, size in zip(("train", "val", "test"), sizes[name]):
            chunk = pairs[start : start + size]
            start += size
            write_lines(dirs[name] / f"{split}.en.gz", [en for en, _ in chunk])
            write_lines(dirs[name] / f"{split}.de.gz", [de for _, de in chunk])
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="directory for general/ and new/")
    parser.add_argument("--farm", nargs="+", default=list(FARM), help="the nouns that only the new domain uses")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, path in write_domains(args.out, tuple(args.farm), args.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
