"""Row-wise int8 (seq2seq/export/quantize.py and the exporter's ExplicitCell): the decoder cell written
as products computes what nn.LSTM and nn.GRU compute, a rewritten product's rows depend on
themselves alone, close to the fp32 product, and so do a stepped LSTM operator's."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

from seq2seq.export.exporter import FOLDED_TABLE, ExplicitCell, FoldedEmbedding, _export
from seq2seq.export.quantize import quantize_rows


def _save(graph, path) -> None:
    """Write an ONNX graph as a model of opset 17 that onnxruntime reads (IR version 8)."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize("rnn_class", [torch.nn.LSTM, torch.nn.GRU])
def test_the_explicit_cell_computes_one_step_as_torch_does(rnn_class):
    torch.manual_seed(0)
    rnn = rnn_class(12, 8, num_layers=2, batch_first=True).eval()
    x, h = torch.randn(5, 1, 12), torch.randn(2, 5, 8)
    hx = (h, torch.randn(2, 5, 8)) if rnn_class is torch.nn.LSTM else h
    with torch.no_grad():
        want_out, want_state = rnn(x, hx)
        got_out, got_state = ExplicitCell(rnn)(x, hx)
    torch.testing.assert_close(got_out, want_out, rtol=1e-5, atol=1e-6)
    for got, want in zip(got_state if isinstance(got_state, tuple) else (got_state,), want_state if isinstance(want_state, tuple) else (want_state,)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rnn_class", [torch.nn.LSTM, torch.nn.GRU])
def test_the_explicit_cell_exports_its_gates_as_constant_slices(rnn_class, tmp_path):
    # Each node costs onnxruntime time at every step whatever the batch; x.chunk exported as slices
    # computed from the gates' shape (Shape, Gather, Add, Div, Mul), seven nodes more per step.
    import onnx

    torch.manual_seed(0)
    rnn = rnn_class(12, 8, batch_first=True).eval()
    h = torch.randn(1, 3, 8)
    hx = (h, torch.randn(1, 3, 8)) if rnn_class is torch.nn.LSTM else h
    path = tmp_path / "cell.onnx"
    _export(ExplicitCell(rnn), (torch.randn(3, 1, 12), hx), path, ["x", "h"], ["out"], {"x": {0: "batch"}, "h": {1: "batch"}})
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert ops.count("Slice") == (4 if rnn_class is torch.nn.LSTM else 6)
    assert "Shape" not in ops


@pytest.mark.parametrize("rnn_class", [torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("fed", [0, 6])
def test_a_folded_embedding_gives_the_cell_what_the_embedding_would(rnn_class, fed):
    # fed: features after the embedding in the first layer's input (an input feed), multiplied as usual.
    torch.manual_seed(0)
    embed, rnn = torch.nn.Embedding(20, 12, padding_idx=0), rnn_class(12 + fed, 8, num_layers=2, batch_first=True).eval()
    y, rest, h = torch.tensor([0, 3, 19, 7, 3]), torch.randn(5, fed), torch.randn(2, 5, 8)
    hx = (h, torch.randn(2, 5, 8)) if rnn_class is torch.nn.LSTM else h
    folded = FoldedEmbedding(embed, rnn.weight_ih_l0)
    with torch.no_grad():
        want_out, want_state = rnn(torch.cat([embed(y), rest], dim=-1).unsqueeze(1), hx)
        got_out, got_state = ExplicitCell(rnn, folded=12)(torch.cat([folded(y), rest], dim=-1).unsqueeze(1), hx)
    torch.testing.assert_close(got_out, want_out, rtol=1e-5, atol=1e-5)
    for got, want in zip(got_state if isinstance(got_state, tuple) else (got_state,), want_state if isinstance(want_state, tuple) else (want_state,)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_table_of_rows_is_stored_in_int8_with_a_scale_per_row(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.standard_normal((30, 16)).astype(np.float32) * np.geomspace(1e-3, 10, 30, dtype=np.float32)[:, None]  # rows of every size
    name = f"model.decoder.embed.{FOLDED_TABLE}"
    graph = helper.make_graph(
        [helper.make_node("Gather", [name, "ids"], ["rows"])],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [None, 16])],
        [numpy_helper.from_array(table, name)],
    )
    _save(graph, tmp_path / "g.onnx")
    quantize_rows(tmp_path / "g.onnx", row_tables=(FOLDED_TABLE,))
    stored = {w.name: numpy_helper.to_array(w) for w in onnx.load(str(tmp_path / "g.onnx")).graph.initializer}
    assert name not in stored and [a.dtype for a in stored.values() if a.shape == table.shape] == [np.int8]
    ids = np.array([29, 0, 5, 5, 17])
    got = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    error = np.abs(got - table[ids]).max(axis=1) / np.abs(table[ids]).max(axis=1)
    assert error.max() <= 0.5 / 127 + 1e-6  # each row rounded on its own scale, the small rows too


def _graph(path, w_matmul: np.ndarray, w_gemm: np.ndarray, bias: np.ndarray) -> None:
    """y = (x @ w_matmul) then Gemm with w_gemm transposed and a bias, as torch exports F.linear."""
    from onnx import TensorProto, helper, numpy_helper

    k = w_matmul.shape[0]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Gemm", ["h", "w2", "b2"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(w_matmul, "w1"), numpy_helper.from_array(w_gemm, "w2"), numpy_helper.from_array(bias, "b2")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, w_gemm.shape[0]])],
        inits,
    )
    _save(graph, path)


def test_rewritten_products_depend_on_their_own_row_alone(tmp_path):
    import onnx
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w1, w2, b2 = (rng.standard_normal(s).astype(np.float32) for s in ((16, 24), (10, 24), (10,)))
    _graph(tmp_path / "g.onnx", w1, w2, b2)
    assert quantize_rows(tmp_path / "g.onnx") == 2
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    assert {n.op_type for n in onnx.load(str(tmp_path / "g.onnx")).graph.node} >= {"MatMulIntegerToFloat"}
    x = rng.standard_normal((6, 16)).astype(np.float32)
    x[3] *= 1000  # a row far larger than the others: per-tensor scales would flatten its neighbours
    batch = session.run(None, {"x": x})[0]
    for row in range(6):
        np.testing.assert_array_equal(session.run(None, {"x": x[row : row + 1]})[0][0], batch[row])
    want = (x @ w1) @ w2.T + b2
    assert np.abs(batch - want).max(axis=1).max() / np.abs(want).max() < 0.05
    assert np.abs(batch[0] - want[0]).max() / np.abs(want[0]).max() < 0.05  # a small row keeps its own precision


def _matmul_graph(path, w: np.ndarray) -> None:
    """y = x @ w, one MatMul with a weight (K, N)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, w.shape[1]])],
        [numpy_helper.from_array(w, "w")],
    )
    _save(graph, path)


def test_int8_products_are_exact_at_the_ends_of_their_ranges(tmp_path):
    # Every activation its row's largest in size and every weight its column's: the codes at the ends of
    # their ranges (uint8 1 or 255, int8 ±WEIGHT_MAX), where the fp32 product is exact in int8 as well.
    # On x86 CPUs without VNNI onnxruntime adds pairs of u8×s8 products in 16 bits with saturation;
    # 8-bit weights (±127) came out wrong here by up to the whole product on such a CPU.
    import onnxruntime as ort

    from seq2seq.export.quantize import WEIGHT_MAX, quantize_weight

    rng = np.random.default_rng(0)
    K, N = 64, 16
    x = rng.choice([-1.0, 1.0], size=(6, K)).astype(np.float32)
    x[0], x[1] = 1.0, -1.0  # rows of one sign: every pair of products adds up
    w = rng.choice([-1.0, 1.0], size=(K, N)).astype(np.float32)
    w[:, 0], w[:, 1] = 1.0, -1.0
    assert np.abs(quantize_weight(w)[0]).max() == WEIGHT_MAX
    _matmul_graph(tmp_path / "g.onnx", w)
    assert quantize_rows(tmp_path / "g.onnx") == 1
    got = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, x @ w, rtol=1e-5)
    assert got[0, 0] == pytest.approx(K, rel=1e-5) and got[1, 0] == pytest.approx(-K, rel=1e-5)


def _lstm_graph(path, w: np.ndarray, r: np.ndarray, bias: np.ndarray | None) -> None:
    """One forward ONNX LSTM, X (S, B, I) → Y (S, 1, B, H), Y_h and Y_c (1, B, H), as the exporter writes the encoder's."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, k = r.shape[1], w.shape[1]
    inits = [numpy_helper.from_array(w[None], "W"), numpy_helper.from_array(r[None], "R")]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias[None], "B"))
    node = helper.make_node("LSTM", ["x", "W", "R", "B" if bias is not None else "", "", "h0", "c0"], ["y", "y_h", "y_c"], hidden_size=hidden)
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", f, ["S", "B", k]), *(helper.make_tensor_value_info(n, f, [1, "B", hidden]) for n in ("h0", "c0"))],
        [helper.make_tensor_value_info("y", f, ["S", 1, "B", hidden]), *(helper.make_tensor_value_info(n, f, [1, "B", hidden]) for n in ("y_h", "y_c"))],
        inits,
    )
    _save(graph, path)


