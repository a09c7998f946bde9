"""`seq2seq-export`: write a model directory's encoder and one decoder step as ONNX graphs.

Exporter: the TorchScript-based `torch.onnx.export(..., dynamo=False)`. It traces the encoder's
fused left-padded pass (seq2seq.model.encoder: `torch._VF.lstm` over gathered and flipped rows,
the bias riding on an input feature; `torch._VF.gru` for a GRU) and the decoder's `nn.LSTM` or
`nn.GRU` into ONNX LSTM or GRU operators, keeps batch and source length as dynamic axes, and
writes one self-contained file per graph. The dynamo exporter (torch.export → onnxscript) is where torch.onnx is heading, but see
docs/guides/export.md (How it is built, and why) for what it did with this model when tried. Either way no packed sequence enters
a graph: on the CPU the encoder never packs (the left-padded pass gives a sentence the same
states alone or in a padded batch), which is also the path the torch search runs.

The graphs pass state and memory in and out, as `Seq2Seq.step` does: the encoder graph returns
the memory (encoder outputs, projected attention keys, source mask; or the context vector without
attention) and the decoder's initial state; the step graph takes the previous token, the state,
the memory and k, and returns the logits, their log-sum-exp, their k largest and the next state.
What the state is comes from `_state_fields`, the one place that knows the cell.

The step graph's logits are the output vocabulary's columns only (export.json's `output_ids`; all
ids for a model without the mask): torch computes the full vocabulary with −inf outside it, which
here would be a third more work in the largest product of the step. With --shortlist a second step
graph takes the output layer as inputs (output_layer.npz: the weight (E, V'), or with int8 its int8
columns and their scales, and the bias), so that the runtime can pass a batch's shortlisted
columns (seq2seq.export.shortlist); the first keeps it as constants, which onnxruntime prepacks. The log-sum-exp and the top k
are in the graph because numpy took a third of a beam search's time computing them (docs/logs/2026-12-01-export-benchmark.md).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seq2seq.atomic import write_text_atomic
from seq2seq.export import ENCODER_GRAPH, EXPORT_FORMAT_VERSION, EXPORT_META, OUTPUT_LAYER, SHORTLIST_STEP_GRAPH, STEP_GRAPH, STEP_OUTPUTS
from seq2seq.export.quantize import WEIGHT_BITS, quantize_rows, quantize_weight
from seq2seq.export.runtime import ExportMeta
from seq2seq.export.shortlist import SHORTLIST_FILE, learn_shortlist
from seq2seq.model import DecoderState, Memory, Seq2Seq
from seq2seq.modeldir.checkpoint import load_model_dir
from seq2seq.modeldir.meta import CARD, CONFIG, META, WEIGHTS, CheckpointError, ModelMeta
from seq2seq.tokenizer import SPECIAL_IDS, Tokenizer, copy_model_files, model_files, tokenizer_sha256

if TYPE_CHECKING:
    from seq2seq.config import Config

Quantize = Literal["none", "int8"]
# (the tokenizer, the model's recipe) → training pairs as ids (source, target), without BOS and EOS:
# what a shortlist learns from (`shortlist_pairs`).
ShortlistPairs = Callable[[Tokenizer, "Config"], tuple[list[np.ndarray], list[np.ndarray]]]
# Pairs a shortlist learns from at most, of a streamed corpus (its first ones).
SHORTLIST_STREAM_PAIRS = 1_000_000
QUANTIZE: tuple[str, ...] = get_args(Quantize)
OPSET = 17
EXPORTER = "torchscript"


def _state_fields(model: Seq2Seq) -> dict[str, int]:
    """The decoder state's fields that the graphs pass, each with its batch axis.

    An LSTM has h and c (L, B, D), a GRU h alone (its c is None); input feeding adds feed (B, D).
    The runtime reads these names from export.json, so it needs no knowledge of the cell.
    """
    cell = model.decoder.cell
    if cell == "lstm":
        fields = {"h": 1, "c": 1}
    elif cell == "gru":
        fields = {"h": 1}
    else:
        raise CheckpointError(f"seq2seq-export knows the cells lstm, gru; this model has {cell!r} (add its state fields to _state_fields)")
    if model.decoder.input_feeding:
        fields["feed"] = 0
    return fields


def _state_tuple(state: DecoderState, names: dict[str, int]) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(state, name) for name in names)


def _memory_fields(model: Seq2Seq) -> tuple[str, ...]:
    """The memory fields the decoder step reads: with attention the encoder outputs, keys and mask;
    without, the context vector only."""
    return ("enc_out", "keys", "mask") if model.has_attention else ("context",)


class _EncoderGraph(nn.Module):
    """src (B, S), src_len (B,) → the memory fields, then the initial state fields."""

    def __init__(self, model: Seq2Seq, memory_names: tuple[str, ...], state_names: dict[str, int]):
        super().__init__()
        self.model, self.memory_names, self.state_names = model, memory_names, state_names

    def forward(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
        memory = self.model.encode(src, src_len)
        state = self.model.init_state(memory)
        return tuple(getattr(memory, name) for name in self.memory_names) + _state_tuple(state, self.state_names)


def _output_ids(model: Seq2Seq) -> torch.Tensor | None:
    """The ids the model may output, ascending (V',); None: every id."""
    mask = model.decoder.output_mask
    return None if mask is None else mask.nonzero().squeeze(1)


class _StepGraph(nn.Module):
    """y (N,), the state fields (N rows), the memory fields (B rows, one per sentence: N = B·R, a
    sentence's R rows consecutive), k () → logits (N, V') over the output vocabulary's ids, log_norm
    (N, 1), top_values and top_columns (N, k), the next state fields.

    layer_as_inputs: the output layer comes after k as inputs rather than as constants:
    output_weight (E, C) and output_bias (B, C), for C columns the runtime picks (a
    shortlist's; a sentence's bias row is −inf where its own shortlist leaves a column out); the
    logits are then (N, C).

    top_*: the k largest logits of each row, largest first, ties to the lower column (onnxruntime's
    TopK, as the runtime's `_topk`); the runtime asks for k plus the columns of PAD and BOS among them
    and drops those (the rule of `constrain` that every step applies), and the search uses the rest on
    the steps where no other rule applies. The largest is also the maximum the log-sum-exp subtracts:
    one pass over the logits fewer than adding −inf for PAD and BOS and taking ReduceMax (format 5).
    """

    def __init__(self, model: Seq2Seq, memory_names: tuple[str, ...], state_names: dict[str, int], output_ids: torch.Tensor | None, *, layer_as_inputs: bool):
        super().__init__()
        self.model, self.memory_names, self.state_names, self.layer_as_inputs = model, memory_names, state_names, layer_as_inputs
        if not layer_as_inputs:
            weight, bias = _output_layer(model, output_ids)
            # Buffers become the graph's initializers, which int8 quantization finds (it leaves constants alone).
            self.register_buffer("output_weight", weight)
            self.register_buffer("output_bias", bias)

    def forward(self, y: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, m = len(self.state_names), len(self.memory_names)
        given = dict(zip(self.state_names, inputs[:n])) | dict(zip(self.memory_names, inputs[n : n + m]))
        state = DecoderState(given["h"], given.get("c"), given.get("feed"))
        memory = Memory(given.get("enc_out"), given.get("keys"), given.get("mask"), given.get("context"))
        features, state, _ = self.model.decoder.step_features(y, state, memory)  # (N, E)
        k = inputs[n + m]
        if self.layer_as_inputs:
            weight, bias = inputs[n + m + 1 :]
            logits = features @ weight  # (N, C)
            logits = (logits.reshape(bias.size(0), -1, logits.size(1)) + bias.unsqueeze(1)).reshape(logits.shape)  # each sentence's bias row
        else:
            logits = F.linear(features, self.output_weight, self.output_bias)  # (N, V')
        top_values, top_columns = torch.topk(logits, k, dim=-1)  # (N, k) each; k >= 1
        # Written out: torch.logsumexp becomes ReduceLogSumExp, which took 4 ms a step at 320 rows (this
        # form under 1). Each row has a finite column (a shortlist holds EOS), so its maximum is finite.
        top = top_values[:, :1]  # (N, 1) the row's maximum
        log_norm = top + (logits - top).exp().sum(dim=-1, keepdim=True).log()  # (N, 1)
        return (logits, log_norm, top_values, top_columns, *_state_tuple(state, self.state_names))


def _output_layer(model: Seq2Seq, output_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The output vocabulary's weight (V', E) and bias (V',)."""
    weight, bias, _ = model.decoder.output_layer()  # the rows of output_ids
    return weight.detach().clone(), bias.detach().clone()


def _output_arrays(model: Seq2Seq, output_ids: torch.Tensor | None, quantize: Quantize) -> dict[str, np.ndarray]:
    """output_layer.npz's arrays, one column per output id: the weight (E, V') (int8 and its column
    scales with quantize int8) and the bias (1, V')."""
    weight, bias = _output_layer(model, output_ids)
    w = np.ascontiguousarray(weight.float().numpy().T)  # (E, V')
    arrays = {"output_bias": bias.float().numpy()[None, :]}
    if quantize == "int8":
        arrays["output_weight_q"], arrays["output_weight_scale"] = quantize_weight(w)
    else:
        arrays["output_weight"] = w
    return arrays


def export_model_dir(model_dir: Path, out_dir: Path, *, quantize: Quantize = "none", shortlist_pairs: ShortlistPairs | None = None) -> ExportMeta:
    """Write the exported directory for one model directory; returns its export.json.

    shortlist_pairs: learn a vocabulary shortlist from these training pairs (seq2seq.export.shortlist);
    None: none. In phases: check and load → the encoder graph → the step graph and its output layer →
    quantize → the shortlist → copy the tokenizer and metadata, write the card, and export.json last.
    """
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if out_dir.resolve() == model_dir.resolve() or (out_dir / WEIGHTS).exists():
        raise CheckpointError(f"{out_dir} holds a model directory; export into a new directory (e.g. {model_dir.name}-onnx)")
    model, config, tokenizer, model_meta = load_model_dir(model_dir, "cpu")
    model = model.float().eval()
    memory_names, state_names = _memory_fields(model), _state_fields(model)
    out_dir.mkdir(parents=True, exist_ok=True)

    enc_axes, memory, state = _export_encoder(model, tokenizer.src_vocab_size, memory_names, state_names, out_dir)
    output_ids = _output_ids(model)  # the step graph's logits columns, and export.json's output_ids
    if quantize == "int8":
        # Products the row-wise rewrite can quantize, the embedding's product folded into a table of rows.
        model.decoder.embed = FoldedEmbedding(model.decoder.embed, model.decoder.rnn.weight_ih_l0)
        model.decoder.rnn = ExplicitCell(model.decoder.rnn, folded=model.decoder.embed.width)
    _export_step(model, output_ids, memory_names, state_names, enc_axes, memory, state, out_dir / STEP_GRAPH, layer_as_inputs=False)
    if shortlist_pairs is not None:
        _export_step(model, output_ids, memory_names, state_names, enc_axes, memory, state, out_dir / SHORTLIST_STEP_GRAPH, layer_as_inputs=True)
        np.savez(out_dir / OUTPUT_LAYER, **_output_arrays(model, output_ids, quantize))
        learn_shortlist(*shortlist_pairs(tokenizer, config), src_vocab_size=tokenizer.src_vocab_size, tgt_vocab_size=tokenizer.tgt_vocab_size).save(
            out_dir / SHORTLIST_FILE
        )
    if quantize == "int8":
        quantize_rows(out_dir / ENCODER_GRAPH, lstm_bias_feature=model.encoder.cell == "lstm")
        quantize_rows(out_dir / STEP_GRAPH, row_tables=(FOLDED_TABLE,))
        if shortlist_pairs is not None:
            quantize_rows(out_dir / SHORTLIST_STEP_GRAPH, weight_inputs=("output_weight",), row_tables=(FOLDED_TABLE,))
    copy_model_files(model_dir, out_dir, config.tokenizer.joint)
    for name in (META, CONFIG):
        write_text_atomic(out_dir / name, (model_dir / name).read_text(encoding="utf-8"))
    meta = _export_meta(model, config, tokenizer, model_meta, quantize, memory_names, state_names, output_ids, out_dir, shortlist_pairs is not None)
    original = (model_dir / CARD).read_text(encoding="utf-8") if (model_dir / CARD).is_file() else ""
    write_text_atomic(out_dir / CARD, original.rstrip("\n") + "\n\n" + _card_section(out_dir, meta))
    # export.json last: a directory without it is not taken for an exported model.
    write_text_atomic(out_dir / EXPORT_META, meta.to_json())
    return meta


def _export_encoder(
    model: Seq2Seq, src_vocab_size: int, memory_names: tuple[str, ...], state_names: dict[str, int], out_dir: Path
) -> tuple[dict, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Write encoder.onnx; return its dynamic axes and its outputs on the example inputs (memory, state),
    the step graph's example inputs."""
    # Example inputs of two sentences of different lengths, so no size is mistaken for a constant.
    src = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]], dtype=torch.long).clamp(max=src_vocab_size - 1)
    src_len = torch.tensor([4, 2])
    encoder = _EncoderGraph(model, memory_names, state_names)
    with torch.inference_mode():
        enc_outputs = encoder(src, src_len)
    enc_axes = {"src": {0: "batch", 1: "src_len"}, "src_len": {0: "batch"}}
    for name in (*memory_names, *state_names):
        enc_axes[name] = {0: "batch", 1: "src_len"} if name in ("enc_out", "keys", "mask") else {state_names.get(name, 0): "batch"}
    _export(encoder, (src, src_len), out_dir / ENCODER_GRAPH, ["src", "src_len"], [*memory_names, *state_names], enc_axes)
    return enc_axes, enc_outputs[: len(memory_names)], enc_outputs[len(memory_names) :]


# The name of the int8 step graph's table of folded embedding rows (FoldedEmbedding), which the
# row-wise rewrite stores as int8 rows (seq2seq.export.quantize).
FOLDED_TABLE = "folded_embedding_table"


class FoldedEmbedding(nn.Module):
    """The decoder's embedding folded into its first layer's input product, for the int8 step graph:
    y (N,) → table rows (N, G), table = embedding (V, E) @ W_ih[:, :E]^T, G the gates' width (4D for an
    LSTM, 3D for a GRU). The step then looks up what that product would give instead of computing it:
    on a 2-core AMD EPYC with AVX2 alone it was 2.0 of 25.8 ms of a beam step at 320 rows."""

    def __init__(self, embed: nn.Embedding, w_ih: torch.Tensor):
        super().__init__()
        self.width = embed.embedding_dim  # E: the columns of W_ih the table replaces
        with torch.no_grad():
            table = embed(torch.arange(embed.num_embeddings)) @ w_ih[:, : self.width].T  # (V, G)
        self.register_buffer(FOLDED_TABLE, table.contiguous())

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.embedding(y, getattr(self, FOLDED_TABLE))


class ExplicitCell(nn.Module):
    """A decoder's nn.LSTM or nn.GRU for one time step, written as products and gates, as torch
    computes them (gate order i, f, g, o; r, z, n): the int8 export quantizes these products one row
    at a time (seq2seq.export.quantize), which onnxruntime's quantized LSTM cannot. x (B, 1, I), the
    state (L, B, D) → outputs (B, 1, D) and the next state, with nn.LSTM's and nn.GRU's signatures.

    folded: E > 0 when the first layer's input begins with a FoldedEmbedding's rows (G) in place of the
    embedding (E): x is then (B, 1, G + I − E), and those rows are the embedding's part of the input product."""

    def __init__(self, rnn: nn.LSTM | nn.GRU, *, folded: int = 0):
        super().__init__()
        self.rnn, self.lstm, self.folded = rnn, isinstance(rnn, nn.LSTM), folded

    def forward(self, x: torch.Tensor, hx):
        h_all, c_all = hx if self.lstm else (hx, None)
        inp, hs, cs = x[:, 0], [], []
        for layer in range(self.rnn.num_layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
            b_ih, b_hh = getattr(self.rnn, f"bias_ih_l{layer}"), getattr(self.rnn, f"bias_hh_l{layer}")
            gi, gh, h = self._input_product(inp, w_ih, b_ih, layer), F.linear(h_all[layer], w_hh, b_hh), h_all[layer]
            if self.lstm:
                i, f, g, o = _gates(gi + gh, 4)
                c = torch.sigmoid(f) * c_all[layer] + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                cs.append(c)
            else:
                r_i, z_i, n_i = _gates(gi, 3)
                r_h, z_h, n_h = _gates(gh, 3)
                r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
                h = (1 - z) * torch.tanh(n_i + r * n_h) + z * h
            hs.append(h)
            inp = h
        h_next = torch.stack(hs)
        return inp.unsqueeze(1), ((h_next, torch.stack(cs)) if self.lstm else h_next)

    def _input_product(self, inp: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor, layer: int) -> torch.Tensor:
        if layer or not self.folded:
            return F.linear(inp, w_ih, b_ih)
        G = w_ih.size(0)
        gi = inp[:, :G] + b_ih  # the folded embedding's rows
        if inp.size(1) > G:  # what follows the embedding (an input feed, a context vector) is multiplied as usual
            gi = gi + F.linear(inp[:, G:], w_ih[:, self.folded :])
        return gi


def _gates(x: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    """x (B, n·D) → its n gates (B, D) each, as x.chunk(n, dim=-1), sliced at constant columns: chunk
    exports as slices computed from x's shape at every step (seven more nodes in the step graph)."""
    D = int(x.size(-1)) // n  # int(): a constant in the traced graph, not a product of Shape and Gather
    return tuple(x[:, j * D : (j + 1) * D] for j in range(n))


def _export_step(
    model: Seq2Seq,
    output_ids: torch.Tensor | None,
    memory_names: tuple[str, ...],
    state_names: dict[str, int],
    enc_axes: dict,
    memory: tuple[torch.Tensor, ...],
    state: tuple[torch.Tensor, ...],
    path: Path,
    *,
    layer_as_inputs: bool,
) -> None:
    """Write a step graph, its memory inputs batched as the encoder's outputs are, with its output
    layer as constants (decoder_step.onnx) or, `layer_as_inputs`, as inputs with a dynamic number of
    columns (decoder_step_shortlist.onnx; fp32 inputs, which int8 rewrites after)."""
    step = _StepGraph(model, memory_names, state_names, output_ids, layer_as_inputs=layer_as_inputs)
    # Two sentences of two rows each, so that neither count is mistaken for a constant.
    y, k = torch.tensor([2, 2, 2, 2], dtype=torch.long), torch.tensor(2, dtype=torch.long)
    state = tuple(v.repeat_interleave(2, dim=axis) for v, axis in zip(state, state_names.values()))
    batch = {0: "batch"}
    step_axes = {"y": batch, "logits": batch, "log_norm": batch, "top_values": {0: "batch", 1: "k"}, "top_columns": {0: "batch", 1: "k"}}
    for name, axis in state_names.items():
        step_axes[name] = step_axes[f"next_{name}"] = {axis: "batch"}
    for name in memory_names:
        step_axes[name] = enc_axes[name] | {0: "sentences"}
    inputs, examples = ["y", *state_names, *memory_names, "k"], (y, *state, *memory, k)
    if layer_as_inputs:
        weight, bias = _output_layer(model, output_ids)
        examples += (weight.T.contiguous(), bias.expand(2, -1).contiguous())  # a bias row per sentence
        inputs += ["output_weight", "output_bias"]
        step_axes |= {"logits": {0: "batch", 1: "columns"}, "output_weight": {1: "columns"}, "output_bias": {0: "sentences", 1: "columns"}}
    _export(step, examples, path, inputs, [*STEP_OUTPUTS, *(f"next_{n}" for n in state_names)], step_axes)


def _export_meta(
    model: Seq2Seq,
    config: Config,
    tokenizer: Tokenizer,
    model_meta: ModelMeta,
    quantize: Quantize,
    memory_names: tuple[str, ...],
    state_names: dict[str, int],
    output_ids: torch.Tensor | None,
    out_dir: Path,
    shortlist: bool,
) -> ExportMeta:
    """export.json's values, once the tokenizer's files are in out_dir (their SHA-256 is recorded)."""
    from seq2seq import __version__

    joint = config.tokenizer.joint
    return ExportMeta(
        export_format_version=EXPORT_FORMAT_VERSION,
        package_version=__version__,
        opset=OPSET,
        exporter=EXPORTER,
        quantize=quantize,
        weight_bits=WEIGHT_BITS if quantize == "int8" else None,
        cell=model.decoder.cell,
        state_batch_axes=state_names,
        memory_names=memory_names,
        special_ids=SPECIAL_IDS,
        joint=joint,
        tokenizer_files=tuple(model_files(joint)),
        tokenizer_sha256=tokenizer_sha256(out_dir, joint),
        src_vocab_size=tokenizer.src_vocab_size,
        tgt_vocab_size=tokenizer.tgt_vocab_size,
        output_ids=None if output_ids is None else tuple(output_ids.tolist()),
        shortlist=SHORTLIST_FILE if shortlist else None,
        memory_per_sentence=True,
        raw_top=True,
        max_len=config.data.max_len,
        source_weights_sha256=model_meta.weights_sha256,
    )


def _export(module: nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str], dynamic_axes: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about shapes read as Python numbers: the dynamic axes are checked by the tests
        torch.onnx.export(
            module,
            args,
            str(tmp),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    tmp.replace(path)


def _card_section(out_dir: Path, meta: ExportMeta) -> str:
    sizes = {name: (out_dir / name).stat().st_size / 1e6 for name in (ENCODER_GRAPH, STEP_GRAPH)}
    digest = {name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest()[:12] for name in sizes}
    graphs = "\n".join(f"- `{name}`: {size:.1f} MB, SHA-256 {digest[name]}…" for name, size in sizes.items())
    return f"""## Exported model

This directory was written by `seq2seq-export` (export format {meta.export_format_version}, ONNX opset {meta.opset},
{"int8 products with one scale per row; a GRU encoder's recurrence in fp32" if meta.quantize == "int8" else "fp32"}). It runs with onnxruntime, numpy and sentencepiece; torch is not needed.

{graphs}

```python
from seq2seq import Translator

translator = Translator.from_pretrained("{out_dir.name}")
print(translator.translate(["A man is riding a bicycle."]))
```

or `seq2seq-translate --model {out_dir.name} < input.txt`.
"""


def shortlist_pairs(files: list[Path], tokenizer: Tokenizer, config: Config) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The pairs a shortlist learns from, tokenized: the two files given (source, target), else the
    model's training split as config.json names it (seq2seq.data.corpus), the pairs training kept."""
    from seq2seq.data.batching import filter_by_length
    from seq2seq.textfiles import read_lines

    if files:
        src, tgt = (read_lines(f) for f in files)
        if len(src) != len(tgt):
            raise ValueError(
                f"--shortlist files {files[0]} and {files[1]} have {len(src)} and {len(tgt)} lines; give a source and a target file of one pair per line"
            )
    else:
        import itertools
        import tempfile

        from seq2seq.data.corpus import load_corpus

        with tempfile.TemporaryDirectory(prefix="seq2seq-shortlist-") as work_dir:
            train = load_corpus(config.data, Path(work_dir))["train"]
            if config.data.streaming:
                rows = list(itertools.islice(train, SHORTLIST_STREAM_PAIRS))
                src, tgt = [r["src"] for r in rows], [r["tgt"] for r in rows]
            else:
                src, tgt = list(train["src"]), list(train["tgt"])
    src_ids, tgt_ids, _ = filter_by_length(tokenizer.encode_src(src), tokenizer.encode_tgt(tgt), config.data.max_len)
    return src_ids, tgt_ids


def check_ensemble(model_dirs: list[Path]) -> None:
    """Refuse more than one model directory, saying what to do instead."""
    if len(model_dirs) > 1:
        raise CheckpointError(
            f"seq2seq-export takes one model directory; an ensemble of {len(model_dirs)} cannot be exported as one graph yet. "
            "Average checkpoints of one run into one model with seq2seq-average and export that, or export each model on its own"
        )
