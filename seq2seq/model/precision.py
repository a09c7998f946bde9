"""The precision translation runs in, kept beside the modules it changes.

fp32 is the model as trained; bf16 casts weights (and so activations) to bfloat16, for GPUs
and CPUs with bf16 instructions (whether it is faster depends on the hardware: docs/guides/decoding.md#precision); int8 swaps the LSTM or GRU and linear layers for dynamically
quantized ones (CPU only). Quantized layers lack what two fast paths use, so `with_precision`
marks the encoder and decoder it quantizes (`int8 = True`) and they take their other path: the
encoder's fused left-padded pass needs `nn.LSTM`'s (`nn.GRU`'s) weight tensors, and the decoder's output mask
rides on `nn.Linear`'s bias.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from seq2seq.options import PRECISIONS, Precision

M = TypeVar("M", bound=nn.Module)


def with_precision(model: M, precision: Precision) -> M:
    """The model (a Seq2Seq) in the precision translation runs in; fp32 returns it unchanged."""
    if precision == "fp32":
        return model
    elif precision == "bf16":
        return model.to(torch.bfloat16)
    elif precision == "int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deprecated.*")  # torch's note on quantized tensors; the kernels work
            quantized = quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)
        quantized.encoder.int8 = True
        quantized.decoder.int8 = True
        return quantized
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
