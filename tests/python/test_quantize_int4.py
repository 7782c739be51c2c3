"""brink quantize --mode int4: weight-only block-wise INT4 as ONNX Runtime's com.microsoft
MatMulNBits.

- Layout: Brink's model has the nodes, attributes and initializers ORT's own
  MatMul4BitsQuantizer writes (with --int4-rtn, B bytes, scales and zero points equal for
  MatMul; by default Brink picks each block's scale by least squares instead).
- ORT loads Brink's int4 model and agrees with Brink running it (tight tolerance), both close
  to FP32; Brink runs ORT's MatMul4BitsQuantizer models and agrees with ORT. Block sizes
  16..128, symmetric and with zero points, K not a multiple of the block size, Gemm (transB,
  alpha, beta, bias).
- Bad input: block size 48, --block-size without --mode int4, a model with no MatMul/Gemm
  -> one line on stderr, no output; --calib with int4 is accepted with a warning.
- Embedding tables: int8 rows by default, ORT's GatherBlockQuantized with --int4-embeddings;
  ORT and Brink agree on both.
- Size: a MatMul-only model is <= 0.16x FP32; the encoder (bench/models.py encoder_6x384,
  marked slow): MatMul weights <= 0.16x, file ~0.21x (int8 embedding table), <= 0.16x with
  --int4-embeddings. Accuracy on all-MiniLM-L6-v2 is in test_quant_accuracy.py.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT, Brink

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(4)


def _init(name, *shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def mlp(k=70, rows=5) -> onnx.ModelProto:
    """x[rows,k] -> MatMul(k x 40) -> Add -> Relu -> Gemm(transB, alpha, beta, bias [24])
    -> Relu -> MatMul(24 x 17) -> y. K = 70 is no multiple of any block size."""
    inits = [_init("w1", k, 40), _init("c1", 40, scale=0.1), _init("w2", 24, 40, scale=0.2),
             _init("c2", 24, scale=0.1), _init("w3", 24, 17, scale=0.3)]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], "mm1"),
        helper.make_node("Add", ["h", "c1"], ["h1"], "bias1"),
        helper.make_node("Relu", ["h1"], ["h2"], "relu1"),
        helper.make_node("Gemm", ["h2", "w2", "c2"], ["g"], "fc", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g"], ["g1"], "relu2"),
        helper.make_node("MatMul", ["g1", "w3"], ["y"], "mm2"),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 17])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ort_run(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def brink_run(brink, path, x, tmp_path, tag, *extra):
    np.savez(tmp_path / f"in_{tag}.npz", x=x)
    out = tmp_path / f"out_{tag}"
    proc = brink("run", path, "--inputs", tmp_path / f"in_{tag}.npz", "-o", out, *extra)
    assert proc.returncode == 0, Brink.describe(proc)
    return np.load(out / "y.npy")


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def ort_int4(src, out, block_size, symmetric):
    pytest.importorskip("onnx_ir", reason="ORT's MatMul4BitsQuantizer imports onnx_ir (scripts/requirements.txt)")
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    import logging
    logging.getLogger().setLevel(logging.ERROR)
    q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=4, block_size=block_size, is_symmetric=symmetric)
    q.process()
    q.model.save_model_to_file(str(out), False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("int4")
    onnx.save(mlp(), str(d / "mlp.onnx"))
    return d


@pytest.mark.parametrize("block,zp", [(16, False), (32, False), (32, True), (64, True), (128, False)])
def test_int4_runs_in_ort_and_agrees_with_brink(brink, model_dir, tmp_path, monkeypatch, block, zp):
    out = tmp_path / "int4.onnx"
    report = tmp_path / "report.json"
    args = ["quantize", model_dir / "mlp.onnx", "-o", out, "--mode", "int4", "--block-size", str(block),
            "--report", report] + (["--int4-zero-point"] if zp else [])
    proc = brink(*args)
    assert proc.returncode == 0, Brink.describe(proc)
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("MatMulNBits") == 3 and "Gemm" not in ops and "MatMul" not in ops, ops
    for n in m.graph.node:
        if n.op_type == "MatMulNBits":
            assert n.domain == "com.microsoft"
            attrs = {a.name: a.i for a in n.attribute}
            assert attrs["bits"] == 4 and attrs["block_size"] == block
            assert (len(n.input) >= 4 and n.input[3] != "") == zp
    r = json.loads(report.read_text())
    assert [l["precision"] for l in r["layers"]] == [f"w4-b{block}"] * 3
    # Small matrices (K = 70, 40, 24): the padded last block weighs; big ones approach 1/8 + scales.
    assert r["totals"]["weight_bytes_after"] < 0.4 * r["totals"]["weight_bytes_before"]
    x = np.random.default_rng(block).standard_normal((5, 70)).astype(np.float32)
    y_fp32 = ort_run(model_dir / "mlp.onnx", {"x": x})
    y_ort = ort_run(out, {"x": x})
    y_brink = brink_run(brink, out, x, tmp_path, "fast")
    monkeypatch.setenv("BRINK_REFERENCE_KERNELS", "1")  # MatMulNBits' reference path
    y_ref = brink_run(brink, out, x, tmp_path, "reference", "-t", "1")
    monkeypatch.delenv("BRINK_REFERENCE_KERNELS")
    scale = np.abs(y_ort).max()
    np.testing.assert_allclose(y_brink, y_ort, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(y_ref, y_ort, rtol=0, atol=1e-4 * scale)
    assert cosine(y_fp32, y_brink) > 0.98


def test_int4_layout_matches_ort_quantizer(brink, tmp_path):
    """MatMul only (ORT's quantizer leaves Gemm float): the same B, scales and zero points."""
    k = 100
    inits = [_init("w", k, 33)]
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], "mm")], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 33])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = tmp_path / "mm.onnx"
    onnx.save(model, str(src))
    for block in (16, 32, 64):
        for symmetric in (True, False):
            ours, theirs = tmp_path / "ours.onnx", tmp_path / "theirs.onnx"
            proc = brink("quantize", src, "-o", ours, "--mode", "int4", "--block-size", str(block), "--int4-rtn",
                         *([] if symmetric else ["--int4-zero-point"]))
            assert proc.returncode == 0, Brink.describe(proc)
            ort_int4(src, theirs, block, symmetric)
            a, b = onnx.load(str(ours)), onnx.load(str(theirs))
            (na,), (nb,) = a.graph.node, b.graph.node
            assert (na.op_type, na.domain) == (nb.op_type, nb.domain) == ("MatMulNBits", "com.microsoft")
            attrs = lambda n: {x.name: x.i for x in n.attribute}  # noqa: E731
            assert attrs(na) == attrs(nb)
            ia = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
            ib = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
            qa, qb = ia[na.input[1]], ib[nb.input[1]]
            sa, sb = ia[na.input[2]], ib[nb.input[2]]
            assert qa.shape == qb.shape and qa.dtype == qb.dtype == np.uint8
            np.testing.assert_array_equal(sa.reshape(-1), sb.reshape(-1))
            # Compare the nibbles of real rows of K (the padded tail of the last block is free).
            nib = lambda q: np.stack([q & 15, q >> 4], -1).reshape(q.shape[0], -1)[:, :k]  # noqa: E731
            np.testing.assert_array_equal(nib(qa), nib(qb))
            assert (len(na.input) > 3) == (len(nb.input) > 3) == (not symmetric)
            if not symmetric:
                za, zb = ia[na.input[3]], ib[nb.input[3]]
                assert za.shape == zb.shape
                kb = (k + block - 1) // block
                np.testing.assert_array_equal(nib(za)[:, :kb], nib(zb)[:, :kb])
            x = np.random.default_rng(1).standard_normal((3, k)).astype(np.float32)
            np.testing.assert_allclose(ort_run(ours, {"x": x}), ort_run(theirs, {"x": x}), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block,symmetric", [(32, True), (32, False), (128, False), (16, True)])
def test_brink_runs_ort_int4_models(brink, model_dir, tmp_path, block, symmetric):
    theirs = tmp_path / "ort_int4.onnx"
    ort_int4(model_dir / "mlp.onnx", theirs, block, symmetric)
    assert sum(n.op_type == "MatMulNBits" for n in onnx.load(str(theirs)).graph.node) == 2
    x = np.random.default_rng(7).standard_normal((5, 70)).astype(np.float32)
    y_ort = ort_run(theirs, {"x": x})
    y_brink = brink_run(brink, theirs, x, tmp_path, "b")
    np.testing.assert_allclose(y_brink, y_ort, rtol=0, atol=1e-4 * np.abs(y_ort).max())


def test_int4_bad_input(brink, model_dir, tmp_path):
    out = tmp_path / "out.onnx"
    brink.expect_error("quantize", model_dir / "mlp.onnx", "-o", out, "--mode", "int4", "--block-size", "48",
                       mentions=["block-size", "48"])
    assert not out.exists()
    brink.expect_error("quantize", model_dir / "mlp.onnx", "-o", out, "--mode", "int8-dynamic",
                       "--block-size", "64", mentions=["int4"])
    assert not out.exists()
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], "relu")], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "relu.onnx"))
    brink.expect_error("quantize", tmp_path / "relu.onnx", "-o", out, "--mode", "int4", mentions=["MatMul"])
    assert not out.exists()
    w = np.ones((8, 4), np.float32)
    w[2, 1] = np.nan
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], "mm")], "nan",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "nan.onnx"))
    brink.expect_error("quantize", tmp_path / "nan.onnx", "-o", out, "--mode", "int4", mentions=["NaN", "'w'"])
    assert not out.exists()
    # --calib is not needed; given, it only feeds the report's comparison (with a warning).
    np.savez(tmp_path / "calib.npz", x=np.ones((2, 5, 70), np.float32))
    proc = brink("quantize", model_dir / "mlp.onnx", "-o", out, "--mode", "int4", "--calib", tmp_path / "calib.npz")
    assert proc.returncode == 0, Brink.describe(proc)
    assert "warning" in proc.stderr and "int4" in proc.stderr
    assert out.exists()


