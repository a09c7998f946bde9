"""The searchable model: what both searches need of a model, as one typed protocol.

`Seq2Seq` and `Ensemble` implement it over torch tensors (seq2seq/model), `ExportedModel` over
numpy arrays (seq2seq/export/runtime.py); seq2seq.decoding.torch_search and
seq2seq.decoding.numpy_search drive it the same way: `start` once per batch, then one `step` per
time step for all B*K hypotheses, with `reorder_state` and `select_memory` following the beams and
dropping finished sentences. The torch search gives each of the B*K rows its own copy of its
sentence's memory (its batched attention product is batch-invariant only so); the exported runtime
keeps one per sentence, which the step graph reads for the sentence's K rows, so its
`select_memory` picks sentences. Imports no torch and no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

Array = TypeVar("Array")  # torch.Tensor or np.ndarray
Memory = TypeVar("Memory")  # what the decoder attends to, per row or per sentence: e.g. enc_out (·, S, 2H), keys, mask (·, S), the context vector
State = TypeVar("State")  # the decoder's recurrent state, per row: e.g. h, c (L, N, D)


@dataclass(frozen=True)
class Step(Generic[Array, State]):
    """One decoder step for N rows.

    logits (N, V): scores over the target vocabulary (−inf for ids the model never outputs), or None
    when the model gave only `top`; state: the next state; log_norm (N, 1): the logits' log-sum-exp
    where the model computes it (the exported step graph; the torch search computes its own);
    weights (N, S): attention weights where the model gives them (torch, with attention); top:
    (values, ids) (N, k) of the k largest logits but PAD's and BOS's, largest first, ties to the
    lower id, where the model was asked for them instead of the logits (the exported runtime's
    `step_top`).
    """

    logits: Array | None
    state: State
    log_norm: Array | None = None
    weights: Array | None = None
    top: tuple[Array, Array] | None = None


class Searchable(Protocol[Array, Memory, State]):
    """What a search needs of a model. Rows are hypotheses: index (N',) picks rows, in any order and
    with repeats, so one call both follows beams and drops finished sentences."""

    def start(self, src: Array, src_len: Array) -> tuple[Memory, State]:
        """src (B, S) ending in EOS and PAD-padded, src_len (B,) → the memory and the decoder's initial state, B rows each."""
        ...

    def step(self, y: Array, state: State, memory: Memory) -> Step[Array, State]:
        """y (N,) the previous tokens (BOS first) → the step's scores and the next state."""
        ...

    def reorder_state(self, state: State, index: Array) -> State: ...

    def select_memory(self, memory: Memory, index: Array) -> Memory: ...
