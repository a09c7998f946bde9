"""Several models searched as one: each step averages the models' next-token probabilities."""

from __future__ import annotations

import math

import torch
from torch import nn

from seq2seq.decoding.protocol import Step
from seq2seq.model.decoder import DecoderState, Memory, reorder_state, select_memory
from seq2seq.model.seq2seq import Seq2Seq


class Ensemble(nn.Module):
    """Models sharing one target vocabulary (e.g. from one tokenizer), searched together.

    Offers what the search needs of a model (seq2seq.decoding.protocol.Searchable: start, step,
    reorder_state, select_memory); memories and states are tuples with one entry per model.
    """

    def __init__(self, models: list[Seq2Seq]):
        super().__init__()
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least 2 models; got {len(models)}")
        vocab = {m.decoder.generator.out_features for m in models}
        if len(vocab) > 1:
            raise ValueError(f"the models' target vocabularies differ in size ({sorted(vocab)}); an ensemble needs one tokenizer")
        self.models = nn.ModuleList(models)

    @property
    def has_attention(self) -> bool:
        return all(m.has_attention for m in self.models)

    def start(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[tuple[Memory, ...], tuple[DecoderState, ...]]:
        starts = [m.start(src, src_len) for m in self.models]
        return tuple(memory for memory, _ in starts), tuple(state for _, state in starts)

    def step(self, y_prev: torch.Tensor, state: tuple[DecoderState, ...], memory: tuple[Memory, ...]) -> Step[torch.Tensor, tuple[DecoderState, ...]]:
        """y_prev (B,) → log of the mean probability (B, V), next states, mean attention (B, S) or None.

        The output is already normalised, so the search's log-softmax leaves it as it is.
        """
        steps = [m.step(y_prev, s, mem) for m, s, mem in zip(self.models, state, memory)]
        logp = torch.stack([torch.log_softmax(step.logits.float(), dim=-1) for step in steps])  # (M, B, V)
        mean = torch.logsumexp(logp, dim=0) - math.log(len(steps))
        weights = [step.weights for step in steps]
        attention = torch.stack(weights).mean(0) if all(w is not None for w in weights) else None
        return Step(mean, tuple(step.state for step in steps), weights=attention)

    @staticmethod
    def reorder_state(state: tuple[DecoderState, ...], index: torch.Tensor) -> tuple[DecoderState, ...]:
        return tuple(reorder_state(s, index) for s in state)

    @staticmethod
    def select_memory(memory: tuple[Memory, ...], index: torch.Tensor) -> tuple[Memory, ...]:
        return tuple(select_memory(m, index) for m in memory)
