"""int8 products with one scale per row: an exported graph's weight products rewritten so that a
sentence's int8 translation does not depend on the sentences batched with it.

onnxruntime's dynamic quantization (`quantize_dynamic`: DynamicQuantizeLinear, DynamicQuantizeLSTM)
scales a whole batch's activations by the batch's largest value; a sentence's products then change
with its neighbours, and on the recipe's model 22 of 300 test lines were translated otherwise alone
than in batches of 64. Here each row of an activation gets its own scale instead:

    scale (..., 1) = max |A| over the row / 127
    Aq = round(A / scale) + 128                         uint8, zero point 128: onnxruntime's fast u8×s8 kernels
    Y  = (Aq − 128)·Wq · scale · w_scale (+ bias)       Wq int8 in [−63, 63], one scale per output column (symmetric)

The weights have 7 bits, not 8, so that the integer products are exact on every CPU. On x86 CPUs
without VNNI (AVX2, AVX-512 without VNNI) onnxruntime's u8×s8 kernel multiplies with VPMADDUBSW,
which adds two neighbouring products in 16 bits and saturates: 255·127 twice is 64,770, over
32,767. With weights of at most 63 two products stay within 2·255·63 = 32,130. On an AMD EPYC with
AVX2 alone, 8-bit weights got 1.7% of a product's entries wrong (some by a fifth of the largest) and
lost 0.27 BLEU at beam 5 against fp32 (193 of 1,000 test lines otherwise); 7-bit weights lost 0.01
(84 lines otherwise), 7-bit activations 0.07 (99 lines): docs/logs/2026-12-07-int8-saturation.md.

Aq is one QuantizeLinear node with a scale per row (per-axis, axis 0, the activation seen as rows of
K), which rounds half to even and saturates as Div, Round, Add, Clip and Cast did, to the same bytes,
in 0.07 ms where those five took 0.45 ms of a beam step at 320 rows.

Y is one com.microsoft MatMulIntegerToFloat node (onnxruntime's own operator; it takes the row scales
(..., 1) as its A scale and broadcasts them), which at 320 rows by 5,575 columns took 1.1 ms where
MatMulInteger, Cast and two Mul took 1.6 ms.

The integer product is exact whatever the batch, so a row's result depends on that row alone. MatMul
and Gemm nodes whose right-hand side is a weight (an initializer) are rewritten, and the encoder's
LSTM operators: each becomes the input product for all time steps at once and a Scan that steps the
cell with its recurrent product quantized per row of h (1.8-1.9x faster than the fp32 operator at
64 sentences; docs/logs/2026-12-07-serving-overhead.md). Products of two activations (attention
scores) and GRU operators stay fp32. The exporter gives the decoder step's LSTM or GRU to this
rewrite as plain products (seq2seq.export.exporter.ExplicitCell), with the product of its embedding
folded into a table of rows (FoldedEmbedding), which is stored here as int8 rows with a scale each
(`row_tables`): a lookup where there was a product, 4-5% of a beam step at 320 rows on AVX2.

A weight the graph takes as an input (`weight_inputs`: the output layer of the shortlist's step
graph, which the runtime passes as a batch's columns) becomes two inputs, `{name}_q` int8 (K, N) and
`{name}_scale` (N,): the exporter quantizes the array with `quantize_weight` and the runtime feeds both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def quantize_rows(path: Path, weight_inputs: tuple[str, ...] = (), *, lstm_bias_feature: bool = False, row_tables: tuple[str, ...] = ()) -> int:
    """Rewrite the graph at `path` in place; returns how many products became int8. weight_inputs:
    graph inputs that are a product's weight (K, N), replaced by `{name}_q` and `{name}_scale`.
    lstm_bias_feature: the LSTMs' last input feature carries their bias (1 on tokens, 0 on padding:
    the encoder's left-padded pass), and is multiplied in fp32: a 1 among embeddings of at most 0.4
    would set every row's scale, and the bias every gate's column scale.
    row_tables: initializers (V, G) that the graph only looks rows up in (Gather, axis 0), named by the
    end of their name (the exporter's FOLDED_TABLE): stored as int8 with one scale per row (`_int8_rows`)."""
    import onnx  # the onnx extra, imported when a graph is quantized (seq2seq-export names the extra when it is missing)
    from onnx import helper, numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in (*graph.value_info, *graph.input) if v.type.tensor_type.HasField("shape")}
    weights = {w.name: w for w in graph.initializer}
    nodes: list = []
    extra_inits: list = _shared_constants()
    quantized: dict[str, tuple[str, str]] = {}  # activation → (its uint8 rows, their scales)
    used: set[str] = set()
    count = 0
    for node in graph.node:
        if _is_row_table(node, weights, row_tables):
            nodes += _int8_rows(node, numpy_helper.to_array(weights[node.input[0]]), extra_inits, prefix=f"rowq_table{len(used)}")
            used.add(node.input[0])
            continue
        if node.op_type == "LSTM" and _plain_lstm(node, weights):
            nodes += _stepped_lstm(node, weights, extra_inits, prefix=f"rowq_lstm{count}", bias_feature=lstm_bias_feature)
            used.update(node.input[1:3])
            count += 2
            continue
        weight = _weight_of(node, weights, weight_inputs)
        if weight is None:
            nodes.append(node)
            continue
        a = node.input[0]
        if a not in quantized:
            k = _weight_rows(weight, weights, graph, node)
            quantized[a] = _quantize_activation(a, k, ranks.get(a), nodes, extra_inits)
        aq, a_scale = quantized[a]
        if weight in weight_inputs:
            wq, w_scale = f"{weight}_q", f"{weight}_scale"
        else:
            w = numpy_helper.to_array(weights[weight])
            wq, w_scale = f"rowq_{count}_wq", f"rowq_{count}_wscale"
            extra_inits += [numpy_helper.from_array(arr, n) for arr, n in zip(quantize_weight(w.T if _attr(node, "transB", 0) else w), (wq, w_scale))]
        used.add(weight)
        bias = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 else ""
        out = node.output[0]
        # The bias is added by a node of its own: MatMulIntegerToFloat's bias input came out multiplied
        # by the row scales (onnxruntime 1.32, scales of shape (..., 1)).
        nodes.append(
            helper.make_node("MatMulIntegerToFloat", [aq, wq, a_scale, w_scale, "rowq_zero"], [f"{out}_rowq" if bias else out], domain="com.microsoft")
        )
        if bias:
            nodes.append(helper.make_node("Add", [f"{out}_rowq", bias], [out]))
        count += 1
    _save_rewritten(model, path, nodes, extra_inits, replaced=used, weight_inputs=weight_inputs)
    return count


