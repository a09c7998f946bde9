"""Attention weights of one translation as a heatmap: target subwords × source subwords.

    python tools/plot_attention.py --model runs/demo/best [--beam-size 5] [--output attention.png] "A man is sleeping."

Rows are the output subwords and the final </s>; columns are the source subwords and the </s>
that the model appends. Each row sums to 1: where the decoder looked while choosing that token.
Models trained with `attention: none` have no weights to show. Needs matplotlib:
pip install 'seq2seq[plot]'.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MISSING_MATPLOTLIB = "matplotlib is not installed: pip install 'seq2seq[plot]'"


def attend(model_dir: Path, sentence: str, beam_size: int | None = None) -> tuple[list[str], list[str], str, torch.Tensor]:
    """Translate one sentence: (source pieces + </s>, target pieces + </s>, translation, attention (T, S))."""
    import torch

    from seq2seq.inference.translator import Translator
    from seq2seq.options import SearchOptions

    translator = Translator.from_pretrained(model_dir, device="cpu")
    found = translator.attention(sentence, SearchOptions() if beam_size is None else SearchOptions(beam_size=beam_size))
    return found.source, found.target, found.text, torch.tensor(found.weights)


def plot_attention(model_dir: Path, sentence: str, output: Path, beam_size: int | None = None) -> Path:
    """Translate `sentence` with the model in `model_dir` and write its attention heatmap to `output` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    output = Path(output)
    src_labels, tgt_labels, translation, attention = attend(Path(model_dir), sentence, beam_size)
    S, T = len(src_labels), len(tgt_labels)
    # About a third of an inch per subword keeps rotated labels apart; the fixed part holds the
    # labels themselves, the title and the colorbar.
    width, height = 3.5 + 0.36 * S, 3.0 + 0.3 * T
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # Agg, without pyplot's global state: no display needed
    ax = fig.subplots()
    # vmax=1 rather than the matrix maximum, so that figures of different sentences compare.
    image = ax.imshow(attention.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(S), src_labels, rotation=90, fontsize=9)
    ax.set_yticks(range(T), tgt_labels, fontsize=9)
    ax.set(xlabel="source subwords", ylabel="target subwords")
    fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
    columns = max(30, int(width * 11))  # characters that fit across the figure at the title's size
    title = textwrap.fill(sentence, columns) + "\n" + textwrap.fill(f"→ {translation}", columns)
    ax.set_title(title, fontsize=10, loc="left")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="png")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a model directory (e.g. runs/demo/best)")
    parser.add_argument("--beam-size", type=int, default=None, help="default: seq2seq-translate's")
    parser.add_argument("--output", type=Path, default=Path("attention.png"), help="PNG to write (default: attention.png)")
    parser.add_argument("sentence", help="the English sentence to translate")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("matplotlib") is None:
        print(MISSING_MATPLOTLIB, file=sys.stderr)
        return 2
    try:
        written = plot_attention(args.model, args.sentence, args.output, args.beam_size)
    except ValueError as err:  # CheckpointError is one: a bad model directory is the user's to fix
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
