"""brink quantize from the command line: the int8 QDQ model runs in ONNX Runtime and agrees with
Brink running the same model, stays close to FP32, and has the layout of ORT's own
quantize_static (same int8 / int32 initializers, same QuantizeLinear / DequantizeLinear counts);
int8-dynamic and fp16 models run in ORT; the report's fields; bad input is refused with one line
on stderr, a non-zero exit, no output file and the input model untouched.
(tests/unit/quantize_test.cc covers calibration methods and the layout node by node.)"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from conftest import Brink, check_clean_failure

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# Each model builder draws its weights from its own seeded generator, so a model is the same
# whichever tests (here or in modules importing these builders) ran before.
RNG = np.random.default_rng(0)


def _init(name, *shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _reseed(seed):
    global RNG
    RNG = np.random.default_rng(seed)


def small_cnn() -> onnx.ModelProto:
    """x[1,3,16,16] -> Conv+Relu -> MaxPool -> Conv+Relu -> Add(residual) -> Conv(s2)+Relu
    -> GlobalAveragePool -> Flatten -> Gemm(transB) -> y[1,10]"""
    _reseed(0)
    inits = [_init("w1", 8, 3, 3, 3), _init("b1", 8, scale=0.1), _init("w2", 8, 8, 3, 3, scale=0.15),
             _init("b2", 8, scale=0.1), _init("w3", 16, 8, 3, 3, scale=0.15), _init("b3", 16, scale=0.1),
             _init("wf", 10, 16), _init("bf", 10, scale=0.1)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], "relu2"),
        helper.make_node("Add", ["p1", "r2"], ["s"], "add"),
        helper.make_node("Conv", ["s", "w3", "b3"], ["c3"], "conv3", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c3"], ["r3"], "relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["f"], "flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], "fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "small_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def mixed_cnn() -> onnx.ModelProto:
    """Conv without bias, Relu read twice, Mul of two activations, Concat, Clip, Mul by a
    constant, AveragePool, Transpose, Reshape, MatMul: ORT's generic, removable-activation and
    shared-parameter rules all show up."""
    inits = [_init("w1", 8, 3, 3, 3), _init("b1", 8), _init("w2", 8, 3, 1, 1), _init("w3", 16, 16, 3, 3, scale=0.1),
             _init("k", 1, 16, 1, 1), _init("wm", 64, 10), numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["c2"], "conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], "relu2"),
        helper.make_node("Mul", ["c1", "r2"], ["m"], "mul"),
        helper.make_node("Concat", ["m", "r2"], ["cc"], "concat", axis=1),
        helper.make_node("Conv", ["cc", "w3"], ["c3"], "conv3", pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c3"], ["r3"], "clip"),
        helper.make_node("Mul", ["r3", "k"], ["mk"], "scale"),
        helper.make_node("AveragePool", ["mk"], ["ap"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["ap"], ["t"], "nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["flat"], "flatten"),
        helper.make_node("MatMul", ["flat", "wm"], ["y"], "fc"),
    ]
    graph = helper.make_graph(nodes, "mixed_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def small_mlp() -> onnx.ModelProto:
    """x[4,32] -> MatMul(32x64) -> Add -> Relu -> Gemm(transB, 16) -> y: int8-dynamic targets."""
    _reseed(1)
    inits = [_init("w1", 32, 64, scale=0.2), _init("c1", 64, scale=0.1), _init("w2", 16, 64, scale=0.2),
             _init("c2", 16, scale=0.1)]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], "mm"),
        helper.make_node("Add", ["h", "c1"], ["h1"], "bias"),
        helper.make_node("Relu", ["h1"], ["h2"], "relu"),
        helper.make_node("Gemm", ["h2", "w2", "c2"], ["y"], "fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "small_mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def calib_images(n=16, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 1, 3, 16, 16)).astype(np.float32)


def ort_run(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    d = tmp_path_factory.mktemp("qcnn")
    onnx.save(small_cnn(), d / "cnn.onnx")
    np.savez(d / "calib.npz", x=calib_images())
    return d


@pytest.fixture(scope="module")
def quantized(brink, cnn):
    out = cnn / "cnn.int8.onnx"
    proc = brink("quantize", cnn / "cnn.onnx", "-o", out, "--calib", cnn / "calib.npz",
                 "--report", cnn / "report.json")
    assert proc.returncode == 0, Brink.describe(proc)
    return out


def test_int8_runs_in_ort_close_to_fp32_and_agrees_with_brink(brink, cnn, quantized, tmp_path):
    onnx.checker.check_model(onnx.load(quantized))
    x = calib_images(4, seed=9)
    for i in range(len(x)):
        feed = {"x": x[i]}
        y_fp32 = ort_run(cnn / "cnn.onnx", feed)
        y_ort = ort_run(quantized, feed)
        assert cosine(y_fp32, y_ort) > 0.99
        np.savez(tmp_path / "in.npz", x=x[i])
        outdir = tmp_path / f"out{i}"
        proc = brink("run", quantized, "--inputs", tmp_path / "in.npz", "-o", outdir)
        assert proc.returncode == 0, Brink.describe(proc)
        y_brink = np.load(outdir / "y.npy")
        model = onnx.load(quantized)
        y_scale = [numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "y_scale"][0]
        assert np.max(np.abs(y_brink - y_ort)) <= 2 * float(y_scale) + 1e-6


def test_int8_layout_matches_ort_quantize_static(cnn, quantized, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": x} for x in calib_images()])

        def get_next(self):
            return next(self.it, None)

    ref = tmp_path / "ort.int8.onnx"
    quantize_static(str(cnn / "cnn.onnx"), str(ref), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)

    def layout(path):
        m = onnx.load(path)
        ops = [n.op_type for n in m.graph.node]
        by_type = {}
        for t in m.graph.initializer:
            by_type.setdefault(t.data_type, set()).add(t.name)
        return {"q": ops.count("QuantizeLinear"), "dq": ops.count("DequantizeLinear"),
                "int8": by_type.get(TensorProto.INT8, set()) - {n for n in by_type.get(TensorProto.INT8, set())
                                                                if n.endswith("zero_point")},
                "int32": by_type.get(TensorProto.INT32, set()) - {n for n in by_type.get(TensorProto.INT32, set())
                                                                  if "zero_point" in n},
                "float_ops": sorted(o for o in ops if o not in ("QuantizeLinear", "DequantizeLinear"))}

    ours, theirs = layout(quantized), layout(ref)
    assert ours == theirs
    ort_out = ort_run(ref, {"x": calib_images(1, seed=3)[0]})
    our_out = ort_run(quantized, {"x": calib_images(1, seed=3)[0]})
    assert cosine(ort_out, our_out) > 0.995


def test_mixed_ops_layout_matches_ort_quantize_static(brink, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    onnx.save(mixed_cnn(), tmp_path / "mixed.onnx")
    x = np.random.default_rng(3).uniform(-1, 1, (8, 1, 3, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    proc = brink("quantize", tmp_path / "mixed.onnx", "-o", tmp_path / "ours.onnx", "--calib", tmp_path / "calib.npz")
    assert proc.returncode == 0, Brink.describe(proc)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": s} for s in x])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(tmp_path / "mixed.onnx"), str(tmp_path / "ort.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    ours, theirs = onnx.load(tmp_path / "ours.onnx"), onnx.load(tmp_path / "ort.onnx")
    ops = lambda m: sorted(n.op_type for n in m.graph.node)
    assert ops(ours) == ops(theirs)
    quantized = lambda m: {t.name for t in m.graph.initializer
                           if t.data_type in (TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32)
                           and "zero_point" not in t.name}
    assert quantized(ours) == quantized(theirs)
    assert cosine(ort_run(tmp_path / "ours.onnx", {"x": x[0]}), ort_run(tmp_path / "ort.onnx", {"x": x[0]})) > 0.995


def test_report_fields(cnn, quantized):
    report = json.loads((cnn / "report.json").read_text())
    assert report["mode"] == "int8" and report["method"] == "minmax"
    assert report["weights"] == "per-channel" and report["activations"] == "u8"
    names = {layer["name"] for layer in report["layers"]}
    assert {"conv1", "conv2", "conv3", "add", "gap", "fc"} <= names
    for layer in report["layers"]:
        assert layer["cosine"] > 0.95, layer
        assert layer["sqnr_db"] > 10, layer
    conv1 = next(layer for layer in report["layers"] if layer["name"] == "conv1")
    assert conv1["weight_bytes_before"] == (8 * 3 * 3 * 3 + 8) * 4
    assert conv1["weight_bytes_after"] < conv1["weight_bytes_before"]
    assert report["outputs"][0]["name"] == "y" and report["outputs"][0]["cosine"] > 0.99
    assert report["totals"]["file_bytes_after"] == os.path.getsize(quantized)
    assert report["totals"]["file_bytes_before"] == os.path.getsize(cnn / "cnn.onnx")


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse"])
def test_methods_and_options_run_in_ort(brink, cnn, tmp_path, method):
    out = tmp_path / f"{method}.onnx"
    extra = ["--per-tensor", "--activation-type", "s8"] if method == "mse" else []
    proc = brink("quantize", cnn / "cnn.onnx", "-o", out, "--calib", cnn / "calib.npz", "--method", method,
                 "--samples", "8", *extra)
    assert proc.returncode == 0, Brink.describe(proc)
    x = calib_images(1, seed=5)[0]
    assert cosine(ort_run(cnn / "cnn.onnx", {"x": x}), ort_run(out, {"x": x})) > 0.98


def test_calibration_folder_of_npy(brink, cnn, tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    imgs = calib_images(6)
    for i in range(3):
        np.save(folder / f"{i:03d}.npy", imgs[2 * i:2 * i + 2])  # batches [2, 1, 3, 16, 16]
    out = tmp_path / "q.onnx"
    proc = brink("quantize", cnn / "cnn.onnx", "-o", out, "--calib", folder)
    assert proc.returncode == 0, Brink.describe(proc)
    assert out.exists()


def test_dynamic_and_fp16_run_in_ort(brink, cnn, tmp_path):
    onnx.save(small_mlp(), tmp_path / "mlp.onnx")
    out = tmp_path / "mlp.dyn.onnx"
    proc = brink("quantize", tmp_path / "mlp.onnx", "-o", out, "--mode", "int8-dynamic")
    assert proc.returncode == 0, Brink.describe(proc)
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("MatMulInteger") == 2 and ops.count("DynamicQuantizeLinear") == 2
    x = np.random.default_rng(2).standard_normal((4, 32)).astype(np.float32)
    assert cosine(ort_run(tmp_path / "mlp.onnx", {"x": x}), ort_run(out, {"x": x})) > 0.99

    half = tmp_path / "cnn.fp16.onnx"
    proc = brink("quantize", cnn / "cnn.onnx", "-o", half, "--mode", "fp16")
    assert proc.returncode == 0, Brink.describe(proc)
    m = onnx.load(half)
    assert any(t.data_type == TensorProto.FLOAT16 for t in m.graph.initializer)
    assert os.path.getsize(half) < os.path.getsize(cnn / "cnn.onnx")
    x = calib_images(1, seed=4)[0]
    np.testing.assert_allclose(ort_run(half, {"x": x}), ort_run(cnn / "cnn.onnx", {"x": x}), atol=2e-2)


def masked_attention(mask_value: float) -> onnx.ModelProto:
    """Scores x[2,8] @ W plus an additive attention mask (1 - m) * mask_value, then Softmax and
    a LayerNorm'd residual: the layout of a transformer's attention scores."""
    inits = [_init("wq", 8, 8), _init("wo", 8, 8), _init("g", 8), _init("be", 8, scale=0.1),
             numpy_helper.from_array(np.array(1, np.float32), "one"),
             numpy_helper.from_array(np.array(mask_value, np.float32), "minus_inf")]
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["scores"], "q"),
        helper.make_node("Sub", ["one", "m"], ["inv"], "inv"),
        helper.make_node("Mul", ["inv", "minus_inf"], ["mask"], "mask"),
        helper.make_node("Add", ["scores", "mask"], ["masked"], "add_mask"),
        helper.make_node("Softmax", ["masked"], ["p"], "softmax", axis=-1),
        helper.make_node("MatMul", ["p", "wo"], ["o"], "o"),
        helper.make_node("Add", ["o", "x"], ["res"], "residual"),
        helper.make_node("LayerNormalization", ["res", "g", "be"], ["y"], "ln", axis=-1),
    ]
    graph = helper.make_graph(nodes, "masked_attention",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8]),
                               helper.make_tensor_value_info("m", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _mask_feeds(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 8)).astype(np.float32)
    m = np.ones((n, 2, 8), np.float32)
    for i in range(n):  # padded rows: the last 1..5 positions masked
        m[i, :, 8 - 1 - i % 5:] = 0
    return x, m


@pytest.mark.parametrize("mask_value,rule", [(-1e9, "beyond +-1e6"), (-3.4e38, "beyond +-1e6"),
                                             (-1e4, "swamps Add 'add_mask'")])
def test_attention_mask_stays_float(brink, tmp_path, mask_value, rule):
    """A mask Add's range (the mask's "minus infinity") cannot be carried in 8 bits: the mask
    tensor and the Add stay float, with a warning; the residual Add feeding LayerNorm is float;
    the output stays close to FP32 (it collapses when the mask is quantized)."""
    model = tmp_path / "att.onnx"
    onnx.save(masked_attention(mask_value), model)
    x, m = _mask_feeds(16, 1)
    np.savez(tmp_path / "calib.npz", x=x, m=m)
    out = tmp_path / "att.int8.onnx"
    proc = brink("quantize", model, "-o", out, "--calib", tmp_path / "calib.npz", "--report",
                 tmp_path / "r.json")
    assert proc.returncode == 0, Brink.describe(proc)
    assert "warning: tensor 'mask' left float" in proc.stderr, Brink.describe(proc)
    assert rule in proc.stderr, Brink.describe(proc)
    assert "1 Adds feeding LayerNormalization (residual stream) kept float" in proc.stdout, proc.stdout
    report = json.load(open(tmp_path / "r.json"))
    assert any("'mask' left float" in w for w in report["warnings"]), report["warnings"]
    q = onnx.load(out)
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert "mask" not in quantized and "masked" not in quantized, quantized
    assert "x" in quantized and "p" in quantized, quantized  # the MatMuls stay int8
    nodes = {n.name: n for n in q.graph.node}
    assert list(nodes["add_mask"].input)[1] == "mask"
    assert list(nodes["residual"].input) == ["o", "x"], nodes["residual"].input  # float reads
    int8 = {t.name for t in q.graph.initializer if t.data_type == TensorProto.INT8}
    assert {"wq_quantized", "wo_quantized"} <= int8, int8
    xt, mt = _mask_feeds(8, 7)
    for i in range(len(xt)):
        feed = {"x": xt[i], "m": mt[i]}
        assert cosine(ort_run(model, feed), ort_run(out, feed)) > 0.99


def pre_ln_decomposed() -> onnx.ModelProto:
    """Two pre-LN blocks on x[4, 8] with the decomposed LayerNorm of older exports
    ((x - ReduceMean(x)) / Sqrt(ReduceMean((x - mean)^2) + eps) * g + b): res = x + MatMul(LN(x));
    out = res + MatMul(LN(res)); y = LayerNormalization(out)."""
    inits = [_init("w1", 8, 8), _init("w2", 8, 8), _init("g", 8), _init("be", 8, scale=0.1),
             numpy_helper.from_array(np.array(2, np.float32), "two"),
             numpy_helper.from_array(np.array(1e-5, np.float32), "eps")]
    nodes = []

    def ln(x, p):
        nodes.extend([
            helper.make_node("ReduceMean", [x], [p + "_mean"], p + "_mean", axes=[-1]),
            helper.make_node("Sub", [x, p + "_mean"], [p + "_c"], p + "_sub"),
            helper.make_node("Pow", [p + "_c", "two"], [p + "_sq"], p + "_pow"),
            helper.make_node("ReduceMean", [p + "_sq"], [p + "_var"], p + "_var", axes=[-1]),
            helper.make_node("Add", [p + "_var", "eps"], [p + "_ve"], p + "_eps"),
            helper.make_node("Sqrt", [p + "_ve"], [p + "_sd"], p + "_sqrt"),
            helper.make_node("Div", [p + "_c", p + "_sd"], [p + "_n"], p + "_div"),
            helper.make_node("Mul", [p + "_n", "g"], [p + "_gn"], p + "_gamma"),
            helper.make_node("Add", [p + "_gn", "be"], [p], p + "_beta")])
        return p

    nodes.append(helper.make_node("MatMul", [ln("x", "n1"), "w1"], ["h1"], "mm1"))
    nodes.append(helper.make_node("Add", ["x", "h1"], ["res"], "res"))
    nodes.append(helper.make_node("MatMul", [ln("res", "n2"), "w2"], ["h2"], "mm2"))
    nodes.append(helper.make_node("Add", ["res", "h2"], ["out"], "out"))
    nodes.append(helper.make_node("LayerNormalization", ["out", "g", "be"], ["y"], "ln", axis=-1))
    graph = helper.make_graph(nodes, "pre_ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_pre_ln_residual_stream_stays_float(brink, tmp_path):
    """Pre-LN blocks with decomposed LayerNorms: the residual Adds (read by a LayerNorm and the
    next residual Add, or by the final LayerNormalization) stay float and read float tensors;
    the MatMuls stay int8."""
    model = tmp_path / "preln.onnx"
    onnx.save(pre_ln_decomposed(), model)
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((8, 4, 8)) * [1, 1, 1, 20, 1, 1, 1, 1]).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "preln.int8.onnx"
    proc = brink("quantize", model, "-o", out, "--calib", tmp_path / "calib.npz")
    assert proc.returncode == 0, Brink.describe(proc)
    assert "2 Adds feeding LayerNormalization (residual stream) kept float" in proc.stdout, proc.stdout
    assert "warning" not in proc.stderr, proc.stderr
    q = onnx.load(out)
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert not quantized & {"x", "res", "out", "h1", "h2"}, quantized
    assert {"n1", "n2"} <= quantized, quantized
    nodes = {n.name: n for n in q.graph.node}
    assert list(nodes["res"].input) == ["x", "h1"] and list(nodes["out"].input) == ["res", "h2"]
    for i in range(4):
        feed = {"x": x[i]}
        assert cosine(ort_run(model, feed), ort_run(out, feed)) > 0.99


def _expect_refused(brink, model, out, *args, mentions=()):
    before = sha(model)
    proc = brink("quantize", model, "-o", out, *args)
    check_clean_failure(proc)
    for m in mentions:
        assert m in proc.stderr, Brink.describe(proc)
    assert not os.path.exists(out), "an output file was left behind"
    assert sha(model) == before, "the input model changed"
    leftovers = [f for f in os.listdir(os.path.dirname(out)) if f.startswith(os.path.basename(out))]
    assert not leftovers, leftovers


def test_bad_input_is_refused_cleanly(brink, cnn, tmp_path):
    model = cnn / "cnn.onnx"
    out = tmp_path / "never.onnx"
    _expect_refused(brink, model, out, "--calib", cnn / "calib.npz", "--mode", "int3", mentions=["int3"])
    _expect_refused(brink, model, out, "--calib", cnn / "calib.npz", "--method", "kl", mentions=["kl"])
    _expect_refused(brink, model, out, mentions=["--calib"])  # int8 needs data
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 8, 8), np.float32))
    _expect_refused(brink, model, out, "--calib", tmp_path / "wrong.npy", mentions=["wrong.npy"])
    np.save(tmp_path / "ints.npy", np.zeros((4, 1, 3, 16, 16), np.int64))
    _expect_refused(brink, model, out, "--calib", tmp_path / "ints.npy", mentions=["int64", "float32"])
    bad = calib_images(2)
    bad[1, 0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    _expect_refused(brink, model, out, "--calib", tmp_path / "nan.npy", mentions=["non-finite"])
    (tmp_path / "empty").mkdir()
    _expect_refused(brink, model, out, "--calib", tmp_path / "empty", mentions=["no .npy or .npz"])
    np.savez(tmp_path / "misnamed.npz", a=calib_images(2), b=calib_images(2))
    _expect_refused(brink, model, out, "--calib", tmp_path / "misnamed.npz", mentions=["'x'"])
    # No quantizable layer.
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "sig",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    sig = tmp_path / "sig.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), sig)
    np.save(tmp_path / "sig.npy", np.zeros((2, 1, 4), np.float32))
    _expect_refused(brink, sig, out, "--calib", tmp_path / "sig.npy", mentions=["no Conv/MatMul/Gemm"])
    _expect_refused(brink, sig, out, "--mode", "int8-dynamic", mentions=["MatMul"])
    # Writing over the input model is refused.
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(model.read_bytes())
    before = sha(copy)
    proc = brink("quantize", copy, "-o", copy, "--calib", cnn / "calib.npz")
    check_clean_failure(proc)
    assert sha(copy) == before


def test_digits_cnn_keeps_its_accuracy(brink, tmp_path):
    """The embedded default model (Conv+Relu+MaxPool x2, Flatten, Gemm; symbolic batch),
    calibrated on 100 of its test images (the .npz also holds `label`, which is not an input):
    top-1 accuracy in ORT within 1 point of FP32, and the same layout as ORT's quantize_static."""
    from conftest import MODELS_DIR
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = os.path.join(MODELS_DIR, "digits_cnn.onnx")
    data = os.path.join(MODELS_DIR, "digits_test.npz")
    out = tmp_path / "digits.int8.onnx"
    proc = brink("quantize", model, "-o", out, "--calib", data, "--samples", "100", "--method", "percentile")
    assert proc.returncode == 0, Brink.describe(proc)
    test = np.load(data)
    images, labels = test["image"], test["label"]

    def accuracy(path):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = np.concatenate([sess.run(None, {"image": images[i:i + 50]})[0] for i in range(0, len(images), 50)])
        return float(np.mean(np.argmax(logits, axis=1) == labels))

    fp32, int8 = accuracy(model), accuracy(out)
    assert int8 >= fp32 - 0.01, (fp32, int8)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": images[i:i + 1]} for i in range(100)])

        def get_next(self):
            return next(self.it, None)

    ref = tmp_path / "digits.ort.onnx"
    quantize_static(model, str(ref), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    ours, theirs = onnx.load(out), onnx.load(ref)
    for op in ("QuantizeLinear", "DequantizeLinear", "Relu", "Conv", "Gemm", "MaxPool"):
        assert sum(n.op_type == op for n in ours.graph.node) == sum(n.op_type == op for n in theirs.graph.node), op
    int8_names = lambda m: {t.name for t in m.graph.initializer if t.data_type == TensorProto.INT8 and t.dims}
    assert int8_names(ours) == int8_names(theirs)
