"""The LSTM or GRU decoder, with or without attention, and the state it passes along.

The decoder keeps no state of its own between calls: `step(y_prev, state, memory)` returns the
next state, which beam search reorders with `reorder_state` and `select_memory`.

A step's N rows may be R rows for each of the memory's B sentences (N = B·R, a sentence's rows
consecutive), so that a sentence's K hypotheses can read one copy of its memory and attention
scores their K queries in one product. The exported step graph is built so
(seq2seq.export.exporter); the torch search gives each row a copy (R = 1: torch_search._start says why).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.config import Cell
from seq2seq.model.attention import BahdanauAttention, LuongAttention
from seq2seq.model.dropout import Dropout
from seq2seq.model.encoder import new_rnn


class Memory(NamedTuple):
    """What the decoder reads of the source; batch first in every field."""

    enc_out: torch.Tensor  # (B, S, 2H)
    keys: torch.Tensor | None  # (B, S, A) projected once per batch; None without attention
    mask: torch.Tensor  # (B, S) True on real source tokens
    context: torch.Tensor  # (B, 4H) the context vector: final h and c of both directions; (B, 2H), h alone, for a GRU


class DecoderState(NamedTuple):
    h: torch.Tensor  # (L, B, D)
    c: torch.Tensor | None  # (L, B, D) the LSTM's cell state; None for a GRU
    feed: torch.Tensor | None  # (B, D) the previous attentional hidden state, with input feeding


def reorder_state(state: DecoderState, index: torch.Tensor) -> DecoderState:
    """Pick rows of the state: index (B',) into the batch dimension of each field."""
    return DecoderState(
        state.h.index_select(1, index),
        None if state.c is None else state.c.index_select(1, index),
        None if state.feed is None else state.feed.index_select(0, index),
    )


def select_memory(memory: Memory, index: torch.Tensor) -> Memory:
    """Pick rows of the memory, e.g. repeat each sentence K times for beam search."""
    return Memory(
        memory.enc_out.index_select(0, index),
        None if memory.keys is None else memory.keys.index_select(0, index),
        memory.mask.index_select(0, index),
        memory.context.index_select(0, index),
    )


def _per_row(context: torch.Tensor, n: int) -> torch.Tensor:
    """A sentence's context vector for each of its rows: (B, C) → (N, C), N = B·R."""
    return context.unsqueeze(1).expand(-1, n // context.size(0), -1).reshape(n, -1)


class Decoder(nn.Module):
    """Target embeddings → LSTM or GRU → (attention) → attentional hidden state → logits.

    With `attention="none"` the source reaches the decoder only as the context vector: through
    the initial state and, as in Cho et al. (2014), concatenated to every input.
    """

    def __init__(
        self,
        *,
        cell: Cell,
        vocab_size: int,
        emb_dim: int,
        hidden_dim: int,
        num_layers: int,
        context_dim: int,
        attention: Literal["bahdanau", "luong", "none"],
        attention_dim: int,
        input_feeding: bool,
        dropout: float,
        emb_dropout: float,
        pad_id: int,
        restrict_output: bool,
    ):
        super().__init__()
        self.input_feeding = input_feeding and attention != "none"
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.emb_dropout = Dropout(emb_dropout)
        if attention == "bahdanau":
            self.attention: nn.Module | None = BahdanauAttention(hidden_dim, context_dim, attention_dim)
        elif attention == "luong":
            self.attention = LuongAttention(hidden_dim, context_dim)
        elif attention == "none":
            self.attention = None
        else:
            raise ValueError(f"attention must be one of bahdanau, luong, none; got {attention!r}")
        input_dim = emb_dim + (hidden_dim if self.input_feeding else 0) + (context_dim if attention == "none" else 0)
        self.cell = cell
        self.rnn = new_rnn(cell, input_dim, hidden_dim, num_layers, dropout, bidirectional=False)
        self.combine = nn.Linear(hidden_dim + context_dim, hidden_dim, bias=False) if self.attention is not None else None
        self.dropout = Dropout(dropout)
        self.pre_output = nn.Linear(hidden_dim, emb_dim)
        self.generator = nn.Linear(emb_dim, vocab_size)
        # True for the pieces the output layer may produce; training sets it to those the training
        # targets can hold (seq2seq.tokenizer.reachable_target_ids), and it travels with the weights.
        self.output_mask: torch.Tensor | None
        if restrict_output:
            self.register_buffer("output_mask", torch.ones(vocab_size, dtype=torch.bool))
        else:
            self.output_mask = None
        self.int8 = False  # set by seq2seq.model.precision: a quantized generator has no bias to carry the mask

    def project_keys(self, enc_out: torch.Tensor) -> torch.Tensor | None:
        return None if self.attention is None else self.attention.project_keys(enc_out)

    def forward(self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory, teacher_forcing: float = 1.0) -> tuple[torch.Tensor, DecoderState]:
        """Teacher-forced pass: tgt_in (B, T) → features (B, T, E) for `logits`, and the final state.

        Without input feeding the whole target runs through one fused LSTM call and attends for
        all steps in one product; input feeding or scheduled sampling must go step by step.
        """
        if self.input_feeding or teacher_forcing < 1.0:
            return self._forward_stepwise(tgt_in, state, memory, teacher_forcing)
        emb = self.emb_dropout(self.embed(tgt_in))  # (B, T, E)
        if self.attention is None:
            emb = torch.cat([emb, memory.context.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)
        out, state = self._run_rnn(emb, state)  # (B, T, D)
        attentional, _ = self._attend(out, memory)
        return self._features(attentional), state

    def _forward_stepwise(self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory, teacher_forcing: float) -> tuple[torch.Tensor, DecoderState]:
        """Step by step up to the last position that holds a token in any row: columns of padding
        only (a batch padded up to the shape ladder, seq2seq.data.batching) get zero features, since
        no loss reads them, and the steps' shapes do not depend on the length anyway."""
        features = []
        y = tgt_in[:, 0]
        filled = (tgt_in != self.embed.padding_idx).any(0).nonzero()  # (n, 1) columns with a token
        steps = int(filled[-1]) + 1 if len(filled) else 1
        for t in range(steps):
            if t > 0:
                y = tgt_in[:, t]
                if teacher_forcing < 1.0:
                    predicted = self.logits(features[-1]).argmax(-1)
                    use_gold = torch.rand(y.shape, device=y.device) < teacher_forcing
                    y = torch.where(use_gold, y, predicted)
            feat, state, _ = self.step_features(y, state, memory)
            features.append(feat)
        out = torch.stack(features, dim=1)  # (B, steps, E)
        return F.pad(out, (0, 0, 0, tgt_in.size(1) - steps)), state

    def step_features(self, y_prev: torch.Tensor, state: DecoderState, memory: Memory) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """One step: y_prev (N,) → features (N, E), next state, attention weights (N, S) or None.
        The state has N rows, the memory B: R = N / B consecutive rows per sentence (module docstring)."""
        emb = self.emb_dropout(self.embed(y_prev))  # (N, E)
        if self.input_feeding:
            emb = torch.cat([emb, state.feed], dim=-1)
        elif self.attention is None:
            emb = torch.cat([emb, _per_row(memory.context, emb.size(0))], dim=-1)
        out, state = self._run_rnn(emb.unsqueeze(1), state)  # (N, 1, D)
        attentional, weights = self._attend(out, memory)
        attentional = attentional.squeeze(1)  # (N, D)
        if self.input_feeding:
            state = state._replace(feed=attentional)
        return self._features(attentional), state, None if weights is None else weights.squeeze(1)

    def _run_rnn(self, x: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """x (B, T, I) → outputs (B, T, D) and the state after the last step (its feed left to the caller)."""
        if self.cell == "lstm":
            out, (h, c) = self.rnn(x, (state.h, state.c))
            return out, DecoderState(h, c, None)
        out, h = self.rnn(x, state.h)
        return out, DecoderState(h, None, None)

    def step(self, y_prev: torch.Tensor, state: DecoderState, memory: Memory) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """One step: y_prev (B,) → logits (B, V), next state, attention weights (B, S) or None."""
        features, state, weights = self.step_features(y_prev, state, memory)
        return self.logits(features), state, weights

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., E) → logits (..., V); −inf for the pieces outside the output mask."""
        if self.output_mask is None:
            return self.generator(features)
        if not self.int8:
            # −inf enters through the bias: no extra pass over the (N, V) logits.
            bias = self.generator.bias.masked_fill(~self.output_mask, float("-inf"))
            return F.linear(features, self.generator.weight, bias)
        return self.generator(features).masked_fill_(~self.output_mask, float("-inf"))  # a quantized Linear has no bias to mask

    def restrict_output_to(self, ids: list[int]) -> None:
        """Let the output layer produce only these target ids (model.output_vocab=target)."""
        assert self.output_mask is not None, "built with output_vocab=full"
        self.output_mask.zero_()[torch.tensor(ids, device=self.output_mask.device)] = True

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The generator's rows that the loss needs: weight (V', E), bias (V',), and the map from
        target ids to those rows, (V,) (None when every row is used). The map is the mask's running
        count, so its entries outside the mask name a neighbouring row: only ids inside it are looked up.

        No target lies outside the mask, so the softmax runs over those V' rows only, for less
        work (Multi30k's German can use 5,575 of its joint vocabulary's 8,000 pieces).
        """
        weight, bias = self.generator.weight, self.generator.bias
        if self.output_mask is None:
            return weight, bias, None
        rows = self.output_mask.nonzero().squeeze(1)  # (V',)
        return weight[rows], bias[rows], self.output_mask.cumsum(0) - 1

    def _attend(self, out: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor | None]:
        """LSTM outputs (N, T, D) → attentional hidden states (N, T, D), attention weights (N, T, S) or
        None; N = B·R for the memory's B sentences (R is 1 in training)."""
        if self.attention is None:
            return out, None
        N, T, D = out.shape
        query = out.reshape(memory.mask.size(0), -1, D)  # (B, R·T, D): a sentence's rows share its memory
        context, weights = self.attention(query, memory.keys, memory.enc_out, memory.mask)
        attentional = torch.tanh(self.combine(torch.cat([query, context], dim=-1)))
        # reshape_as: an exported step graph takes out's shape as it is, where (N, T, D) was gathered and concatenated anew.
        return attentional.reshape_as(out), weights.reshape(N, T, -1)

    def _features(self, attentional: torch.Tensor) -> torch.Tensor:
        """(..., D) → (..., E): the bottleneck that lets the generator share the embedding matrix."""
        return self.pre_output(self.dropout(attentional))