@pytest.mark.slow
def test_int4_encoder_size(brink, tmp_path):
    """encoder_6x384 (bench/models.py): the MatMul weights shrink to <= 0.16x. Half of its FP32
    file is a 30522 x 384 token-embedding table, which int4 mode stores as int8 rows by default
    (the file lands near 0.21x), or as 4-bit blocks with --int4-embeddings (<= 0.16x)."""
    pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import compare_ort  # bench/: registers the bench models (encoder_6x384) with tests/python/models.py
    src = compare_ort.load_bench_models().test_models.ensure("encoder_6x384").path
    out, report = tmp_path / "encoder_int4.onnx", tmp_path / "report.json"
    proc = brink("quantize", src, "-o", out, "--mode", "int4", "--report-samples", "1", "--report", report,
                 timeout=600)
    assert proc.returncode == 0, Brink.describe(proc)
    layers = json.loads(report.read_text())["layers"]
    mm = [l for l in layers if l["op"] in ("MatMul", "Gemm")]
    assert len(mm) >= 36 and all(l["precision"] == "w4-b32" for l in mm)
    mm_ratio = sum(l["weight_bytes_after"] for l in mm) / sum(l["weight_bytes_before"] for l in mm)
    ratio = os.path.getsize(out) / os.path.getsize(src)
    print(f"\nsize: encoder_6x384 FP32 {os.path.getsize(src)} bytes, int4 (b32) {os.path.getsize(out)} bytes, "
          f"{ratio:.3f}x; MatMul weights {mm_ratio:.3f}x")
    assert mm_ratio <= 0.16
    assert ratio <= 0.22
    out4 = tmp_path / "encoder_int4_embeddings.onnx"
    proc = brink("quantize", src, "-o", out4, "--mode", "int4", "--int4-embeddings", "--report-samples", "1",
                 timeout=600)
    assert proc.returncode == 0, Brink.describe(proc)
    ratio4 = os.path.getsize(out4) / os.path.getsize(src)
    print(f"size: encoder_6x384 int4 --int4-embeddings {os.path.getsize(out4)} bytes, {ratio4:.3f}x")
    assert ratio4 <= 0.16