@pytest.mark.parametrize("bias_feature", [True, False])
def test_an_lstm_operator_is_stepped_with_int8_products_row_by_row(tmp_path, bias_feature):
    import onnx
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    S, B, K, H = 7, 5, 12, 8  # steps, rows, input features, hidden units
    w = (rng.standard_normal((4 * H, K + bias_feature)) * 0.4).astype(np.float32)
    r = (rng.standard_normal((4 * H, H)) * 0.4).astype(np.float32)
    bias = None if bias_feature else (rng.standard_normal(8 * H) * 0.2).astype(np.float32)
    _lstm_graph(tmp_path / "g.onnx", w, r, bias)
    x = (rng.standard_normal((S, B, K)) * 0.4).astype(np.float32)
    lengths = [7, 3, 5, 1, 7]
    if bias_feature:  # left-padded rows, the bias riding on a last feature of 1 on tokens, as the encoder's
        on_token = (np.arange(S)[:, None] >= S - np.array(lengths)[None, :]).astype(np.float32)[..., None]  # (S, B, 1)
        x = np.concatenate([x * on_token, on_token], axis=-1)
    feeds = {"x": x, "h0": np.zeros((1, B, H), np.float32), "c0": np.zeros((1, B, H), np.float32)}
    want = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)

    assert quantize_rows(tmp_path / "g.onnx", lstm_bias_feature=bias_feature) == 2
    ops = {n.op_type for n in onnx.load(str(tmp_path / "g.onnx")).graph.node}
    assert {"Scan", "MatMulIntegerToFloat"} <= ops and "LSTM" not in ops
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    for g, ref in zip(got, want):
        assert g.shape == ref.shape and np.abs(g - ref).max() < 0.05 * np.abs(ref).max()
    for b in range(B):  # a row's result is its own, whatever the batch
        alone = session.run(None, {"x": x[:, b : b + 1], "h0": feeds["h0"][:, :1], "c0": feeds["c0"][:, :1]})
        for g, one in zip(got, alone):
            np.testing.assert_array_equal(one[..., 0, :], g[..., b, :])
    if bias_feature:  # over the left padding the state stays exactly zero, as in the fp32 operator
        for b, n in enumerate(lengths):
            assert not got[0][: S - n, 0, b].any() and not want[0][: S - n, 0, b].any()
