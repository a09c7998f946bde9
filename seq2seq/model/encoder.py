"""The bidirectional LSTM or GRU encoder."""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.config import Cell
from seq2seq.model.dropout import Dropout

# A GRU's update gate z over the padding: sigmoid(100) is exactly 1.0 in float32 and bfloat16.
_HOLD = 100.0


def new_rnn(cell: Cell, input_dim: int, hidden_dim: int, num_layers: int, dropout: float, bidirectional: bool) -> nn.LSTM | nn.GRU:
    """The recurrent layers of encoder or decoder: nn.LSTM or nn.GRU, batch first."""
    if cell == "lstm":
        rnn_class: type[nn.LSTM] | type[nn.GRU] = nn.LSTM
    elif cell == "gru":
        rnn_class = nn.GRU
    else:
        raise ValueError(f"cell must be one of {', '.join(get_args(Cell))}; got {cell!r}")
    return rnn_class(input_dim, hidden_dim, num_layers, batch_first=True, bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)


class Encoder(nn.Module):
    """Embeddings → bidirectional LSTM or GRU, where padding never reaches a sentence's states.

    A sentence encodes the same alone or inside a padded batch, and its padded outputs are zeros.
    On the CPU a packed sequence of mixed lengths runs step by step in torch, 1.3–1.7× slower than
    the fused oneDNN kernel over the whole padded batch, so each direction reads its sentences
    left-padded instead, in one fused call. The LSTM's biases ride on an extra input feature that
    is 1 on real tokens and 0 on padding, so over the padding every gate's input is exactly 0 and
    the state stays exactly (0, 0): each sentence starts from the zero state at its first token,
    as if alone, and ends at the last position. The parameters stay those of `nn.LSTM`. On CUDA the
    packed sequence runs in cuDNN's fused kernels, which also want the LSTM's own flat weights.

    A GRU's candidate state adds its hidden bias inside the reset gate, where an input feature
    cannot carry it; instead a second extra feature, 1 on padding and 0 on tokens, drives the
    update gate z to exactly 1 there, and h' = z·h + (1 − z)·n keeps the state exactly 0.
    """

    def __init__(self, *, cell: Cell, vocab_size: int, emb_dim: int, hidden_dim: int, num_layers: int, dropout: float, emb_dropout: float, pad_id: int):
        super().__init__()
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.emb_dropout = Dropout(emb_dropout)
        self.rnn = new_rnn(cell, emb_dim, hidden_dim, num_layers, dropout, bidirectional=True)
        self.out_dropout = Dropout(dropout)
        self.int8 = False  # set by seq2seq.model.precision: a quantized LSTM or GRU runs packed

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """src: (B, S), src_len: (B,) → enc_out (B, S, 2H), final h and c of the last layer (B, 2H)
        each; c is None for a GRU, which has no cell state."""
        emb = self.emb_dropout(self.embed(src))  # (B, S, E)
        if not self.int8 and not emb.is_cuda:
            enc_out, h_final, c_final = self._run_left_padded(emb, src_len)
        else:  # cuDNN runs packed sequences fused; a quantized LSTM has only this path
            enc_out, h_final, c_final = self._run_packed(emb, src_len)
        return self.out_dropout(enc_out), h_final, c_final

    def _run_left_padded(self, emb: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """emb (B, S, E) right-padded, src_len (B,) → outputs (B, S, 2H) right-padded, h and c (B, 2H) (c: None for a GRU)."""
        B, S = emb.shape[:2]
        H = self.rnn.hidden_size
        src_len = src_len.to(emb.device)[:, None]  # (B, 1)
        positions = torch.arange(S, device=emb.device)[None, :]  # (1, S)
        # Sentence b sits at positions shift_b.. of its left-padded row: row p of the left-padded
        # layout is row (p − shift_b) mod S of the right-padded one, which is padding for p < shift_b.
        shift = S - src_len
        to_left = ((positions - shift) % S)[:, :, None]  # (B, S, 1)
        to_right = ((positions + shift) % S)[:, :, None]
        on_token = (positions < src_len).unsqueeze(-1).to(emb.dtype)  # (B, S, 1): 1 on tokens
        x = emb * on_token  # (B, S, I): zeros on padding, whatever the padding embedding holds
        # LSTM: the biases ride on the token feature; GRU: the padding feature holds the state.
        extra = on_token if self.cell == "lstm" else 1.0 - on_token  # (B, S, 1)
        zeros = emb.new_zeros(1, B, H)
        for layer in range(self.rnn.num_layers):
            if layer > 0:
                x = F.dropout(x, self.rnn.dropout, self.training)
            x = torch.cat([x, extra], dim=-1)  # (B, S, I + 1)
            outputs, finals = [], []
            for suffix in ("", "_reverse"):
                w_ih, w_hh, b_ih, b_hh = (getattr(self.rnn, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                # Forward: the sentence shifted right; backward: the row reversed, which reverses the
                # sentence and puts its padding first.
                inp = x.gather(1, to_left.expand(-1, -1, x.size(2))) if not suffix else x.flip(1)
                if self.cell == "lstm":
                    w_ih = torch.cat([w_ih, (b_ih + b_hh).unsqueeze(1)], dim=1)  # (4H, I + 1)
                    out, h, c = torch._VF.lstm(inp, (zeros, zeros), [w_ih, w_hh], False, 1, 0.0, self.training, False, True)
                    finals.append((h[0], c[0]))
                else:
                    hold = torch.zeros(3 * H, 1, dtype=w_ih.dtype, device=w_ih.device)
                    hold[H : 2 * H] = _HOLD  # gates in the order r, z, n
                    w_ih = torch.cat([w_ih, hold], dim=1)  # (3H, I + 1)
                    out, h = torch._VF.gru(inp, zeros, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, self.training, False, True)
                    finals.append((h[0], None))
                outputs.append(out.gather(1, to_right.expand(-1, -1, H)) if not suffix else out.flip(1))  # (B, S, H) right-padded
            x = torch.cat(outputs, dim=-1)  # (B, S, 2H)
        (h_fwd, c_fwd), (h_bwd, c_bwd) = finals
        c_final = None if c_fwd is None else torch.cat([c_fwd, c_bwd], dim=-1)
        return x, torch.cat([h_fwd, h_bwd], dim=-1), c_final

    def _run_packed(self, emb: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, finals = self.rnn(packed)  # LSTM: (h_n, c_n), GRU: h_n; each (layers * 2, B, H)
        enc_out, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.size(1))
        h_n, c_n = finals if self.cell == "lstm" else (finals, None)
        # The forward and backward directions of the last layer.
        return enc_out, torch.cat([h_n[-2], h_n[-1]], dim=-1), None if c_n is None else torch.cat([c_n[-2], c_n[-1]], dim=-1)
