"""The encoder–decoder model and `build_model`, the one place where the recipe meets modules."""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.config import Cell, ModelConfig
from seq2seq.decoding.protocol import Step
from seq2seq.model.decoder import Decoder, DecoderState, Memory, reorder_state, select_memory
from seq2seq.model.encoder import Encoder
from seq2seq.tokenizer import PAD_ID, UNK_ID


class Seq2Seq(nn.Module):
    """Bidirectional encoder → context vector bridged to the decoder's initial state → decoder;
    LSTMs or GRUs (`cell`) throughout."""

    def __init__(self, encoder: Encoder, decoder: Decoder, *, cell: Cell, enc_hidden: int, dec_hidden: int, dec_layers: int, word_dropout: float):
        super().__init__()
        assert encoder.cell == decoder.cell == cell, "encoder and decoder share one cell"
        self.cell = cell
        self.encoder = encoder
        self.decoder = decoder
        self.dec_layers = dec_layers
        self.dec_hidden = dec_hidden
        self.word_dropout = word_dropout
        # The bridge turns the context vector (final forward + backward states) into the
        # decoder's initial state, one slice per decoder layer; a GRU has no cell state to bridge.
        self.bridge_h = nn.Linear(2 * enc_hidden, dec_layers * dec_hidden)
        self.bridge_c = nn.Linear(2 * enc_hidden, dec_layers * dec_hidden) if cell == "lstm" else None

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> Memory:
        """src (B, S), src_len (B,) → Memory; attention keys are projected here, once."""
        enc_out, h_final, c_final = self.encoder(src, src_len)
        mask = src != PAD_ID
        # c_final rides along as part of the context so init_state needs nothing else.
        context = h_final if c_final is None else torch.cat([h_final, c_final], dim=-1)  # (B, 4H), a GRU's (B, 2H)
        return Memory(enc_out, self.decoder.project_keys(enc_out), mask, context)

    def init_state(self, memory: Memory) -> DecoderState:
        """The decoder's initial state from the context vector: h, c (L, B, D); c is None for a GRU."""
        h_final, c_final = memory.context.chunk(2, dim=-1) if self.bridge_c is not None else (memory.context, None)
        B = h_final.size(0)
        h = torch.tanh(self.bridge_h(h_final)).view(B, self.dec_layers, self.dec_hidden).transpose(0, 1).contiguous()
        c = None if self.bridge_c is None else self.bridge_c(c_final).view(B, self.dec_layers, self.dec_hidden).transpose(0, 1).contiguous()
        feed = h.new_zeros(B, self.dec_hidden) if self.decoder.input_feeding else None
        return DecoderState(h, c, feed)

    def start(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Memory, DecoderState]:
        """src (B, S), src_len (B,) → the memory and the decoder's initial state (seq2seq.decoding.protocol.Searchable)."""
        memory = self.encode(src, src_len)
        return memory, self.init_state(memory)

    def step(self, y_prev: torch.Tensor, state: DecoderState, memory: Memory) -> Step[torch.Tensor, DecoderState]:
        """One decoding step: y_prev (B,) → logits (B, V), the next state, attention weights (B, S) or None."""
        logits, state, weights = self.decoder.step(y_prev, state, memory)
        return Step(logits, state, weights=weights)

    @property
    def has_attention(self) -> bool:
        return self.decoder.attention is not None

    # The search reorders through the model, so an Ensemble can stand in for a Seq2Seq.
    reorder_state = staticmethod(reorder_state)
    select_memory = staticmethod(select_memory)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor, teacher_forcing: float = 1.0) -> torch.Tensor:
        """Teacher-forced pass: src (B, S), src_len (B,), tgt_in (B, T) → features (B, T, E).

        Features rather than logits: the loss projects only the non-pad positions to the vocabulary.
        """
        if self.training and self.word_dropout > 0:
            src = _drop_words(src, self.word_dropout)
            tgt_in = _drop_words(tgt_in, self.word_dropout)
        memory = self.encode(src, src_len)
        features, _ = self.decoder(tgt_in, self.init_state(memory), memory, teacher_forcing)
        return features


def _drop_words(ids: torch.Tensor, p: float) -> torch.Tensor:
    """Replace a random fraction p of the real tokens by UNK (word dropout)."""
    drop = (torch.rand(ids.shape, device=ids.device) < p) & (ids != PAD_ID)
    return ids.masked_fill(drop, UNK_ID)


def build_model(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, shared_vocab: bool) -> Seq2Seq:
    """Turn the recipe's model section into modules; the only reader of ModelConfig."""
    context_dim = 2 * cfg.enc_hidden
    encoder = Encoder(
        cell=cfg.cell,
        vocab_size=src_vocab_size,
        emb_dim=cfg.emb_dim,
        hidden_dim=cfg.enc_hidden,
        num_layers=cfg.enc_layers,
        dropout=cfg.dropout,
        emb_dropout=cfg.emb_dropout,
        pad_id=PAD_ID,
    )
    decoder = Decoder(
        cell=cfg.cell,
        vocab_size=tgt_vocab_size,
        emb_dim=cfg.emb_dim,
        hidden_dim=cfg.dec_hidden,
        num_layers=cfg.dec_layers,
        # Without attention the decoder reads the context vector (h and, for an LSTM, c of both directions).
        context_dim=context_dim if cfg.attention != "none" or cfg.cell == "gru" else 2 * context_dim,
        attention=cfg.attention,
        attention_dim=cfg.attention_dim,
        input_feeding=cfg.input_feeding,
        dropout=cfg.dropout,
        emb_dropout=cfg.emb_dropout,
        pad_id=PAD_ID,
        restrict_output=cfg.output_vocab == "target",
    )
    model = Seq2Seq(
        encoder, decoder, cell=cfg.cell, enc_hidden=cfg.enc_hidden, dec_hidden=cfg.dec_hidden, dec_layers=cfg.dec_layers, word_dropout=cfg.word_dropout
    )
    # Uniform init in ±0.1, the classic choice for LSTM (and GRU) NMT (PyTorch's default LSTM init trains slowly here).
    for p in model.parameters():
        nn.init.uniform_(p, -0.1, 0.1)
    with torch.no_grad():
        model.encoder.embed.weight[PAD_ID].zero_()
        model.decoder.embed.weight[PAD_ID].zero_()
    if cfg.tie_embeddings:
        model.decoder.generator.weight = model.decoder.embed.weight
        if shared_vocab:
            model.encoder.embed.weight = model.decoder.embed.weight
    return model
