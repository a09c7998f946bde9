"""The bidirectional LSTM encoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.model.dropout import Dropout


class Encoder(nn.Module):
    """Embeddings → bidirectional LSTM, where padding never reaches a sentence's states.

    A sentence encodes the same alone or inside a padded batch, and its padded outputs are zeros.
    On the CPU a packed sequence of mixed lengths runs step by step in torch, 1.3–1.7× slower than
    the fused oneDNN kernel over the whole padded batch, so each direction reads its sentences
    left-padded instead, in one fused call. The LSTM's biases ride on an extra input feature that
    is 1 on real tokens and 0 on padding, so over the padding every gate's input is exactly 0 and
    the state stays exactly (0, 0): each sentence starts from the zero state at its first token,
    as if alone, and ends at the last position. The parameters stay those of `nn.LSTM`. On CUDA the
    packed sequence runs in cuDNN's fused kernels, which also want the LSTM's own flat weights.
    """

    def __init__(self, *, vocab_size: int, emb_dim: int, hidden_dim: int, num_layers: int, dropout: float, emb_dropout: float, pad_id: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.emb_dropout = Dropout(emb_dropout)
        self.rnn = nn.LSTM(emb_dim, hidden_dim, num_layers, batch_first=True, bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.out_dropout = Dropout(dropout)
        self.int8 = False  # set by seq2seq.model.precision: a quantized LSTM runs packed

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """src: (B, S), src_len: (B,) → enc_out (B, S, 2H), final h and c of the last layer (B, 2H) each."""
        emb = self.emb_dropout(self.embed(src))  # (B, S, E)
        if not self.int8 and not emb.is_cuda:
            enc_out, h_final, c_final = self._run_left_padded(emb, src_len)
        else:  # cuDNN runs packed sequences fused; a quantized LSTM has only this path
            enc_out, h_final, c_final = self._run_packed(emb, src_len)
        return self.out_dropout(enc_out), h_final, c_final

    def _run_left_padded(self, emb: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """emb (B, S, E) right-padded, src_len (B,) → outputs (B, S, 2H) right-padded, h and c (B, 2H)."""
        B, S = emb.shape[:2]
        H = self.rnn.hidden_size
        src_len = src_len.to(emb.device)[:, None]  # (B, 1)
        positions = torch.arange(S, device=emb.device)[None, :]  # (1, S)
        # Sentence b sits at positions shift_b.. of its left-padded row: row p of the left-padded
        # layout is row (p − shift_b) mod S of the right-padded one, which is padding for p < shift_b.
        shift = S - src_len
        to_left = ((positions - shift) % S)[:, :, None]  # (B, S, 1)
        to_right = ((positions + shift) % S)[:, :, None]
        bias_feature = (positions < src_len).unsqueeze(-1).to(emb.dtype)  # (B, S, 1): 1 on tokens
        x = emb * bias_feature  # (B, S, I): zeros on padding, whatever the padding embedding holds
        zeros = emb.new_zeros(1, B, H)
        for layer in range(self.rnn.num_layers):
            if layer > 0:
                x = F.dropout(x, self.rnn.dropout, self.training)
            x = torch.cat([x, bias_feature], dim=-1)  # (B, S, I + 1)
            outputs, finals = [], []
            for suffix in ("", "_reverse"):
                w_ih, w_hh, b_ih, b_hh = (getattr(self.rnn, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                w_ih = torch.cat([w_ih, (b_ih + b_hh).unsqueeze(1)], dim=1)  # (4H, I + 1)
                # Forward: the sentence shifted right; backward: the row reversed, which reverses the
                # sentence and puts its padding first.
                inp = x.gather(1, to_left.expand(-1, -1, x.size(2))) if not suffix else x.flip(1)
                out, h, c = torch._VF.lstm(inp, (zeros, zeros), [w_ih, w_hh], False, 1, 0.0, self.training, False, True)
                outputs.append(out.gather(1, to_right.expand(-1, -1, H)) if not suffix else out.flip(1))  # (B, S, H) right-padded
                finals.append((h[0], c[0]))
            x = torch.cat(outputs, dim=-1)  # (B, S, 2H)
        (h_fwd, c_fwd), (h_bwd, c_bwd) = finals
        return x, torch.cat([h_fwd, h_bwd], dim=-1), torch.cat([c_fwd, c_bwd], dim=-1)

    def _run_packed(self, emb: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.rnn(packed)  # h_n, c_n: (layers * 2, B, H)
        enc_out, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.size(1))
        # The forward and backward directions of the last layer.
        return enc_out, torch.cat([h_n[-2], h_n[-1]], dim=-1), torch.cat([c_n[-2], c_n[-1]], dim=-1)
