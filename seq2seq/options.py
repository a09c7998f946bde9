"""Decoding options: one typed value, with every default and check written here once; and the
`Hypothesis` every search returns.

The command line, the Python API, training's validation and test scoring build a
`SearchOptions` and pass it on; the search reads it. This module imports no torch, so that a
server or an exported runtime can build and check options without loading the model's framework.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import torch

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
    keeps <unk> out of outputs. A forced target prefix is per sentence, so it is not an option
    here: it is the `prefixes` argument of `Translator.translate`.
    """

    mode: Mode = "beam"
    beam_size: int = 5
    nbest: int = 1
    length_penalty: float = 1.0
    max_len_ratio: float = 2.0
    max_len_offset: int = 10
    early_stop: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    min_len_ratio: float = 0.0
    no_repeat_ngram: int = 0
    ban_unk: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every invalid field, each named with what is valid."""
        found = []
        if self.mode not in MODES:
            found.append(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        for name, lo in (("beam_size", 1), ("nbest", 1), ("max_len_offset", 0), ("top_k", 0), ("no_repeat_ngram", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < lo:
                found.append(f"{name} must be an integer >= {lo}; got {value!r}")
        for name in ("length_penalty", "max_len_ratio", "min_len_ratio"):
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0:
                found.append(f"{name} must be a number >= 0; got {value!r}")
        if not _is_number(self.temperature) or not self.temperature > 0:
            found.append(f"temperature must be a number > 0; got {self.temperature!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            found.append(f"top_p must be a number > 0 and <= 1 (1: no nucleus cut); got {self.top_p!r}")
        if not _is_int(self.seed):
            found.append(f"seed must be an integer; got {self.seed!r}")
        for name in ("early_stop", "ban_unk"):
            if not isinstance(getattr(self, name), bool):
                found.append(f"{name} must be true or false; got {getattr(self, name)!r}")
        if self.mode == "beam" and _is_int(self.nbest) and _is_int(self.beam_size) and 1 <= self.beam_size < self.nbest:
            found.append(f"nbest ({self.nbest}) cannot exceed beam_size ({self.beam_size}); raise beam_size")
        return found

    @property
    def constrains_steps(self) -> bool:
        """Whether a control beyond the length limit is on: the search does that work only then."""
        return self.min_len_ratio > 0 or self.no_repeat_ngram > 0 or self.ban_unk


def check_batch_size(batch_size: object) -> None:
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Hypothesis:
    """One output of a search (the torch search's and the exported runtime's), ranked by `score`."""

    tokens: list[int]  # target ids, without BOS and EOS
    score: float  # log_prob after the length penalty
    log_prob: float  # summed log-probability of tokens + EOS
    # (T, S_real): a row for each output token, EOS included; only the torch search returns it, when
    # asked. Left out of ==, which tensors would make ambiguous.
    attention: torch.Tensor | None = field(default=None, compare=False)


def in_length_batches(
    sources: Sequence[Any], batch_size: int, prefixes: Sequence[Any] | None, search_batch: Callable[[list[Any], list[Any] | None], list[list[Hypothesis]]]
) -> list[list[Hypothesis]]:
    """Search each source (token ids without EOS) in batches of similar length, longest first;
    results in input order. Both searches, torch's and the exported runtime's, batch this way.

    search_batch(sources, prefixes or None) searches one batch. Sorting by length keeps padding low;
    a sentence's result never depends on its batch. prefixes: None, or one per source.
    """
    check_batch_size(batch_size)
    if prefixes is not None and len(prefixes) != len(sources):
        raise ValueError(f"prefixes has {len(prefixes)} entries for {len(sources)} sources; give one per source (None for no prefix)")
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    results: list[list[Hypothesis]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        found = search_batch([sources[i] for i in chunk], None if prefixes is None else [prefixes[i] for i in chunk])
        for i, hyps in zip(chunk, found):
            results[i] = hyps
    return results
