"""Dropout whose masks are cheap to draw on the CPU.

torch draws a CPU dropout mask with one Mersenne-Twister call per element, which made dropout
7% of a training step on the en-de recipe (profile in tools/profile_training.py). Here every
random 64-bit integer yields four 16-bit draws, so p is exact to 1/65,536. CUDA keeps
`F.dropout`, whose generator is already fast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Module):
    """Drop each element with probability p in training and scale the rest by 1 / (1 − p)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * keep_mask(x.shape, self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A boolean tensor of `shape`, each element False with probability p (to 1/65,536)."""
    n = shape.numel()
    draws = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64).view(torch.int16)[:n]
    return (draws >= round(p * 65536) - 32768).view(shape)
