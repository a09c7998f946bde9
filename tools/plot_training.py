"""Training curves of a run directory as one PNG: loss, validation BLEU, learning rate, speed.

    python tools/plot_training.py runs/demo [--output runs/demo/training.png]

Reads RUN_DIR/metrics.jsonl, which seq2seq-train appends to; it can be plotted while training is
still running. Needs matplotlib: pip install 'seq2seq[plot]'.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

MISSING_MATPLOTLIB = "matplotlib is not installed: pip install 'seq2seq[plot]'"


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """The train and valid records of a metrics.jsonl, each sorted by step.

    A resumed run logs again the steps after its last checkpoint, so a step can appear twice:
    the later line wins, as it comes from the run whose weights were kept.
    """
    if not path.is_file():
        raise ValueError(f"{path} not found: pass a run directory written by seq2seq-train (it holds metrics.jsonl)")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} is empty: training has not logged anything yet; wait for the first log_every steps")
    by_key: dict[tuple[str, int], dict] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # a line the trainer is still writing
                continue
            raise ValueError(f"{path}, line {number} is not JSON: {line[:80]!r}") from None
        if isinstance(record, dict) and record.get("type") in ("train", "valid") and isinstance(record.get("step"), int):
            by_key[(record["type"], record["step"])] = record
    if not by_key:
        raise ValueError(f"{path} holds no train or valid records with a step")
    ordered = sorted(by_key.values(), key=lambda r: r["step"])
    return [r for r in ordered if r["type"] == "train"], [r for r in ordered if r["type"] == "valid"]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records that carry a number under `key`."""
    kept = [r for r in records if isinstance(r.get(key), (int, float))]
    return [r["step"] for r in kept], [r[key] for r in kept]


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


def plot_training(run_dir: Path, output: Path) -> Path:
    """Write a 2×2 figure of the run's metrics to `output` (PNG) and return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run_dir, output = Path(run_dir), Path(output)
    train, valid = read_metrics(run_dir / "metrics.jsonl")
    # A Figure with an explicit Agg canvas, not pyplot: no global state, no display needed.
    fig = Figure(figsize=(12, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    (ax_loss, ax_bleu), (ax_lr, ax_speed) = fig.subplots(2, 2, sharex=True)

    ax_loss.plot(*_series(train, "loss"), label="train", color="tab:blue")
    if valid:
        ax_loss.plot(*_series(valid, "loss"), "o-", label="valid", color="tab:orange")
    ax_loss.set(title="Loss", ylabel="cross-entropy per target token")
    ax_loss.legend()

    steps, bleu = _series(valid, "bleu")
    if bleu:
        best = max(range(len(bleu)), key=bleu.__getitem__)
        ax_bleu.plot(steps, bleu, "o-", color="tab:green", label="valid BLEU")
        ax_bleu.plot(steps[best], bleu[best], "*", markersize=16, color="tab:red", label=f"best {bleu[best]:.2f} (step {steps[best]})")
        ax_bleu.legend(loc="lower right")
    else:
        _no_data(ax_bleu, "no validation records yet")
    ax_bleu.set(title="Validation BLEU", ylabel="BLEU")

    steps, lr = _series(train, "lr")
    positive = [(s, v) for s, v in zip(steps, lr) if v > 0]  # a log axis cannot show 0 (e.g. warmup's first step)
    if positive:
        ax_lr.plot(*zip(*positive), color="tab:purple", label="learning rate")
        ax_lr.set_yscale("log")
        ax_lr.legend()
    else:
        _no_data(ax_lr, "no learning rate logged")
    ax_lr.set(title="Learning rate", xlabel="step", ylabel="learning rate (log)")

    steps, speed = _series(train, "tgt_tokens_per_s")
    if speed:
        ax_speed.plot(steps, speed, color="tab:gray", label="training")
        ax_speed.set_ylim(bottom=0)
        ax_speed.legend()
    else:
        _no_data(ax_speed, "no speed logged")
    ax_speed.set(title="Training speed", xlabel="step", ylabel="target tokens / s")

    for ax in (ax_loss, ax_bleu, ax_lr, ax_speed):
        ax.grid(alpha=0.3)
        ax.tick_params(labelbottom=True)  # sharex hides the top row's step labels otherwise
    fig.suptitle(f"Training run: {run_dir.resolve().name}")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="png")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a run directory written by seq2seq-train")
    parser.add_argument("--output", type=Path, help="PNG to write (default: RUN_DIR/training.png)")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("matplotlib") is None:
        print(MISSING_MATPLOTLIB, file=sys.stderr)
        return 2
    try:
        written = plot_training(args.run_dir, args.output or args.run_dir / "training.png")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
