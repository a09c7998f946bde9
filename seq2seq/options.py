"""Decoding options: one typed value, with every default, check and command-line help written here once.

The command line (seq2seq.cli.common derives its search flags from the fields), the server's
request model (seq2seq.serve.inputs), the Python API, training's validation and test scoring build a
`SearchOptions` and pass it on; both searches read it. This module imports no torch, so that a
server or an exported runtime can build and check options without loading the model's framework.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

Mode = Literal["beam", "sample"]
MODES: tuple[str, ...] = get_args(Mode)
# The precision a model is loaded in for translation (seq2seq.model.precision applies it).
Precision = Literal["fp32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

# Sentences per decoder batch: a throughput setting, not a search option (the output of a
# sentence never depends on the batch it came in).
BATCH_SIZE = 64


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """How to decode: beam search (K hypotheses, n-best, length penalty) or sampling.

    A sentence of S source tokens may emit `ceil(max_len_ratio * S) + max_len_offset` tokens
    before EOS. `length_penalty` is GNMT's alpha (0: rank by raw log-probability). With
    `early_stop` a sentence is done as soon as its best candidate ends and `nbest` have ended;
    without it, when `beam_size` hypotheses have ended. `mode="sample"` draws `nbest`
    independent samples at `temperature`, from the `top_k` most likely tokens when top_k > 0
    and from the nucleus, the fewest most likely tokens whose probability reaches `top_p`, when
    top_p < 1 (top_k first, then top_p), seeded with `seed`; `beam_size` and `early_stop` do not
    apply then.

    Controls, in both modes (all off by default): an output has at least
    `ceil(min_len_ratio * S)` tokens before EOS (at most the maximum length); with
    `no_repeat_ngram` N > 0 no N-gram of target tokens occurs twice in an output; `ban_unk`
    keeps <unk> out of outputs; `repetition_penalty` P ≠ 1 scales the score of every token an output
    already holds, as CTranslate2 and JoeyNMT do (divided by P where positive, multiplied where
    negative; the hypotheses' scores include it). A forced target prefix is per sentence, so it is not an option
    here: it is the `prefixes` argument of `Translator.translate`.
    """

    mode: Mode = field(default="beam", metadata={"choices": MODES, "help": "beam: beam search; sample: draw samples (--sample)"})
    beam_size: int = field(default=5, metadata={"min": 1, "help": "hypotheses kept per sentence (1: greedy search)"})
    nbest: int = field(default=1, metadata={"min": 1, "help": "translations per sentence, best first"})
    length_penalty: float = field(default=1.0, metadata={"min": 0, "help": "GNMT length penalty alpha (0 = none)"})
    max_len_ratio: float = field(default=2.0, metadata={"min": 0, "help": "longest output, relative to the source length"})
    max_len_offset: int = field(default=10, metadata={"min": 0, "help": "tokens an output may have beyond max_len_ratio times the source length"})
    early_stop: bool = field(
        default=True,
        metadata={
            "help": "stop a sentence once its best candidate ends (off: once beam_size hypotheses have ended)",
            "help_off": "search each sentence until beam_size hypotheses have ended, not only until its best candidate ends",
        },
    )
    temperature: float = field(default=1.0, metadata={"above": 0, "help": "sampling temperature", "only": "sample"})
    top_k: int = field(default=0, metadata={"min": 0, "help": "sample from the K most likely tokens (0: all)", "only": "sample"})
    top_p: float = field(
        default=1.0,
        metadata={
            "above": 0,
            "max": 1,
            "bound_note": "1: no nucleus cut",
            "help": "nucleus sampling: draw from the most likely tokens whose probability reaches P (1: all)",
            "only": "sample",
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the samples", "only": "sample"})
    min_len_ratio: float = field(default=0.0, metadata={"min": 0, "help": "shortest output, relative to the source length (0: no minimum)"})
    no_repeat_ngram: int = field(default=0, metadata={"min": 0, "help": "no N-gram of target tokens occurs twice in an output (0: off)"})
    ban_unk: bool = field(default=False, metadata={"help": "never output <unk>"})
    repetition_penalty: float = field(
        default=1.0,
        metadata={
            "above": 0,
            "help": "the score of each token an output already holds is divided by P (multiplied where negative): P > 1 discourages repeats (1: off)",
        },
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every invalid field, each named with what is valid; the bounds are each field's metadata."""
        found = []
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if "choices" in meta:
                if value not in meta["choices"]:
                    found.append(f"{f.name} must be one of {', '.join(meta['choices'])}; got {value!r}")
            elif f.type == "bool":
                if not isinstance(value, bool):
                    found.append(f"{f.name} must be true or false; got {value!r}")
            elif f.type == "int":
                if not _is_int(value) or ("min" in meta and value < meta["min"]):
                    found.append(f"{f.name} must be an integer{_bounds(meta)}; got {value!r}")
            elif not _is_number(value) or not _within(value, meta):
                found.append(f"{f.name} must be a number{_bounds(meta)}; got {value!r}")
        if self.mode == "beam" and _is_int(self.nbest) and _is_int(self.beam_size) and 1 <= self.beam_size < self.nbest:
            found.append(f"nbest ({self.nbest}) cannot exceed beam_size ({self.beam_size}); raise beam_size")
        return found

    @property
    def constrains_steps(self) -> bool:
        """Whether a control beyond the length limit is on: the search does that work only then."""
        return self.min_len_ratio > 0 or self.no_repeat_ngram > 0 or self.ban_unk or self.repetition_penalty != 1


def check_batch_size(batch_size: object) -> None:
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _within(value: float, meta: Mapping[str, Any]) -> bool:
    """Whether value lies in the field's bounds: min (>=), above (>), max (<=); NaN never does."""
    return value >= meta.get("min", -math.inf) and (value > meta["above"] if "above" in meta else True) and value <= meta.get("max", math.inf)


def _bounds(meta: Mapping[str, Any]) -> str:
    """' >= 1', ' > 0 and <= 1 (1: no nucleus cut)': a field's bounds as its error message states them."""
    parts = [f">= {meta['min']}"] if "min" in meta else [f"> {meta['above']}"] if "above" in meta else []
    parts += [f"<= {meta['max']}"] if "max" in meta else []
    return (" " + " and ".join(parts) if parts else "") + (f" ({meta['bound_note']})" if "bound_note" in meta else "")
