"""The bidirectional LSTM encoder."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.model.dropout import Dropout


class Encoder(nn.Module):
    """Embeddings → bidirectional LSTM over packed sequences.

    Packing means padded positions never reach the LSTM, so a sentence encodes the same alone
    or inside a padded batch; its padded outputs are zeros.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, num_layers: int, dropout: float, emb_dropout: float, pad_id: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.emb_dropout = Dropout(emb_dropout)
        self.rnn = nn.LSTM(emb_dim, hidden_dim, num_layers, batch_first=True, bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.out_dropout = Dropout(dropout)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """src: (B, S), src_len: (B,) → enc_out (B, S, 2H), final h and c of the last layer (B, 2H) each."""
        emb = self.emb_dropout(self.embed(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.rnn(packed)  # h_n, c_n: (layers * 2, B, H)
        enc_out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        h_final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # forward and backward of the last layer
        c_final = torch.cat([c_n[-2], c_n[-1]], dim=-1)
        return self.out_dropout(enc_out), h_final, c_final
