"""Load an exported model directory with onnxruntime: no torch, no yaml, no training code.

An exported directory (written by `seq2seq-export`) holds encoder.onnx, decoder_step.onnx (and
with a shortlist decoder_step_shortlist.onnx, output_layer.npz and shortlist.npz), the
SentencePiece model(s), export.json (an `ExportMeta`: what the graphs expect), the source model's
meta.json and config.json, and a README.md model card. `load_exported` checks it as
seq2seq.modeldir.checkpoint.read_model_dir checks a model directory, with errors that say what to do.

The graphs pass everything in and out: the encoder maps (src, src_len) to the attention memory
(its projected keys among it) and the decoder's initial state; one decoder step maps
(y, state, memory, k) to the logits over the output vocabulary, their log-sum-exp, their k
largest and the next state. State and memory travel as dicts keyed by the
graphs' own input names, so the runtime needs no knowledge of the cell: an LSTM's state is h and c
(and feed, with input feeding), a GRU's is h alone, and export.json says which axis of each is the batch.

With a shortlist (seq2seq-export --shortlist), a second step graph, decoder_step_shortlist.onnx,
takes the output layer as inputs (output_layer.npz: its weight, fp32 or int8 with column scales,
and its bias; before format 5 also `never`, −inf for PAD and BOS): `start` slices the arrays to the batch's columns once
per batch and the memory carries them to every step. The plain step graph keeps its output layer as
constants, which onnxruntime prepacks (as inputs they cost a third of a beam-5 step at batch 1).

A batch's columns are the union of its sentences' shortlists, and each sentence scores its own
shortlist alone: the bias gets one row per sentence, −inf in the columns its shortlist leaves out,
which the step graph adds to the sentence's K rows, as it reads the rest of its memory. A sentence's
log-probabilities are thus normalised over its own shortlist, whatever it is batched with.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seq2seq.decoding.numpy_constraints import NEG_INF
from seq2seq.decoding.protocol import Step
from seq2seq.export import ENCODER_GRAPH, EXPORT_FORMAT_VERSION, EXPORT_META, OLDEST_FORMAT_VERSION, OUTPUT_LAYER, SHORTLIST_STEP_GRAPH, STEP_GRAPH
from seq2seq.export.shortlist import Shortlist
from seq2seq.modeldir.meta import META, CheckpointError, ModelMeta
from seq2seq.tokenizer import BOS_ID, PAD_ID, SPECIAL_IDS, Tokenizer, load_tokenizer, tokenizer_sha256

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("seq2seq")

State = dict[str, np.ndarray]  # the graphs' state inputs by name, e.g. h, c (L, B, D) and feed (B, D)


@dataclass(frozen=True)
class Memory:
    """What every step of one batch reads besides the state."""

    # The step graph's memory inputs by name, one row per sentence: enc_out (B, S, 2H), keys (B, S, A),
    # mask (B, S), context (B, 4H); with a shortlist also output_bias (B, C). A step's N rows are
    # R = N / B consecutive rows per sentence (seq2seq.model.decoder).
    rows: dict[str, np.ndarray]
    # With a shortlist, the output layer's arrays for this batch's columns, column last: e.g.
    # output_weight (E, C); else empty (the plain step graph holds its output layer).
    output: dict[str, np.ndarray]
    ids: np.ndarray  # (C,) int64 the target id of each column, ascending
    never: np.ndarray  # (P,) int64 the columns of PAD and BOS among them, which no step may choose


@dataclass(frozen=True, kw_only=True)
class ExportMeta:
    """export.json: what the graphs expect and how they were made."""

    export_format_version: int
    package_version: str
    opset: int
    exporter: str  # the torch.onnx exporter that wrote the graphs
    quantize: str  # none | int8 (int8 weight products, activations scaled per row: seq2seq.export.quantize)
    # int8: the weights' bits, 7 from format 6 on (exact products on every CPU), 8 before (their products
    # saturate on x86 CPUs without VNNI); None: fp32.
    weight_bits: int | None
    cell: str  # the decoder's recurrent cell, lstm or gru
    state_batch_axes: dict[str, int]  # state input name → its batch axis
    memory_names: tuple[str, ...]  # the step graph's memory inputs, batch axis 0
    special_ids: dict[str, int]
    joint: bool
    tokenizer_files: tuple[str, ...]
    tokenizer_sha256: str
    src_vocab_size: int
    tgt_vocab_size: int
    output_ids: tuple[int, ...] | None  # the output vocabulary, ascending: the id of each column of the step graph's logits (None: every id)
    shortlist: str | None  # the shortlist's file (seq2seq.export.shortlist), or None
    # True: the step graph reads one memory row per sentence for its N = B·R rows (format 4 on);
    # False: one per row, as formats 2 and 3 were written, so the runtime repeats each sentence's.
    memory_per_sentence: bool
    # True: the step graph's top k is over the raw logits, PAD and BOS among them, which the runtime
    # drops (format 5 on); False: the graph added −inf for them first (formats 2 to 4).
    raw_top: bool
    max_len: int  # source tokens per piece: longer sentences are translated in pieces, as the torch path does
    source_weights_sha256: str  # model.safetensors of the model directory that was exported

    def to_json(self) -> str:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return json.dumps(values, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, flat: dict[str, Any], where: Path) -> ExportMeta:
        names = {f.name for f in fields(cls)}
        if flat.get("export_format_version") == 2:
            flat = {"shortlist": None, **flat}  # format 2 had no shortlist
        if flat.get("export_format_version") in (2, 3):
            flat = {"memory_per_sentence": False, **flat}
        if flat.get("export_format_version") in (2, 3, 4):
            flat = {"raw_top": False, **flat}
        if flat.get("export_format_version") in (2, 3, 4, 5):
            flat = {"weight_bits": 8 if flat.get("quantize") == "int8" else None, **flat}
        missing = sorted(names - set(flat))
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(missing)}; it was not written by seq2seq-export (export the model directory again)")
        values = {k: flat[k] for k in names}
        for key in ("memory_names", "tokenizer_files"):
            values[key] = tuple(values[key])
        if values["output_ids"] is not None:
            values["output_ids"] = tuple(values["output_ids"])
        return cls(**values)


# Decoder steps of at most this many rows run in a session with one thread (when the model has more):
# at batch 1 waking onnxruntime's second thread for every step cost more than it gave (beam 5,
# 2 threads: 54.6 sentences/s with one session of 2 threads, 67.9 with 1; batch 64: 147.6 and 111.0).
SMALL_STEP_ROWS = 16


# What one more encoder call costs, in sentence-positions of the batch it saves padding for: one call
# of one thread took 0.21 ms plus 0.0113 ms per sentence and source position (the recipe's model,
# int8 or fp32 alike, whose LSTM is fp32), so a call pays for itself when it saves 19 padded positions.
ENCODER_CALL_POSITIONS = 19


def length_groups(lengths: np.ndarray, call_cost: int) -> list[np.ndarray]:
    """Split sentences of these lengths (B,) into groups of similar length, each one encoder call, for
    the least padded positions plus `call_cost` per call: contiguous runs of the lengths in ascending
    order (the best split is among them), found by dynamic programming. Each group's indices ascend."""
    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order]
    B = ordered.size
    if B <= 1 or int((ordered[-1] - ordered[0]) * (B - 1)) <= call_cost:  # no split can pay
        return [np.arange(B)]
    # best[j]: the least cost of the first j sentences; a group of sentences i..j-1 costs (j - i)·ordered[j - 1] + call_cost.
    best, cut = np.zeros(B + 1), np.zeros(B + 1, dtype=np.int64)
    starts = np.arange(B)
    for j in range(1, B + 1):
        costs = best[:j] + (j - starts[:j]) * ordered[j - 1] + call_cost
        cut[j] = int(costs.argmin())
        best[j] = costs[cut[j]]
    groups, j = [], B
    while j > 0:
        groups.append(np.sort(order[cut[j] : j]))
        j = cut[j]
    return groups[::-1]


