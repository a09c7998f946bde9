"""The training loss: the generator's matrix product and label-smoothed cross-entropy in one step.

`F.cross_entropy(generator(x).float(), ...)` makes autograd keep and revisit the (N, V) logits
several times: a cast to fp32, log-softmax, its backward, the label-smoothing sum and fills,
and a cast back. At V = 8,000 those passes over memory cost as much as the product itself. Here
the gradient of the logits, softmax − smoothed target, is known in closed form, so the forward
pass writes it once, row chunk by row chunk while the chunk is still in cache, and the backward
pass is just the two matrix products.
"""

from __future__ import annotations

import torch

# Rows per chunk: 128 × 8,000 fp32 logits are 4 MB, which stay in this CPU's cache between passes,
# and the product still runs at full speed (measured forward + backward for 3,400 rows under bf16:
# 183 ms at 128 rows, 195 at 64, 203 at 256, 237 at 32).
_CHUNK_ROWS = 128


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        x, w, b = x.to(dtype), weight.to(dtype), bias.to(dtype)
        N, V = x.size(0), w.size(0)
        need_grad = any(ctx.needs_input_grad[:3])
        grad_logits = torch.empty(N, V, dtype=dtype, device=x.device) if need_grad else None
        grad_bias = torch.zeros(V, device=x.device) if need_grad else None
        loss = torch.zeros((), device=x.device)
        with torch.autocast(device, enabled=False):
            for start in range(0, N, _CHUNK_ROWS):
                rows = slice(start, start + _CHUNK_ROWS)
                logp = torch.log_softmax(torch.addmm(b, x[rows], w.t()).float(), dim=1)  # (n, V)
                t = target[rows, None]  # (n, 1)
                picked = logp.gather(1, t)
                loss -= (1 - smoothing) * picked.sum() + smoothing / V * logp.sum()
                if need_grad:
                    # d loss / d logits = softmax − ((1 − ε)·onehot + ε / V), computed in place.
                    g = logp.exp_().sub_(smoothing / V)
                    g.scatter_add_(1, t, torch.full_like(picked, -(1 - smoothing)))
                    grad_bias += g.sum(0)
                    grad_logits[rows] = g
        ctx.save_for_backward(x, w, grad_logits, grad_bias)
        ctx.param_dtypes = (weight.dtype, bias.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        x, w, grad_logits, grad_bias = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.param_dtypes
        grad_x = (grad_logits @ w) * grad_loss.to(x.dtype)  # (N, E)
        grad_w = (grad_logits.t() @ x).to(weight_dtype) * grad_loss  # (V, E)
        return grad_x, grad_w, (grad_bias * grad_loss).to(bias_dtype), None, None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of the logits x·Wᵀ + b.

    x (N, E), weight (V, E), bias (V,), target (N,) → a scalar. Equal to
    `F.cross_entropy(F.linear(x, weight, bias).float(), target, label_smoothing=smoothing,
    reduction="sum")`, in the autocast dtype where autocast is on.
    """
    return _LinearCrossEntropy.apply(x, weight, bias, target, smoothing)
