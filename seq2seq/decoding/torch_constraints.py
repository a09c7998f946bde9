"""Which tokens may come next: the length limits, the decoding controls and forced prefixes of a search.

`constrain` is the one place where a search step's scores are cut to the allowed tokens; beam
search and sampling both call it (seq2seq/decoding/torch_search.py), and any other runtime that searches must
apply the same rules in the same order, so that the two give the same translations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seq2seq.options import SearchOptions
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEG_INF = float("-inf")

# Target token ids a sentence's output must start with (no BOS, no EOS); None or empty: no prefix.
Prefix = Sequence[int] | np.ndarray | None


@dataclass(frozen=True)
class Limits:
    """What each active sentence's outputs must respect, the per-sentence inputs of `constrain`.

    max_len (B,): the most tokens before EOS; min_len (B,) the fewest, or None when no minimum is
    set; prefix (B, P) forced first tokens, PAD-padded, with prefix_len (B,), or both None.
    """

    max_len: torch.Tensor
    min_len: torch.Tensor | None = None
    prefix: torch.Tensor | None = None
    prefix_len: torch.Tensor | None = None

    def keep(self, rows: torch.Tensor) -> Limits:
        """The limits of the sentences that stay in the batch, rows (B',)."""
        return Limits(*(None if x is None else x[rows] for x in (self.max_len, self.min_len, self.prefix, self.prefix_len)))


def sentence_limits(src_len: torch.Tensor, options: SearchOptions, prefixes: Sequence[Prefix] | None) -> Limits:
    """src_len (B,), EOS included, and each sentence's prefix → its `Limits`.

    The maximum is `ceil(max_len_ratio * S) + max_len_offset` for S source tokens, raised to the
    prefix's length where a prefix is longer (the prefix is always emitted whole); the minimum,
    `ceil(min_len_ratio * S)`, is at most the maximum.
    """
    max_len = torch.ceil(options.max_len_ratio * (src_len.double() - 1)).long() + options.max_len_offset  # (B,)
    prefix = prefix_len = None
    if prefixes is not None and any(p is not None and len(p) > 0 for p in prefixes):
        lengths = [0 if p is None else len(p) for p in prefixes]
        prefix = torch.full((len(prefixes), max(lengths)), PAD_ID, dtype=torch.long)
        for b, p in enumerate(prefixes):
            if lengths[b]:
                prefix[b, : lengths[b]] = torch.as_tensor(np.asarray(p, dtype=np.int64))
        prefix, prefix_len = prefix.to(src_len.device), torch.tensor(lengths, device=src_len.device)
        max_len = torch.maximum(max_len, prefix_len)
    min_len = None
    if options.min_len_ratio > 0:
        min_len = torch.minimum(torch.ceil(options.min_len_ratio * (src_len.double() - 1)).long(), max_len)
    return Limits(max_len, min_len, prefix, prefix_len)


def constrain(x: torch.Tensor, t: int, history: torch.Tensor, limits: Limits, options: SearchOptions) -> torch.Tensor:
    """Which tokens may come next: step t's scores x (B*K, V), logits or log-probabilities, → x
    with -inf for every token that may not. Each hypothesis has t tokens, history (B, K, t).

    The rules, in order, a later one overriding an earlier:
      1. PAD and BOS never come (always);
      2. with options.repetition_penalty P ≠ 1, the score of each token the hypothesis already
         holds is multiplied by 1/P where it is positive and by P where it is negative (CTRL's
         penalty, as CTranslate2 applies it), so P > 1 makes a repeat less likely;
      3. with options.ban_unk, <unk> never comes;
      4. before its sentence's minimum length (t < min_len), a hypothesis may not end;
      5. with options.no_repeat_ngram N, no token that would complete an N-gram the hypothesis
         already holds;
      6. at its sentence's maximum length (t == max_len), a hypothesis may only end (always);
      7. a hypothesis that 3–6 left with no token may end (EOS at its score after rule 2, which
         never touches EOS), so every hypothesis can always finish and a sampled row always has a
         token to draw;
      8. inside its sentence's prefix (t < prefix_len), a hypothesis takes the prefix's token,
         at its own score, whatever 1–7 said.
    Each row depends on its own hypothesis and sentence only, so the output never depends on
    the batch. Rules 2–5, 7 and 8 cost nothing when they are off (without them, 1 and 6 always
    leave EOS). x is written in place where it can be; use the returned tensor. A second runtime
    that searches must apply these same rules in this order.
    """
    V = x.size(-1)
    B, K = history.shape[:2]
    forcing = limits.prefix is not None and t < limits.prefix.size(1)
    if forcing:
        forced = limits.prefix[:, t].repeat_interleave(K).unsqueeze(1)  # (B*K, 1)
        forced_score = x.gather(1, forced)  # (B*K, 1)
    x[:, PAD_ID] = NEG_INF
    x[:, BOS_ID] = NEG_INF
    if options.constrains_steps:
        if options.repetition_penalty != 1 and t > 0:
            x = _penalise_repeats(x, history.reshape(B * K, t), options.repetition_penalty)
        eos = x[:, EOS_ID].clone()  # (B*K,)
        if options.ban_unk:
            x[:, UNK_ID] = NEG_INF
        if limits.min_len is not None:
            too_short = (t < limits.min_len).repeat_interleave(K)  # (B*K,)
            x[:, EOS_ID] = x[:, EOS_ID].masked_fill(too_short, NEG_INF)
        n = options.no_repeat_ngram
        if 0 < n <= t:
            windows = history.unfold(2, n, 1)  # (B, K, t-n+1, n): every n-gram the hypothesis holds
            seen = (windows[..., :-1] == history[:, :, t - n + 1 :].unsqueeze(2)).all(-1)  # (B, K, t-n+1): starts as its last n-1 tokens
            banned = torch.where(seen, windows[..., -1], V)  # (B, K, t-n+1) the token that would repeat one; V: none
            repeat = torch.zeros(B, K, V + 1, dtype=torch.bool, device=x.device).scatter_(2, banned, True)[..., :V]
            x = x.view(B, K, V).masked_fill(repeat, NEG_INF).view(B * K, V)
    at_max = limits.max_len == t  # (B,)
    if at_max.any():
        not_eos = torch.arange(V, device=x.device) != EOS_ID  # (V,)
        x = x.view(B, K, V).masked_fill(at_max[:, None, None] & not_eos, NEG_INF).view(B * K, V)
    if options.constrains_steps:
        stuck = ~torch.isfinite(x).any(-1)  # (B*K,)
        x[:, EOS_ID] = torch.where(stuck, eos, x[:, EOS_ID])
    if forcing:
        inside = (t < limits.prefix_len).repeat_interleave(K).unsqueeze(1)  # (B*K, 1)
        only = torch.full_like(x, NEG_INF).scatter_(1, forced, forced_score)
        x = torch.where(inside, only, x)
    return x


def _penalise_repeats(x: torch.Tensor, held: torch.Tensor, penalty: float) -> torch.Tensor:
    """Rule 2 of `constrain`: x (N, V), held (N, t) the tokens each row holds → x with their scores
    times 1/penalty where positive, times penalty where negative. Both factors multiply (no division),
    as the numpy twin does, so the two round alike."""
    scores = x.gather(1, held)  # (N, t); a token held twice is gathered twice and scattered once, with the same value
    return x.scatter(1, held, torch.where(scores < 0, scores * penalty, scores * (1 / penalty)))
