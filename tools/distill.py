"""Sequence-level distillation (Kim and Rush, 2016) under a time budget, from data to test scores.

    python tools/distill.py --data ../shared/data/multi30k --out runs/kd-2h \\
        --teacher-minutes 60 --student-minutes 55 [--recipe recipes/en-de.yaml] [key=value ...]

1. A teacher trains on the references for --teacher-minutes (linear decay to the budget's end).
2. It translates the training sources (beam 5), and a student trains on the references and those
   translations, with the teacher's tokenizer, for --student-minutes.
3. The student's last 5 checkpoints are averaged. The length penalty of the student (averaged and
   best checkpoint) and of two ensembles with the teacher is tuned on val; the best single model
   and the best ensemble on val are each scored once on test_2016_flickr.

Every step runs the project's commands, printed before they run, so a log of this script holds the
exact commands behind each figure. The data directory is in the Multi30k task-1 layout
({train,val,test_2016_flickr}.{en,de}.gz); key=value overrides go to both trainings.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from seq2seq.textfiles import read_lines, write_lines

ALPHAS = ["1.0", "1.2", "1.4", "1.6", "1.8"]
# The budgeted runs of docs/logs/2026-11-22-multi30k-quality.md: the rate decays linearly to the budget's end, every evaluation
# counts (no early stopping), subword sampling; epochs high enough that the clock ends the run.
BUDGETED = ["train.scheduler=linear", "train.patience=0", "tokenizer.sample_alpha=0.3", "train.epochs=100", "train.score_test=false"]


def run(command: list[str]) -> float:
    """Run a command, echoing it; return its wall-clock seconds."""
    print("+", shlex.join(command), flush=True)
    start = time.time()
    subprocess.run(command, check=True)
    seconds = time.time() - start
    print(f"  ({seconds:.0f} s)", flush=True)
    return seconds


def tune(name: str, models: list[Path], data: Path, out: Path, device: str) -> dict:
    """Tune the length penalty on val; return the candidate's name and models with its best alpha and
    that alpha's literature-convention BLEU."""
    result = out / f"tune-{name}.json"
    run(
        [
            sys.executable,
            "tools/tune_length_penalty.py",
            "--model",
            *map(str, models),
            "--src",
            str(data / "val.en.gz"),
            "--ref",
            str(data / "val.de.gz"),
            "--alphas",
            *ALPHAS,
            "--device",
            device,
            "--json",
            str(result),
        ]
    )
    rows = json.loads(result.read_text())
    best = next(r for r in rows["rows"] if r["alpha"] == rows["best_alpha"])
    return {"name": name, "models": models, "alpha": best["alpha"], "lit_bleu": best["lit_bleu"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="a Multi30k task-1 directory")
    parser.add_argument("--out", required=True, type=Path, help="where the runs and the distilled data go")
    parser.add_argument("--teacher-minutes", required=True, type=float)
    parser.add_argument("--student-minutes", required=True, type=float)
    parser.add_argument("--recipe", default="recipes/en-de.yaml")
    parser.add_argument("--device", default="auto", help="for translating and scoring: auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch when translating the training sources")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for both trainings")
    args = parser.parse_args()
    data, out = args.data.resolve(), args.out.resolve()
    teacher, student, kd = out / "teacher", out / "student", out / "kd"
    for split in ("train", "val", "test_2016_flickr"):
        for lang in ("en", "de"):
            if not (data / f"{split}.{lang}.gz").is_file():
                raise SystemExit(f"--data {data}: {split}.{lang}.gz is missing (the Multi30k task-1 layout is expected)")
    kd.mkdir(parents=True, exist_ok=True)
    start = time.time()
    train_teacher(args, data, teacher)
    distill(args, data, teacher, kd)
    train_student(args, kd, teacher, student)
    print(f"trained in {(time.time() - start) / 60:.1f} min (teacher, distillation, student, averaging)", flush=True)
    choose_and_score(args, data, out, teacher, student)
    print(f"done in {(time.time() - start) / 60:.1f} min", flush=True)


def train_teacher(args: argparse.Namespace, data: Path, teacher: Path) -> None:
    run(
        [
            "seq2seq-train",
            args.recipe,
            f"data.dir={data}",
            f"run_dir={teacher}",
            "seed=7",
            f"train.max_minutes={args.teacher_minutes}",
            *BUDGETED,
            *args.overrides,
        ]
    )


def distill(args: argparse.Namespace, data: Path, teacher: Path, kd: Path) -> None:
    """The teacher translates the training sources; the student's corpus is each source twice, once
    with its reference and once with the teacher's translation (val and test linked as they are)."""
    sources = read_lines(data / "train.en.gz")
    write_lines(kd / "train.en", sources)
    run(["seq2seq-translate", "--model", str(teacher / "best"), "--beam-size", "5", "--length-penalty", "1.6", "--batch-size", str(args.batch_size),
         "--precision", "bf16", "--device", args.device, "--input", str(kd / "train.en"), "--output", str(kd / "train.distilled.de"), "--quiet"])  # fmt: skip
    (kd / "data").mkdir(exist_ok=True)
    write_lines(kd / "data" / "train.en.gz", sources + sources)
    write_lines(kd / "data" / "train.de.gz", read_lines(data / "train.de.gz") + read_lines(kd / "train.distilled.de"))
    for split in ("val", "test_2016_flickr"):
        for lang in ("en", "de"):
            link = kd / "data" / f"{split}.{lang}.gz"
            link.unlink(missing_ok=True)
            link.symlink_to(data / f"{split}.{lang}.gz")


def train_student(args: argparse.Namespace, kd: Path, teacher: Path, student: Path) -> None:
    """The student on the distilled corpus with the teacher's tokenizer, then its last five checkpoints averaged."""
    run(["seq2seq-train", args.recipe, f"data.dir={kd / 'data'}", f"tokenizer.reuse={teacher / 'best'}", f"run_dir={student}", "seed=13",
         f"train.max_minutes={args.student_minutes}", *BUDGETED, *args.overrides])  # fmt: skip
    run(["seq2seq-average", "--run-dir", str(student), "--last", "5", "--output", str(student / "averaged")])


def choose_and_score(args: argparse.Namespace, data: Path, out: Path, teacher: Path, student: Path) -> None:
    """The best single model and the best ensemble on val (with their length penalty), each scored once on test."""
    singles = [tune("student-averaged", [student / "averaged"], data, out, args.device), tune("student-best", [student / "best"], data, out, args.device)]
    ensembles = [
        tune("averaged+teacher", [student / "averaged", teacher / "best"], data, out, args.device),
        tune("best+averaged+teacher", [student / "best", student / "averaged", teacher / "best"], data, out, args.device),
    ]
    for chosen in (max(singles, key=lambda c: c["lit_bleu"]), max(ensembles, key=lambda c: c["lit_bleu"])):
        print(f"chosen on val: {chosen['name']}, alpha {chosen['alpha']} (val literature-convention BLEU {chosen['lit_bleu']:.2f})", flush=True)
        run(["seq2seq-evaluate", "--model", *map(str, chosen["models"]), "--src", str(data / "test_2016_flickr.en.gz"),
             "--ref", str(data / "test_2016_flickr.de.gz"), "--beam-size", "5", "--length-penalty", str(chosen["alpha"]), "--device", args.device])  # fmt: skip


if __name__ == "__main__":
    main()
