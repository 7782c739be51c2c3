"""Quantized (QDQ) models on Brink's integer kernels, against ONNX Runtime on the same model.

ONNX Runtime's own quantizer (`quantize_static`, QDQ format, per-channel int8 weights, uint8
activations) quantizes small CNNs exported from PyTorch: every layer kind a quantized CNN
has (Conv + ReLU / ReLU6, depthwise, grouped and strided convs, residual Add, MaxPool,
GlobalAveragePool, Flatten, Linear). Brink must fuse the QDQ patterns into its integer ops
(brink.QConv, brink.QAdd, QLinearGlobalAveragePool: `brink info` says so) and agree with ONNX
Runtime, which fuses the same patterns into its own integer kernels: both round once per
layer, so outputs match to a few quantization steps of the output.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort_quant = pytest.importorskip("onnxruntime.quantization")

import brink as brink_py  # noqa: E402  (the `brink` fixture is the CLI)
import onnxruntime as ort  # noqa: E402


class _Block(torch.nn.Module):
    def __init__(self, c: int, mid: int, stride: int, relu6: bool):
        super().__init__()
        act = torch.nn.ReLU6 if relu6 else torch.nn.ReLU
        self.expand = torch.nn.Sequential(torch.nn.Conv2d(c, mid, 1, bias=False), torch.nn.BatchNorm2d(mid), act())
        self.dw = torch.nn.Sequential(torch.nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
                                      torch.nn.BatchNorm2d(mid), act())
        self.project = torch.nn.Sequential(torch.nn.Conv2d(mid, c, 1, bias=False), torch.nn.BatchNorm2d(c))
        self.residual = stride == 1

    def forward(self, x):
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.residual else y


class SmallNet(torch.nn.Module):
    """Every layer kind of a quantized CNN, at awkward channel counts."""

    def __init__(self, relu6: bool):
        super().__init__()
        act = torch.nn.ReLU6 if relu6 else torch.nn.ReLU
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 13, 3, 2, 1), torch.nn.BatchNorm2d(13), act())
        self.pool = torch.nn.MaxPool2d(3, 2, 1)
        self.b1 = _Block(13, 40, 1, relu6)
        self.b2 = _Block(13, 40, 2, relu6)
        self.grouped = torch.nn.Sequential(torch.nn.Conv2d(13, 24, 3, 1, 1, groups=1), act(),
                                           torch.nn.Conv2d(24, 24, 3, 1, 2, dilation=2, groups=4), act())
        self.head = torch.nn.Linear(24, 10)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = self.b2(self.b1(x))
        x = self.grouped(x)
        x = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


def _quantized_model(tmp_path, relu6: bool, size: int = 37):
    torch.manual_seed(3 if relu6 else 4)
    net = SmallNet(relu6).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    fp32 = str(tmp_path / "fp32.onnx")
    torch.onnx.export(net, torch.randn(1, 3, size, size), fp32, input_names=["x"], output_names=["y"],
                      opset_version=17)
    rng = np.random.default_rng(7)
    calib = [{"x": rng.standard_normal((1, 3, size, size)).astype(np.float32)} for _ in range(8)]

    class Reader(ort_quant.CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    q = str(tmp_path / "int8.onnx")
    ort_quant.quantize_static(fp32, q, Reader(), quant_format=ort_quant.QuantFormat.QDQ, per_channel=True,
                              activation_type=ort_quant.QuantType.QUInt8,
                              weight_type=ort_quant.QuantType.QInt8)
    return fp32, q, rng


def _ort(path: str, feed):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feed)[0]


@pytest.mark.parametrize("relu6", [False, True], ids=["relu", "relu6"])
def test_qdq_model_runs_on_integer_ops_and_matches_onnxruntime(brink, tmp_path, relu6):
    fp32, q, rng = _quantized_model(tmp_path, relu6)
    sess = brink_py.InferenceSession(q)
    ops = brink.json("info", q, "--json")["optimization"]["ops"]
    assert ops.get("brink.QConv", 0) == 9, ops  # every convolution
    assert ops.get("brink.QAdd", 0) == 1, ops
    assert ops.get("com.microsoft.QLinearGlobalAveragePool", 0) == 1, ops
    assert ops.get("com.microsoft.QGemm", 0) == 1, ops  # the classifier
    assert "Conv" not in ops and "brink.Conv" not in ops, ops
    worst = 0.0
    for _ in range(4):
        x = rng.standard_normal((1, 3, 37, 37)).astype(np.float32)
        got = sess.run(None, {"x": x})[0]
        want = _ort(q, {"x": x})
        ref = _ort(fp32, {"x": x})
        assert got.shape == want.shape and got.dtype == want.dtype
        # The output's quantization step (the model ends in Q -> DQ).
        step = float(np.min(np.diff(np.unique(want)))) if np.unique(want).size > 1 else 1.0
        worst = max(worst, float(np.abs(got - want).max()) / step)
        cos = float(np.dot(got.ravel(), ref.ravel()) / (np.linalg.norm(got) * np.linalg.norm(ref)))
        assert cos > 0.98, f"cosine to FP32 {cos}"
    assert worst <= 3, f"Brink and ONNX Runtime differ by {worst} output steps"


def test_qdq_model_is_the_same_on_every_isa(brink, tmp_path):
    """The integer kernels of every ISA this machine has give the same bytes (BRINK_ISA caps the
    kernels a process uses, so each ISA runs in its own `brink run`; `--int8-kernels integer`,
    since the default may pick the float kernels for small layers where they measure faster)."""
    import os
    import subprocess
    _, q, rng = _quantized_model(tmp_path, relu6=True, size=29)
    x = rng.standard_normal((1, 3, 29, 29)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for isa in ["portable"] + [i for i in brink_py.available_isas() if i != "portable"]:
        out_dir = tmp_path / isa
        proc = subprocess.run([brink.path, "run", q, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
                               str(out_dir), "--threads", "2", "--int8-kernels", "integer"],
                              capture_output=True, text=True,
                              env={**os.environ, "BRINK_ISA": isa}, timeout=120)
        assert proc.returncode == 0, brink.describe(proc)
        outs[isa] = np.load(out_dir / "y.npy")
    assert len(outs) >= 2
    for isa, y in outs.items():
        np.testing.assert_array_equal(y, outs["portable"], err_msg=f"ISA {isa}")


def test_int8_kernels_choice_agrees_with_onnxruntime(brink, tmp_path):
    """`--int8-kernels float` runs brink.QConv on the float kernels (dequantize, FP32 conv,
    quantize), `faster` picks per small layer by measuring both at load: every choice stays
    within a few output steps of ONNX Runtime, and the profile names the kernel each layer ran."""
    _, q, rng = _quantized_model(tmp_path, relu6=False, size=29)
    x = rng.standard_normal((1, 3, 29, 29)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    want = _ort(q, {"x": x})
    step = float(np.min(np.diff(np.unique(want))))
    for choice in ["integer", "float", "faster"]:
        out_dir = tmp_path / choice
        proc = brink("run", q, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(out_dir),
                     "--int8-kernels", choice)
        assert proc.returncode == 0, brink.describe(proc)
        got = np.load(out_dir / "y.npy")
        assert float(np.abs(got - want).max()) / step <= 3, choice
    layers = brink.json("bench", q, "--int8-kernels", "float", "--iterations", "2", "--warmup", "0",
                        "--profile", "--json")["layers"]
    kernels = [layer["kernel"] for layer in layers if layer["op_type"] == "QConv"]
    assert kernels and any(k.startswith("fp32") for k in kernels), kernels
    layers = brink.json("bench", q, "--int8-kernels", "integer", "--iterations", "2", "--warmup", "0",
                        "--profile", "--json")["layers"]
    assert all(layer["kernel"] == "" for layer in layers), layers
    brink.expect_error("run", q, "--random", "--int8-kernels", "fastest", mentions=["--int8-kernels"])
