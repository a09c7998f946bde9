"""Pick the beam-search length penalty on a validation set (never on the test set).

    python tools/tune_length_penalty.py --model DIR [DIR ...] --src val.en.gz --ref val.de.gz \\
        [--alphas 0 0.4 0.8 1.0 1.2 1.6 2.0] [--beam-size 5] [--precision fp32] [--device cpu]

Translates the source once per GNMT alpha and prints sacreBLEU BLEU, chrF++ and the literature
convention's BLEU for each, then the alpha with the best literature-convention BLEU (ties: the
smaller alpha). Several model directories are translated as an ensemble.
"""

from __future__ import annotations

import argparse
import json

import torch

from seq2seq.inference.translator import Translator
from seq2seq.options import PRECISIONS, SearchOptions
from seq2seq.scoring import corpus_bleu, corpus_chrf, literature_bleu
from seq2seq.textfiles import read_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, nargs="+")
    parser.add_argument("--src", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.4, 0.8, 1.0, 1.2, 1.6, 2.0])
    parser.add_argument("--beam-size", type=int, default=SearchOptions().beam_size)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA when there is one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    src, ref = read_lines(args.src), read_lines(args.ref)
    if len(src) != len(ref):
        raise SystemExit(f"{args.src} has {len(src)} lines but {args.ref} has {len(ref)}")
    translator = Translator.from_pretrained(args.model, device=args.device, precision=args.precision)
    rows = []
    print(f"{'alpha':>5} {'BLEU':>6} {'chrF2++':>7} {'lit-BLEU':>8}")
    for alpha in args.alphas:
        hyps = translator.translate(src, SearchOptions(beam_size=args.beam_size, length_penalty=alpha))
        row = {"alpha": alpha, "bleu": corpus_bleu(hyps, ref).score, "chrf": corpus_chrf(hyps, ref).score, "lit_bleu": literature_bleu(hyps, ref).score}
        rows.append(row)
        print(f"{alpha:>5} {row['bleu']:>6.2f} {row['chrf']:>7.2f} {row['lit_bleu']:>8.2f}", flush=True)
    best = max(rows, key=lambda r: (r["lit_bleu"], -r["alpha"]))
    print(f"best alpha on this set: {best['alpha']} (literature-convention BLEU {best['lit_bleu']:.2f})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"model": args.model, "beam_size": args.beam_size, "rows": rows, "best_alpha": best["alpha"]}, f, indent=2)


if __name__ == "__main__":
    main()