def _shared_constants() -> list:
    """The constants every rewritten product reads: 1/127 and the least scale (`_quantize_activation`),
    the zero point 128 (one, and one per row), the shape of a flat vector."""
    from onnx import numpy_helper

    return [
        numpy_helper.from_array(np.array(1 / 127, dtype=np.float32), "rowq_inv127"),
        numpy_helper.from_array(np.array(1e-30, dtype=np.float32), "rowq_tiny"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "rowq_zero"),
        numpy_helper.from_array(np.array([128], dtype=np.uint8), "rowq_zeros"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "rowq_flat"),
    ]


def _is_row_table(node, weights: dict, row_tables: tuple[str, ...]) -> bool:
    """Whether `node` looks rows up (Gather, axis 0) in an initializer whose name ends with one of row_tables."""
    table = node.input[0] if node.op_type == "Gather" else ""
    return table in weights and _attr(node, "axis", 0) == 0 and any(table.endswith(name) for name in row_tables)


def _int8_rows(node, table: np.ndarray, inits: list, *, prefix: str) -> list:
    """The nodes that compute `node`, a Gather of rows of `table` (V, G), from the table in int8 with one
    scale per row (V, 1): the rows gathered, then multiplied by their scales. A table row is a product
    computed once in fp32 (the exporter's FoldedEmbedding), so it is rounded once, to 8 bits: nothing
    multiplies these codes in 16 bits, as onnxruntime's u8×s8 products do (WEIGHT_MAX)."""
    from onnx import TensorProto, helper, numpy_helper

    p = prefix
    q, scale = _symmetric_int8(table, axis=1, largest=127)  # (V, G), (V, 1)
    inits += [numpy_helper.from_array(q, f"{p}_q"), numpy_helper.from_array(scale, f"{p}_scale")]
    ids = node.input[1]
    return [
        helper.make_node("Gather", [f"{p}_q", ids], [f"{p}_rows_q"]),
        helper.make_node("Gather", [f"{p}_scale", ids], [f"{p}_rows_scale"]),
        helper.make_node("Cast", [f"{p}_rows_q"], [f"{p}_rows"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{p}_rows", f"{p}_rows_scale"], [node.output[0]]),
    ]


def _lstm_inputs(node) -> list[str]:
    """An ONNX LSTM's eight inputs (X, W, R, B, sequence_lens, initial_h, initial_c, P), '' where absent."""
    return list(node.input) + [""] * (8 - len(node.input))


def _plain_lstm(node, weights: dict) -> bool:
    """An ONNX LSTM this rewrite can step: one direction forward, weights W (1, 4H, I) and R (1, 4H, H)
    as initializers, the initial h and c given, no sequence lengths or peepholes, the default
    activations, no clip, batch second (as the exporter writes the encoder's)."""
    inputs = _lstm_inputs(node)
    attrs = {a.name for a in node.attribute} - {"hidden_size"}
    return (
        inputs[1] in weights
        and inputs[2] in weights
        and (not inputs[3] or inputs[3] in weights)
        and not inputs[4]
        and bool(inputs[5] and inputs[6])
        and not inputs[7]
        and _attr(node, "direction", b"forward") in (b"forward", "forward")
        and not attrs - {"direction", "layout"}
        and _attr(node, "layout", 0) == 0
    )


def _stepped_lstm(node, weights: dict, inits: list, *, prefix: str, bias_feature: bool) -> list:
    """The nodes that compute `node` (a plain LSTM: X (S, B, I) → Y (S, 1, B, H), Y_h, Y_c (1, B, H))
    with both products row-wise int8: the input product for all steps at once, then a Scan over S
    whose body steps the cell (gates i, o, f, c in ONNX's order), its recurrent product quantized
    per row of h. A row of zeros (the encoder's padding: its bias rides on an input feature) gives
    exactly zero gates' inputs, so the state stays exactly (0, 0) as in the fp32 operator."""
    from onnx import helper, numpy_helper

    x, w_name, r_name, bias, _, h0, c0, _ = _lstm_inputs(node)
    w, r = numpy_helper.to_array(weights[w_name])[0], numpy_helper.to_array(weights[r_name])[0]  # (4H, I), (4H, H)
    hidden, k = r.shape[1], w.shape[1]
    p = prefix
    wq, w_scale = quantize_weight((w[:, :-1] if bias_feature else w).T)
    rq, r_scale = quantize_weight(r.T)
    inits += [
        numpy_helper.from_array(wq, f"{p}_wq"),
        numpy_helper.from_array(w_scale, f"{p}_wscale"),
        numpy_helper.from_array(rq, f"{p}_rq"),
        numpy_helper.from_array(r_scale, f"{p}_rscale"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), f"{p}_axis0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{p}_axis1"),
    ]
    nodes: list = []
    if bias_feature:  # X = [features, the bias feature]: the features' product int8, the bias feature's fp32
        inits += [
            numpy_helper.from_array(np.array([0], dtype=np.int64), f"{p}_from"),
            numpy_helper.from_array(np.array([k - 1], dtype=np.int64), f"{p}_last"),
            numpy_helper.from_array(np.array([k], dtype=np.int64), f"{p}_end"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), f"{p}_axis2"),
            numpy_helper.from_array(np.ascontiguousarray(w[:, -1]), f"{p}_wbias"),
        ]
        nodes += [
            helper.make_node("Slice", [x, f"{p}_from", f"{p}_last", f"{p}_axis2"], [f"{p}_x"]),
            helper.make_node("Slice", [x, f"{p}_last", f"{p}_end", f"{p}_axis2"], [f"{p}_xbias"]),
            helper.make_node("Mul", [f"{p}_xbias", f"{p}_wbias"], [f"{p}_gbias"]),
        ]
        x, k = f"{p}_x", k - 1
    xq, x_scale = _quantize_activation(x, k, 3, nodes, inits)
    gates_in = f"{p}_gx"
    nodes.append(helper.make_node("MatMulIntegerToFloat", [xq, f"{p}_wq", x_scale, f"{p}_wscale", "rowq_zero"], [gates_in], domain="com.microsoft"))
    if bias_feature:
        nodes.append(helper.make_node("Add", [gates_in, f"{p}_gbias"], [f"{p}_gxf"]))
        gates_in = f"{p}_gxf"
    if bias:  # B (1, 8H): the input's and the recurrence's biases, added once for every step
        b = numpy_helper.to_array(weights[bias])[0]
        inits.append(numpy_helper.from_array((b[: 4 * hidden] + b[4 * hidden :]).astype(np.float32), f"{p}_bias"))
        nodes.append(helper.make_node("Add", [gates_in, f"{p}_bias"], [f"{p}_gxb"]))
        gates_in = f"{p}_gxb"
    for name, given in (("h0", h0), ("c0", c0)):  # (1, B, H) → the Scan's state (B, H)
        nodes.append(helper.make_node("Squeeze", [given, f"{p}_axis0"], [f"{p}_{name}"]))
    step = _lstm_step(p, hidden)
    y, y_h, y_c = (list(node.output) + ["", "", ""])[:3]
    nodes.append(helper.make_node("Scan", [f"{p}_h0", f"{p}_c0", gates_in], [f"{p}_h", f"{p}_c", f"{p}_ys"], num_scan_inputs=1, body=step))
    for out, value, axis in ((y, f"{p}_ys", "axis1"), (y_h, f"{p}_h", "axis0"), (y_c, f"{p}_c", "axis0")):
        if out:
            nodes.append(helper.make_node("Unsqueeze", [value, f"{p}_{axis}"], [out]))
    return nodes


