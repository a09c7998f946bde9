"""Attention over the encoder states: additive (Bahdanau) and general (Luong).

Both split the work the same way: `project_keys` runs once per source batch, and `forward`
scores any number of decoder steps at once, so training without input feeding attends for all
steps in one batched product and beam search never re-projects the encoder states.
"""

from __future__ import annotations

import torch
from torch import nn


class BahdanauAttention(nn.Module):
    """score(q, k) = vᵀ tanh(W_q q + W_k k)."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int):
        super().__init__()
        self.key_proj = nn.Linear(key_dim, attention_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attention_dim, bias=False)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def project_keys(self, enc_out: torch.Tensor) -> torch.Tensor:
        """enc_out: (B, S, 2H) → keys (B, S, A)."""
        return self.key_proj(enc_out)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, D), keys (B, S, A), values (B, S, 2H), mask (B, S) True on real tokens
        → context (B, T, 2H), weights (B, T, S)."""
        q = self.query_proj(query)  # (B, T, A)
        scores = self.v(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)
        return _attend(scores, values, mask)


class LuongAttention(nn.Module):
    """score(q, k) = qᵀ W k ("general")."""

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False)

    def project_keys(self, enc_out: torch.Tensor) -> torch.Tensor:
        """enc_out: (B, S, 2H) → keys (B, S, D)."""
        return self.key_proj(enc_out)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, D), keys (B, S, D), values (B, S, 2H), mask (B, S) → context (B, T, 2H), weights (B, T, S)."""
        scores = torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)
        return _attend(scores, values, mask)


def _attend(scores: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(values.dtype)  # (B, T, S)
    return torch.bmm(weights, values), weights