@dataclass(frozen=True)
class StepSessions:
    """A step graph's sessions: `large` for any step, `small` (one thread) for steps of at most
    SMALL_STEP_ROWS rows, or None where `large` has one thread already."""

    large: onnxruntime.InferenceSession
    small: onnxruntime.InferenceSession | None

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray], rows: int) -> list[np.ndarray]:
        return (self.small if self.small is not None and rows <= SMALL_STEP_ROWS else self.large).run(outputs, feeds)


@dataclass(frozen=True)
class Shortlisted:
    """What a shortlist needs: the shortlist, the step graph that takes the output layer as inputs,
    and output_layer.npz's arrays, each with one column per output id (last axis)."""

    shortlist: Shortlist
    steps: StepSessions
    output: dict[str, np.ndarray]


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class ExportedModel:
    """The onnxruntime sessions, offering what the search needs (seq2seq.decoding.protocol.Searchable: start,
    step, reorder_state, select_memory) and `step_top`, a step that returns only the k best tokens.

    steps: the step graph's sessions. shortlisted: score only the shortlist's columns for each batch
    (None: every column). one_thread: the same graphs in sessions of one thread each, which
    seq2seq.decoding.numpy_search.decode_sources searches `workers` batches with at once, each batch on
    its own thread (None where the sessions have one thread already, and workers is 1).
    """

    def __init__(
        self,
        encoder: onnxruntime.InferenceSession,
        steps: StepSessions,
        meta: ExportMeta,
        shortlisted: Shortlisted | None = None,
        *,
        one_thread: ExportedModel | None = None,
        workers: int = 1,
    ):
        assert (one_thread is None) == (workers == 1), "batches searched at once need the one-thread sessions"
        self.encoder = encoder
        self.steps = steps
        self.shortlisted = shortlisted
        self.meta = meta
        self.one_thread = one_thread
        self.workers = workers
        self._state_names = tuple(meta.state_batch_axes)
        self._encoder_outputs = [o.name for o in encoder.get_outputs()]
        source = encoder.get_inputs()[0].shape[1]  # src's length axis, e.g. "src_len"
        self._source_axis = {o.name for o in encoder.get_outputs() if len(o.shape) > 1 and o.shape[1] == source}  # enc_out, keys, mask
        self._next_state = [f"next_{name}" for name in self._state_names]
        V = meta.tgt_vocab_size
        self._ids = np.arange(V) if meta.output_ids is None else np.asarray(meta.output_ids, dtype=np.int64)  # (V',) each column's id
        self._column_of = np.full(V, -1, dtype=np.int64)  # (V,) each id's column, −1 outside the output vocabulary
        self._column_of[self._ids] = np.arange(self._ids.size)
        self._never = _never_columns(self._ids)

    def start(self, src: np.ndarray, src_len: np.ndarray, prefixes: Sequence[Sequence[int] | None] = ()) -> tuple[Memory, State]:
        """src (B, S) int64 ending in EOS and PAD-padded, src_len (B,) → memory and initial state.
        prefixes: () or B forced prefixes (target ids, or None), whose ids a sentence's shortlist holds."""
        values = self._encode(src, src_len)
        rows, state = {k: values[k] for k in self.meta.memory_names}, {k: values[k] for k in self._state_names}
        if self.shortlisted is None:
            return Memory(rows, {}, self._ids, self._never), state
        return self._shortlisted_memory(src, rows, prefixes or [None] * src.shape[0]), state

    def _encode(self, src: np.ndarray, src_len: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder's outputs by name for src (B, S), in calls of sentences of similar length where the
        padding would cost more than another call (`length_groups`), put back in order: a sentence's
        outputs are the same alone as in a padded batch, and zero at the padded positions."""
        groups = length_groups(src_len, ENCODER_CALL_POSITIONS)
        if len(groups) == 1:
            return dict(zip(self._encoder_outputs, self.encoder.run(None, {"src": src, "src_len": src_len})))
        B, S = src.shape
        merged: dict[str, np.ndarray] = {}
        for index in groups:
            width = int(src_len[index].max())
            values = self.encoder.run(None, {"src": np.ascontiguousarray(src[index, :width]), "src_len": src_len[index]})
            for name, value in zip(self._encoder_outputs, values):
                axis = self.meta.state_batch_axes.get(name, 0)  # memory arrays: batch first
                if name not in merged:
                    shape = list(value.shape)
                    shape[axis] = B
                    if name in self._source_axis:
                        shape[1] = S
                    merged[name] = np.zeros(shape, dtype=value.dtype)
                if name in self._source_axis:  # (B, S, ...): this group's rows, its own width
                    merged[name][index, :width] = value
                else:
                    merged[name][(slice(None),) * axis + (index,)] = value
        return merged

    def _shortlisted_memory(self, src: np.ndarray, rows: dict[str, np.ndarray], prefixes: Sequence[Sequence[int] | None]) -> Memory:
        """The memory of a batch that scores the union of its sentences' shortlists, each sentence its own."""
        shortlisted = self.shortlisted
        assert shortlisted is not None
        own = shortlisted.shortlist.masks(src, [prefix if prefix is not None else () for prefix in prefixes], self.meta.tgt_vocab_size)  # (B, V)
        ids = np.flatnonzero(own.any(axis=0) & (self._column_of >= 0))  # (C,) ascending: the output vocabulary's ids among them
        columns = self._column_of[ids]
        allowed = own[:, ids]  # (B, C)
        # np.take rather than v[..., columns]: 0.3 ms against 1.3 for an int8 weight of 256 rows and 2,974 columns.
        output = {k: np.take(v, columns, axis=-1) for k, v in shortlisted.output.items() if k != "output_bias"}
        rows = rows | {"output_bias": np.where(allowed, shortlisted.output["output_bias"][:, columns], np.float32(NEG_INF))}  # (B, C)
        return Memory(rows, output, ids, _never_columns(ids))

    def step(self, y: np.ndarray, state: State, memory: Memory) -> Step[np.ndarray, State]:
        """y (N,) int64 → logits (N, V) float32 (−inf outside the batch's columns, as torch's outside the
        output vocabulary), the next state, and the logits' log-sum-exp log_norm (N, 1)."""
        logits, log_norm, *state_values = self._run(["logits", "log_norm"], y, state, memory, 1)
        if logits.shape[1] != self.meta.tgt_vocab_size:
            full = np.full((logits.shape[0], self.meta.tgt_vocab_size), NEG_INF, dtype=np.float32)
            full[:, memory.ids] = logits
            logits = full
        return Step(logits, dict(zip(self._state_names, state_values)), log_norm=log_norm)

    def step_top(self, y: np.ndarray, state: State, memory: Memory, k: int) -> Step[np.ndarray, State]:
        """y (N,) int64 → a `Step` without logits: `top`, the k largest logits of each row but PAD's and BOS's,
        values (N, k) float32 and their ids (N, k), largest first, ties to the lower id; log_norm (N, 1); the next state.

        What `step` and then constrain's first rule and the search's `_topk` would give, without
        bringing the (N, V) logits out of the graph.
        """
        ask = min(k + memory.never.size, memory.ids.size) if self.meta.raw_top else k
        values, columns, log_norm, *state_values = self._run(["top_values", "top_columns", "log_norm"], y, state, memory, ask)
        if self.meta.raw_top and memory.never.size:
            values, columns = _without(values, columns, memory.never, k)
        # The ids ascend with the columns, so ties still go to the lower id.
        return Step(None, dict(zip(self._state_names, state_values)), log_norm=log_norm, top=(values, memory.ids[columns]))

    def _run(self, outputs: list[str], y: np.ndarray, state: State, memory: Memory, k: int) -> list[np.ndarray]:
        # A memory carries output-layer columns only when start() took them from the shortlist.
        steps = self.shortlisted.steps if memory.output and self.shortlisted is not None else self.steps
        rows = memory.rows
        if not self.meta.memory_per_sentence:  # a format 2 or 3 graph: each of the N rows needs its own copy
            rows = {name: np.repeat(v, y.shape[0] // v.shape[0], axis=0) for name, v in rows.items()}
        feeds = {"y": y, **state, **rows, **memory.output, "k": np.array(k, dtype=np.int64)}
        return steps.run(outputs + self._next_state, feeds, y.shape[0])

    def reorder_state(self, state: State, index: np.ndarray) -> State:
        """Pick rows of each state array along its batch axis: index (N',)."""
        return {k: np.take(v, index, axis=self.meta.state_batch_axes[k]) for k, v in state.items()}

    @staticmethod
    def select_memory(memory: Memory, index: np.ndarray) -> Memory:
        """Pick sentences of the memory: index (B',); the output layer's columns stay."""
        return Memory({k: v[index] for k, v in memory.rows.items()}, memory.output, memory.ids, memory.never)


def _never_columns(ids: np.ndarray) -> np.ndarray:
    """The columns of PAD and BOS among the ascending ids (C,): (P,) int64, P <= 2."""
    return np.flatnonzero((ids == PAD_ID) | (ids == BOS_ID))


def _without(values: np.ndarray, columns: np.ndarray, never: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k entries of each row of a top (N, k + P) whose column is not in `never`: the top k with
    PAD and BOS forbidden, in the same order (largest first, ties to the lower column)."""
    banned = columns == never[0]  # (N, k + P); np.isin cost 36 µs a step, more than these P <= 2 comparisons
    for column in never[1:]:
        banned |= columns == column
    if not banned.any():
        return values[:, :k], columns[:, :k]
    keep = np.argsort(banned, axis=1, kind="stable")[:, :k]  # the allowed entries first, in their order
    rows = np.arange(values.shape[0])[:, None]
    return values[rows, keep], columns[rows, keep]


def read_exported_dir(directory: Path) -> tuple[ExportMeta, ModelMeta]:
    """Check an exported directory's files, format and tokenizer; return its export.json and meta.json."""
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a directory; pass the directory that seq2seq-export wrote")
    for name in (EXPORT_META, META, ENCODER_GRAPH, STEP_GRAPH):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} has no {name}; it is not a complete exported model (run seq2seq-export again or copy the whole directory)")
    flat = json.loads((directory / EXPORT_META).read_text(encoding="utf-8"))
    version = flat.get("export_format_version")
    if not isinstance(version, int) or version > EXPORT_FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} has export format version {version!r}; this seq2seq reads versions up to {EXPORT_FORMAT_VERSION}: upgrade the package"
        )
    if version < OLDEST_FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} has export format version {version}, from an older seq2seq; this one reads versions "
            f"{OLDEST_FORMAT_VERSION} to {EXPORT_FORMAT_VERSION}: run seq2seq-export on the model directory again"
        )
    meta = ExportMeta.from_json(flat, directory / EXPORT_META)
    for name in meta.tokenizer_files:
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} has no tokenizer file {name}; copy it from the model directory that was exported")
    for name in (meta.shortlist, SHORTLIST_STEP_GRAPH, OUTPUT_LAYER) if meta.shortlist else ():
        if not (directory / name).is_file():
            raise CheckpointError(
                f"{directory} has no {name}, which its shortlist needs; copy the whole exported directory, or run seq2seq-export --shortlist again"
            )
    sha = tokenizer_sha256(directory, meta.joint)
    if sha != meta.tokenizer_sha256:
        raise CheckpointError(
            f"{directory}: the tokenizer does not match the graphs (SHA-256 {sha[:12]}… but export.json records "
            f"{meta.tokenizer_sha256[:12]}…); use the SentencePiece model exported with them, or export the model directory again"
        )
    if meta.special_ids != SPECIAL_IDS:
        raise CheckpointError(f"{directory}: special ids {meta.special_ids} differ from this package's {SPECIAL_IDS}; export the model again with this package")
    if meta.weight_bits == 8 and int8_products_saturate():
        log.warning(
            "%s has int8 weights of 8 bits (export format %d), whose products onnxruntime saturates on this CPU (x86 without VNNI): "
            "its translations lose accuracy (0.27 BLEU on the recipe's model). Run seq2seq-export --quantize int8 on the model directory again",
            directory,
            version,
        )
    return meta, ModelMeta.from_json(json.loads((directory / META).read_text(encoding="utf-8")), directory / META)