def _lstm_step(p: str, hidden: int):
    """The Scan body of a stepped LSTM: (h, c (B, H), the step's input gates gx (B, 4H)) → (h', c', y = h')."""
    from onnx import TensorProto, helper

    body: list = []
    hq, h_scale = _quantize_activation("h", hidden, 2, body, [])
    body += [
        helper.make_node("MatMulIntegerToFloat", [hq, f"{p}_rq", h_scale, f"{p}_rscale", "rowq_zero"], ["gh"], domain="com.microsoft"),
        helper.make_node("Add", ["gx", "gh"], ["z"]),
        helper.make_node("Split", ["z"], ["zi", "zo", "zf", "zc"], axis=1),
        helper.make_node("Sigmoid", ["zi"], ["i"]),
        helper.make_node("Sigmoid", ["zo"], ["o"]),
        helper.make_node("Sigmoid", ["zf"], ["f"]),
        helper.make_node("Tanh", ["zc"], ["g"]),
        helper.make_node("Mul", ["f", "c"], ["kept"]),
        helper.make_node("Mul", ["i", "g"], ["added"]),
        helper.make_node("Add", ["kept", "added"], ["c_next"]),
        helper.make_node("Tanh", ["c_next"], ["c_out"]),
        helper.make_node("Mul", ["o", "c_out"], ["h_next"]),
        helper.make_node("Identity", ["h_next"], ["y"]),
    ]
    f32 = TensorProto.FLOAT
    return helper.make_graph(
        body,
        f"{p}_step",
        [helper.make_tensor_value_info(n, f32, ["B", d]) for n, d in (("h", hidden), ("c", hidden), ("gx", 4 * hidden))],
        [helper.make_tensor_value_info(n, f32, ["B", hidden]) for n in ("h_next", "c_next", "y")],
    )


