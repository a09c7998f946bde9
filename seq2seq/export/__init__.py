"""Exported models: ONNX graphs of the encoder and of one decoder step, searched without torch.

`seq2seq-export` (seq2seq.export.exporter, which needs torch) writes an exported directory;
seq2seq.export.runtime loads one with onnxruntime, numpy and sentencepiece only, and
seq2seq.decoding.numpy_search decodes with it. This module holds what both sides agree on and imports
nothing heavy, so `Translator.from_pretrained` can tell an exported directory from a model
directory before deciding whether to load torch.
"""

from __future__ import annotations

from pathlib import Path

# Bumped when the graphs' inputs or outputs or export.json change in a way older runtimes cannot read.
EXPORT_FORMAT_VERSION = 6
# Format 1 (written until 2026-12-01) stepped to logits over the whole vocabulary alone; this runtime
# needs the step graph's log-sum-exp and top k, so such a directory is refused with what to do.
# Format 3 (2026-12-06) added the optional shortlist; a format 2 directory is read as having none.
# Format 4 (2026-12-07) gives the step graph one memory row per sentence rather than per row; the
# runtime repeats the memory of a format 2 or 3 graph for each row at every step.
# Format 5 (2026-12-07) takes the step graph's top k over the raw logits (PAD and BOS included: the
# runtime asks for two more and drops them) and has no `never` input or array; the runtime adds −inf
# itself for a format 2 to 4 graph's way.
# Format 6 (2026-12-07) records the int8 weights' bits (`weight_bits`: 7, whose products are exact on
# every CPU); a format 2 to 5 int8 directory has 8-bit weights, whose products saturate on x86 CPUs
# without VNNI, where the runtime warns that it should be exported again.
OLDEST_FORMAT_VERSION = 2
EXPORT_META = "export.json"
ENCODER_GRAPH = "encoder.onnx"
STEP_GRAPH = "decoder_step.onnx"
# With a shortlist (seq2seq.export.shortlist): the step graph again, taking its output layer as
# inputs, and the output layer's arrays to pass (their columns), by input name.
SHORTLIST_STEP_GRAPH = "decoder_step_shortlist.onnx"
OUTPUT_LAYER = "output_layer.npz"
# The step graph's outputs before next_<state name> for each state input.
STEP_OUTPUTS = ("logits", "log_norm", "top_values", "top_columns")


def is_exported_dir(path: str | Path) -> bool:
    """Whether `path` is a directory written by seq2seq-export (it holds export.json)."""
    return (Path(path) / EXPORT_META).is_file()