def int8_products_saturate() -> bool:
    """Whether onnxruntime's u8×s8 products can saturate here: an x86 CPU without VNNI, whose kernel adds
    pairs of products in 16 bits (seq2seq.export.quantize). Known from /proc/cpuinfo (Linux); elsewhere False."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return saturating_cpu(platform.machine(), cpuinfo)


def saturating_cpu(machine: str, cpuinfo: str) -> bool:
    """An x86 CPU (`platform.machine()`) whose /proc/cpuinfo flags lack VNNI (AVX-512 VNNI or AVX-VNNI)."""
    if machine.lower() not in ("x86_64", "amd64") or not re.search(r"^flags\s*:", cpuinfo, re.MULTILINE):
        return False
    return not re.search(r"\b(avx512_vnni|avx_vnni)\b", cpuinfo)


def load_exported(directory: str | Path, threads: int = 0, *, shortlist: bool = True) -> tuple[ExportedModel, Tokenizer, ModelMeta, ExportMeta]:
    """Load an exported directory: (model, tokenizer, meta.json, export.json). shortlist: score the
    directory's shortlist of columns (when it has one: seq2seq-export --shortlist); False: the whole vocabulary.

    threads: the CPU threads to use (0: every CPU this process may use). A lone batch runs in sessions
    of that many threads (0: onnxruntime's default, one per physical core); several batches are
    searched that many at once, each on one thread. On 2 cores (docs/logs/2026-12-07-runtime-workers.md)
    two batches at once of one thread each translated 2.0x (beam 5) and 2.2x (greedy) the sentences/s of
    one batch of 64 after another with two threads, and 1.2-1.5x at batch 1."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CheckpointError('an exported model needs onnxruntime: pip install "seq2seq[onnx]" (see README, "Export")') from None

    directory = Path(directory)
    meta, model_meta = read_exported_dir(directory)
    tokenizer = load_tokenizer(directory, meta.joint)
    if (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size) != (meta.src_vocab_size, meta.tgt_vocab_size):
        raise CheckpointError(f"{directory}: the tokenizer's vocabulary sizes differ from the graphs'; use the SentencePiece model exported with them")

    def session(name: str, n_threads: int) -> onnxruntime.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if n_threads:
            options.intra_op_num_threads = n_threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(directory / name), options, providers=["CPUExecutionProvider"])

    def steps(name: str) -> StepSessions:
        return StepSessions(session(name, threads), session(name, 1) if threads != 1 else None)

    workers = threads or usable_cpus()
    try:
        encoder, plain = session(ENCODER_GRAPH, threads), steps(STEP_GRAPH)
        shortlisted = None
        if shortlist and meta.shortlist:
            with np.load(directory / OUTPUT_LAYER) as arrays:
                output = {name: arrays[name] for name in arrays.files}
            shortlisted = Shortlisted(Shortlist.load(directory / meta.shortlist), steps(SHORTLIST_STEP_GRAPH), output)
        one_thread = None
        if workers > 1:  # the step graphs' one-thread sessions serve both small steps and batches searched at once
            alone = shortlisted and Shortlisted(shortlisted.shortlist, StepSessions(_small(shortlisted.steps), None), shortlisted.output)
            one_thread = ExportedModel(session(ENCODER_GRAPH, 1), StepSessions(_small(plain), None), meta, alone)
    except Exception as err:  # onnxruntime raises its own exception types for a damaged or too-new graph
        raise CheckpointError(f"{directory}: onnxruntime cannot load the graphs ({err}); export the model again, or upgrade onnxruntime") from None
    model = ExportedModel(encoder, plain, meta, shortlisted, one_thread=one_thread, workers=workers if one_thread else 1)
    return model, tokenizer, model_meta, meta


def _small(steps: StepSessions) -> onnxruntime.InferenceSession:
    assert steps.small is not None, "sessions of several threads come with a one-thread twin"
    return steps.small
