"""The training loss: the generator's matrix product and label-smoothed cross-entropy in one step.

`F.cross_entropy(generator(x).float(), ...)` makes autograd keep and revisit the (N, V) logits
several times: a cast to fp32, log-softmax, its backward, the label-smoothing sum and fills,
and a cast back. At V = 8,000 those passes over memory cost as much as the product itself. Here
the gradient of the logits, softmax − smoothed target, is known in closed form, so the forward
pass writes it once, row chunk by row chunk while the chunk is still in cache, and the backward
pass is just the two matrix products.

The loss needs log-probabilities only at the target and summed over the row, and both follow
from the logits z and their log-sum-exp: log p_t = z_t − lse and Σ_v log p_v = Σ_v z_v − V·lse.
So each chunk takes one softmax (one pass of exp) and reads lse off the target's probability,
lse = z_t − log p_t, instead of a log-softmax and a second exp for the gradient.
"""

from __future__ import annotations

import torch

# Rows per chunk: 128 × 8,000 fp32 logits are 4 MB, which stay in this CPU's cache between passes,
# and the product still runs at full speed (measured forward + backward for 3,400 rows and 5,575
# outputs under bf16: 120 ms at 128 rows, 121 at 64, 124 at 192, 144 at 256).
_CHUNK_ROWS = 128
# Every product runs on whole chunks: x gets zero rows up to a multiple of _CHUNK_ROWS, which no loss
# or gradient reads. A batch's token count differs from batch to batch, and on the CPU oneDNN compiles
# (and caches) a primitive for each shape it meets: with a last chunk of N mod 128 rows and weight
# gradients over N rows, every epoch brought new ones (260 of the 631 compiled in epochs 3 to 7 of the
# en-de recipe), and its cache grew all run (docs/speed.md).
# Below this, p_t has lost too many digits to give lse: those rows take a log-sum-exp of their own.
_TINY = 1e-30


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        N, V = x.size(0), weight.size(0)
        x, w, b = _whole_chunks(x.to(dtype)), weight.to(dtype), bias.float()  # x (N', E), N' ≥ N
        need_grad = any(ctx.needs_input_grad[:3])
        grad_logits = torch.empty(x.size(0), V, dtype=dtype, device=x.device) if need_grad else None  # (N', V)
        grad_bias = torch.zeros(V, device=x.device) if need_grad else None
        loss = torch.zeros((), device=x.device)
        target_step = torch.full((min(N, _CHUNK_ROWS), 1), -(1 - smoothing), dtype=dtype, device=x.device)  # the −(1 − ε)·onehot
        with torch.autocast(device, enabled=False):
            for start in range(0, N, _CHUNK_ROWS):
                rows = slice(start, min(start + _CHUNK_ROWS, N))
                # The bias joins in fp32: addmm would first copy it, broadcast, into every row.
                z = torch.mm(x[start : start + _CHUNK_ROWS], w.t())[: rows.stop - start].float().add_(b)  # (n, V)
                t = target[rows, None]  # (n, 1)
                z_t = z.gather(1, t).squeeze(1)  # (n,)
                p = torch.softmax(z, dim=1)  # (n, V)
                p_t = p.gather(1, t).squeeze(1)
                lse = z_t - p_t.clamp_min(_TINY).log()
                tiny = p_t < _TINY
                if tiny.any():
                    lse[tiny] = torch.logsumexp(z[tiny], dim=1)
                loss -= (1 - smoothing) * (z_t - lse).sum() + smoothing / V * (z.sum() - V * lse.sum())
                if need_grad:
                    # d loss / d logits = softmax − ((1 − ε)·onehot + ε / V), written straight into the buffer.
                    grad_bias += p.sum(0)
                    g = torch.sub(p, smoothing / V, out=grad_logits[rows])
                    g.scatter_add_(1, t, target_step[: t.size(0)])
        if need_grad:
            grad_logits[N:].zero_()  # so that the zero rows add nothing to the weight gradient
            grad_bias -= N * smoothing / V
            grad_bias.index_add_(0, target, torch.full(target.shape, -(1 - smoothing), device=x.device))
        ctx.save_for_backward(x, w, grad_logits, grad_bias)
        ctx.param_dtypes, ctx.rows = (weight.dtype, bias.dtype), N
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        x, w, grad_logits, grad_bias = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.param_dtypes
        grad_x = (grad_logits @ w)[: ctx.rows] * grad_loss.to(x.dtype)  # (N, E)
        grad_w = (grad_logits.t() @ x).to(weight_dtype) * grad_loss  # (V, E)
        return grad_x, grad_w, (grad_bias * grad_loss).to(bias_dtype), None, None


def _whole_chunks(x: torch.Tensor) -> torch.Tensor:
    """x (N, E) → (N', E): zero rows appended up to a multiple of _CHUNK_ROWS."""
    extra = -x.size(0) % _CHUNK_ROWS
    return torch.cat([x, x.new_zeros(extra, x.size(1))]) if extra else x


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of the logits x·Wᵀ + b.

    x (N, E), weight (V, E), bias (V,), target (N,) → a scalar. Equal to
    `F.cross_entropy(F.linear(x, weight, bias).float(), target, label_smoothing=smoothing,
    reduction="sum")`, in the autocast dtype where autocast is on.
    """
    return _LinearCrossEntropy.apply(x, weight, bias, target, smoothing)


def token_loss(model: torch.nn.Module, features: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Summed label-smoothed cross-entropy over the real target tokens.

    features (B, T, E), tgt_out (B, T); only non-pad positions are projected to the vocabulary,
    which skips the largest matrix product for every padded position.
    """
    mask = tgt_out != 0
    weight, bias, to_row = model.decoder.output_layer()
    target = tgt_out[mask]
    return linear_cross_entropy(features[mask], weight, bias, target if to_row is None else to_row[target], label_smoothing)