def test_int4_matmul_model_size(brink, tmp_path):
    """A model of nothing but big MatMuls (the FFN of a d=384 transformer layer): <= 0.16x."""
    inits = [_init("w1", 384, 1536, scale=0.05), _init("w2", 1536, 384, scale=0.05)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], "ff1"), helper.make_node("Relu", ["h"], ["r"], "relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], "ff2")]
    graph = helper.make_graph(nodes, "ffn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 384])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 384])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src, out = tmp_path / "ffn.onnx", tmp_path / "ffn_int4.onnx"
    onnx.save(model, str(src))
    proc = brink("quantize", src, "-o", out, "--mode", "int4")
    assert proc.returncode == 0, Brink.describe(proc)
    ratio = os.path.getsize(out) / os.path.getsize(src)
    assert ratio <= 0.16, ratio
    x = np.random.default_rng(3).standard_normal((8, 384)).astype(np.float32)
    assert cosine(ort_run(src, {"x": x}), brink_run(brink, out, x, tmp_path, "ffn")) > 0.99


@pytest.mark.parametrize("int4_embeddings", [False, True])
def test_int4_embedding_table(brink, tmp_path, int4_embeddings):
    """A Gather of a 2 MiB embedding table becomes int8 rows with a scale each (Gather, Cast,
    Mul), or with --int4-embeddings ORT's GatherBlockQuantized (4-bit blocks along each row);
    the MatMul after it MatMulNBits; ORT and Brink agree on the result."""
    inits = [_init("table", 2048, 256), _init("w", 256, 64, scale=0.1)]
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], "embed"),
             helper.make_node("MatMul", ["e", "w"], ["y"], "proj")]
    graph = helper.make_graph(nodes, "embed", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src, out, report = tmp_path / "embed.onnx", tmp_path / "embed_int4.onnx", tmp_path / "r.json"
    onnx.save(model, str(src))
    proc = brink("quantize", src, "-o", out, "--mode", "int4", "--report", report,
                 *(["--int4-embeddings"] if int4_embeddings else []))
    assert proc.returncode == 0, Brink.describe(proc)
    layers = {l["op"]: l for l in json.loads(report.read_text())["layers"]}
    assert layers["MatMul"]["precision"] == "w4-b32"
    if int4_embeddings:
        assert layers["Gather"]["precision"] == "w4-b32"
        assert layers["Gather"]["weight_bytes_after"] == 2048 * 128 + 2048 * 8 * 4
        assert [n.op_type for n in onnx.load(str(out)).graph.node] == ["GatherBlockQuantized", "MatMulNBits"]
    else:
        assert layers["Gather"]["precision"] == "w8-row"
        assert layers["Gather"]["weight_bytes_after"] == 2048 * 256 + 2048 * 4
    ids = np.array([[0, 5, 2047, 9, 5, 100, 1]], np.int64)
    y_fp32, y_ort = ort_run(src, {"ids": ids}), ort_run(out, {"ids": ids})
    np.savez(tmp_path / "in.npz", ids=ids)
    proc = brink("run", out, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o")
    assert proc.returncode == 0, Brink.describe(proc)
    y_brink = np.load(tmp_path / "o" / "y.npy")
    np.testing.assert_allclose(y_brink, y_ort, rtol=0, atol=1e-4 * np.abs(y_ort).max())
    assert cosine(y_fp32, y_brink) > 0.99