def _save_rewritten(model, path: Path, nodes: list, extra_inits: list, *, replaced: set[str], weight_inputs: tuple[str, ...]) -> None:
    """Give the graph its new nodes and initializers (the replaced weights dropped where nothing reads
    them any more), its int8 weight inputs and the com.microsoft domain; write it over `path`."""
    import onnx
    from onnx import helper

    graph = model.graph
    still_read = {i for n in nodes for i in n.input}
    kept = [w for w in graph.initializer if w.name not in replaced or w.name in still_read]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + extra_inits)
    _replace_weight_inputs(graph, weight_inputs)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    tmp = path.with_name(path.name + ".int8.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def _replace_weight_inputs(graph, names: tuple[str, ...]) -> None:
    """Each graph input in `names`, a float weight (K, N), becomes `{name}_q` int8 (K, N) and `{name}_scale` (N,)."""
    from onnx import TensorProto, helper

    for name in names:
        (old,) = [i for i in graph.input if i.name == name]
        k, n = (d.dim_param or d.dim_value for d in old.type.tensor_type.shape.dim)
        position = list(graph.input).index(old)
        graph.input.remove(old)
        graph.input.insert(position, helper.make_tensor_value_info(f"{name}_scale", TensorProto.FLOAT, [n]))
        graph.input.insert(position, helper.make_tensor_value_info(f"{name}_q", TensorProto.INT8, [k, n]))


def _weight_of(node, weights: dict, weight_inputs: tuple[str, ...]) -> str | None:
    """The name of a MatMul's or plain Gemm's right-hand side when it is a weight: a 2-D float
    initializer or one of `weight_inputs`; else None."""
    from onnx import TensorProto

    if node.op_type == "MatMul" or (
        node.op_type == "Gemm" and _attr(node, "transA", 0) == 0 and _attr(node, "alpha", 1.0) == 1.0 and _attr(node, "beta", 1.0) == 1.0
    ):
        name = node.input[1]
    else:
        return None
    if name in weight_inputs:
        return name
    w = weights.get(name)
    if w is None or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT or node.input[0] in weights:
        return None
    return name


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _weight_rows(weight: str, weights: dict, graph, node) -> int:
    """K, the rows of a product's weight (K, N): the activation's last axis."""
    if weight in weights:
        dims = list(weights[weight].dims)
        return dims[1] if _attr(node, "transB", 0) else dims[0]
    (given,) = [i for i in graph.input if i.name == weight]
    return given.type.tensor_type.shape.dim[0].dim_value


def _quantize_activation(a: str, k: int, rank: int | None, nodes: list, inits: list) -> tuple[str, str]:
    """Append to `nodes` those that turn activation `a` (..., K) into uint8 rows and their scales
    (..., 1); returns the two names. rank: a's, where shape inference knows it (2: no reshaping)."""
    from onnx import helper, numpy_helper

    p = f"rowq_{a}".replace("/", "_").replace(":", "_").replace(".", "_")
    nodes += [
        helper.make_node("Abs", [a], [f"{p}_abs"]),
        helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_max"], axes=[-1], keepdims=1),
        helper.make_node("Mul", [f"{p}_max", "rowq_inv127"], [f"{p}_scale0"]),
        helper.make_node("Max", [f"{p}_scale0", "rowq_tiny"], [f"{p}_scale"]),
        # QuantizeLinear scales along one axis: the activation as (M, K) rows, the scales as (M,), and
        # as many zero points (128) as scales.
        helper.make_node("Reshape", [f"{p}_scale", "rowq_flat"], [f"{p}_scales"]),
        helper.make_node("Shape", [f"{p}_scales"], [f"{p}_m"]),
        helper.make_node("Expand", ["rowq_zeros", f"{p}_m"], [f"{p}_zeros"]),
    ]
    if rank == 2:
        nodes.append(helper.make_node("QuantizeLinear", [a, f"{p}_scales", f"{p}_zeros"], [f"{p}_u8"], axis=0))
        return f"{p}_u8", f"{p}_scale"
    inits.append(numpy_helper.from_array(np.array([-1, k], dtype=np.int64), f"{p}_rows_shape"))
    nodes += [
        helper.make_node("Reshape", [a, f"{p}_rows_shape"], [f"{p}_rows"]),
        helper.make_node("QuantizeLinear", [f"{p}_rows", f"{p}_scales", f"{p}_zeros"], [f"{p}_q_rows"], axis=0),
        helper.make_node("Shape", [a], [f"{p}_shape"]),
        helper.make_node("Reshape", [f"{p}_q_rows", f"{p}_shape"], [f"{p}_u8"]),
    ]
    return f"{p}_u8", f"{p}_scale"


# The weights' bits and largest code: 7 bits, so that no two u8×s8 products overflow 16 bits together
# (the module's docstring); export.json records the bits (`weight_bits`).
WEIGHT_BITS = 7
WEIGHT_MAX = 2 ** (WEIGHT_BITS - 1) - 1


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A weight (K, N) → int8 (K, N) in [−WEIGHT_MAX, WEIGHT_MAX] and one float32 scale per column (N,), symmetric."""
    wq, scale = _symmetric_int8(w, axis=0, largest=WEIGHT_MAX)
    return wq, scale[0]


def _symmetric_int8(a: np.ndarray, *, axis: int, largest: int) -> tuple[np.ndarray, np.ndarray]:
    """a → int8 codes in [−largest, largest] and one float32 scale per slice across `axis` (that axis kept, of size 1)."""
    scale = np.maximum(np.abs(a).max(axis=axis, keepdims=True), 1e-30) / largest
    q = np.clip(np.rint(a / scale), -largest, largest).astype(np.int8)
    return np.ascontiguousarray(q), scale.astype(np.float32)
