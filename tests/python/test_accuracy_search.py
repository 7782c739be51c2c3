"""brink quantize --accuracy-target / --mode mixed (src/quant/accuracy_search.h) on a real trained
model and real data: the digits CNN (scripts/models/train_digits_cnn.py, scikit-learn's
handwritten digits, cached under tests/python/.generated/real/).

- a strict target (cosine 0.99999, or per-tensor s8 activations that lose top-1 points) makes
  layers fall back to float; the target then holds when `brink eval` measures it on its own;
  the written model loads in ONNX Runtime and agrees with Brink running it;
- a target already met -> no fallback; an impossible one -> one clear error line, no output;
- --mode mixed falls back to fp16 weights (float16 initializer + Cast) first;
- bad arguments -> one-line errors, no output file.
The measured numbers are printed (pytest -s) with the prefix "fallback:".
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT, check_clean_failure

sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))
import train_digits_cnn  # noqa: E402

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto  # noqa: E402

DIGITS_DIR = os.path.join(ROOT, "tests", "python", ".generated", "real", "digits_cnn")


@pytest.fixture(scope="module")
def digits():
    if train_digits_cnn.read_meta(DIGITS_DIR) is None:  # training needs torch and scikit-learn
        pytest.importorskip("torch")
        pytest.importorskip("sklearn")
    train_digits_cnn.ensure(DIGITS_DIR)
    d = DIGITS_DIR
    return {"model": os.path.join(d, "model.onnx"), "calib": os.path.join(d, "calib.npz"),
            "test": os.path.join(d, "test.npz"), "labels": os.path.join(d, "test_labels.npy")}


def _quantize(brink, digits, out, report, *args):
    proc = brink("quantize", digits["model"], "-o", out, "--calib", digits["calib"], "--eval", digits["test"],
                 "--report", report, "--threads", "1", *args, timeout=600)
    assert proc.returncode == 0, brink.describe(proc)
    return proc, json.loads(open(report).read())


def _eval(brink, digits, out):
    return brink.json("eval", digits["model"], out, "--data", digits["test"], "--labels", digits["labels"],
                      "--json", timeout=600)


def _agrees_with_ort(brink, out, tmp_path):
    """ONNX Runtime loads the written model; its logits on the 450 test images agree with Brink's."""
    images = np.load(os.path.join(DIGITS_DIR, "test.npz"))["image"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {"image": images})[0]
    np.savez(tmp_path / "in.npz", image=images)
    proc = brink("run", out, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "brink_out")
    assert proc.returncode == 0, brink.describe(proc)
    y_brink = np.load(tmp_path / "brink_out" / "logits.npy")
    assert y_brink.shape == y_ort.shape == (450, 10)
    a, b = y_ort.ravel().astype(np.float64), y_brink.ravel().astype(np.float64)
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.999
    assert np.mean(np.argmax(y_ort, 1) == np.argmax(y_brink, 1)) >= 0.99


def test_strict_cosine_target_falls_back_and_holds(brink, digits, tmp_path):
    out, report = tmp_path / "fallback.onnx", tmp_path / "r.json"
    proc, r = _quantize(brink, digits, out, report, "--accuracy-target", "0.99999")
    acc = r["accuracy"]
    fallen = [layer for layer in r["layers"] if layer["precision"] == "fp32 (fallback)"]
    print(f"\nfallback: digits CNN int8, cosine target {acc['target']}: {acc['before_fallback']:.6f} with every "
          f"layer int8 -> {acc['after_fallback']:.6f} with {len(fallen)} of {acc['layers']} layers in fp32 "
          f"({', '.join(layer['name'] for layer in fallen)}); {acc['evaluations']} evaluations in "
          f"{acc['seconds']:.2f} s; weights {acc['weight_bytes_before_fallback']} -> "
          f"{acc['weight_bytes_after_fallback']} bytes")
    assert acc["metric"] == "cosine" and acc["direction"] == ">="
    assert acc["before_fallback"] < 0.99999 <= acc["after_fallback"] and acc["met"]
    assert len(fallen) == acc["layers_fp32"] >= 1 and acc["layers_fp16"] == 0
    assert len(fallen) < acc["layers"]
    assert all("sensitivity_db" in layer for layer in r["layers"])
    # The most sensitive layer fell back first.
    most = max(r["layers"], key=lambda layer: layer["sensitivity_db"])
    assert most["precision"] == "fp32 (fallback)"
    assert acc["weight_bytes_after_fallback"] > acc["weight_bytes_before_fallback"]
    assert "fp32 (fallback)" in proc.stdout and "sensitivity dB" in proc.stdout
    assert "accuracy target: cosine >= 0.99999" in proc.stdout
    # The fallen-back layers' weights are float in the file; the others stay int8.
    m = onnx.load(out)
    inits = {t.name: t.data_type for t in m.graph.initializer}
    assert TensorProto.INT8 in inits.values() and TensorProto.FLOAT in inits.values()
    nodes = {n.name: n for n in m.graph.node}
    producer = {o: n.op_type for n in m.graph.node for o in n.output}
    weighted = [nodes[layer["name"]] for layer in fallen if layer["op"].split("+")[0] in ("Conv", "Gemm")]
    assert weighted and all(inits.get(n.input[1]) == TensorProto.FLOAT for n in weighted)
    # A float layer next to a quantized one reads that neighbour's DequantizeLinear output.
    assert any(producer.get(n.input[0]) == "DequantizeLinear" for n in weighted)
    # brink eval, on its own, finds the target met.
    e = _eval(brink, digits, out)
    assert e["outputs"][0]["cosine_mean"] >= 0.99999
    assert abs(e["outputs"][0]["cosine_mean"] - acc["after_fallback"]) < 1e-6
    _agrees_with_ort(brink, out, tmp_path)


def test_doubling_groups_and_bisection(brink, digits, tmp_path):
    # With at most 2 layers searched one at a time, the 10 layers fall back in doubling groups
    # (1, 2, 4, 8) and a bisection then finds the smallest count that meets the target.
    out, report = tmp_path / "groups.onnx", tmp_path / "r.json"
    proc, r = _quantize(brink, digits, out, report, "--accuracy-target", "0.99999", "--fallback-linear-limit", "2")
    acc = r["accuracy"]
    print(f"\nfallback: doubling + bisection: {acc['layers_fp32']} fp32 layers, {acc['evaluations']} evaluations")
    # 1 (all int8) + 10 (sensitivity) + 1, 2, 4, 8 (doubling) + 5, 6, 7 at most (bisection).
    assert acc["met"] and acc["layers_fp32"] >= 1 and acc["evaluations"] <= 1 + 10 + 4 + 2
    e = _eval(brink, digits, out)
    assert e["outputs"][0]["cosine_mean"] >= 0.99999


def test_top1_target_with_labels_falls_back(brink, digits, tmp_path):
    # Per-tensor weights, s8 activations and a 99.9 percentile clip lose top-1 points; allow 0.
    out, report = tmp_path / "top1.onnx", tmp_path / "r.json"
    args = ("--per-tensor", "--activation-type", "s8", "--method", "percentile", "--percentile", "99.9",
            "--accuracy-target", "0", "--labels", digits["labels"])
    proc, r = _quantize(brink, digits, out, report, *args)
    acc = r["accuracy"]
    print(f"\nfallback: digits CNN int8 (per-tensor, s8, percentile 99.9), top-1 drop target 0: "
          f"{acc['before_fallback']:.2f} pts -> {acc['after_fallback']:.2f} pts with {acc['layers_fp32']} "
          f"fp32 layers; {acc['evaluations']} evaluations in {acc['seconds']:.2f} s")
    assert acc["metric"] == "top1-drop"
    assert acc["before_fallback"] > 0 >= acc["after_fallback"] and acc["layers_fp32"] >= 1
    e = _eval(brink, digits, out)
    assert e["classification"]["top1_drop"] <= 0
    _agrees_with_ort(brink, out, tmp_path)


def test_top1_without_labels_is_agreement_with_fp32(brink, digits, tmp_path):
    out, report = tmp_path / "agree.onnx", tmp_path / "r.json"
    proc, r = _quantize(brink, digits, out, report, "--metric", "top1", "--accuracy-target", "0")
    acc = r["accuracy"]
    assert acc["metric"] == "top1-disagreement" and acc["direction"] == "<="
    assert acc["before_fallback"] > 0 and acc["after_fallback"] == 0 and acc["met"]
    e = _eval(brink, digits, out)
    assert e["classification"]["top1_agreement"] == 100.0


def test_target_already_met_falls_back_nothing(brink, digits, tmp_path):
    out, report = tmp_path / "met.onnx", tmp_path / "r.json"
    proc, r = _quantize(brink, digits, out, report, "--accuracy-target", "0.99")
    acc = r["accuracy"]
    assert acc["met"] and acc["layers_fp32"] == acc["layers_fp16"] == 0 and acc["evaluations"] == 1
    assert acc["before_fallback"] == acc["after_fallback"] >= 0.99
    assert not any("fallback" in layer["precision"] for layer in r["layers"])
    # The same model as without a target.
    plain = tmp_path / "plain.onnx"
    p = brink("quantize", digits["model"], "-o", plain, "--calib", digits["calib"], "--threads", "1")
    assert p.returncode == 0, brink.describe(p)
    assert open(plain, "rb").read() == open(out, "rb").read()


def test_impossible_target_is_a_clear_error(brink, digits, tmp_path):
    out = tmp_path / "never.onnx"
    line = brink.expect_error("quantize", digits["model"], "-o", out, "--calib", digits["calib"], "--eval",
                              digits["test"], "--accuracy-target", "1", "--threads", "1",
                              mentions=("not reachable", "cosine >= 1", "all but one"), timeout=600)
    print(f"\nfallback: {line}")
    assert not out.exists()


def test_mixed_falls_back_to_fp16_first(brink, digits, tmp_path):
    out, report = tmp_path / "mixed.onnx", tmp_path / "r.json"
    proc, r = _quantize(brink, digits, out, report, "--mode", "mixed", "--accuracy-target", "0.99999")
    acc = r["accuracy"]
    precisions = {layer["name"]: layer["precision"] for layer in r["layers"]}
    print(f"\nfallback: digits CNN mixed, cosine target 0.99999: {acc['before_fallback']:.6f} -> "
          f"{acc['after_fallback']:.6f}; {acc['layers_fp16']} fp16 + {acc['layers_fp32']} fp32 layers; "
          f"weights {acc['weight_bytes_before_fallback']} -> {acc['weight_bytes_after_fallback']} bytes")
    assert r["mode"] == "mixed" and acc["met"] and acc["layers_fp16"] >= 1
    assert "fp16 (fallback)" in precisions.values() and "w8a8" in precisions.values()
    m = onnx.load(out)
    types = {t.data_type for t in m.graph.initializer}
    assert {TensorProto.FLOAT16, TensorProto.INT8} <= types
    assert "Cast" in {n.op_type for n in m.graph.node}
    e = _eval(brink, digits, out)
    assert e["outputs"][0]["cosine_mean"] >= 0.99999
    _agrees_with_ort(brink, out, tmp_path)


@pytest.mark.parametrize("args, mentions, code", [
    (("--accuracy-target", "0.99"), ("--accuracy-target needs --eval",), 2),
    (("--eval", "TEST"), ("--eval is used with --accuracy-target",), 2),
    (("--accuracy-target", "1.5", "--eval", "TEST"), ("(0, 1]", "1.5"), 2),
    (("--accuracy-target", "0", "--eval", "TEST"), ("(0, 1]",), 2),
    (("--accuracy-target", "-1", "--metric", "top1", "--eval", "TEST"), ("[0, 100]",), 2),
    (("--accuracy-target", "0.99", "--metric", "psnr", "--eval", "TEST"), ("psnr", "cosine"), 2),
    (("--accuracy-target", "0.99", "--eval", "TEST", "--labels", "LABELS", "--metric", "cosine"),
     ("--labels",), 2),
    (("--mode", "mixed"), ("--mode mixed needs --accuracy-target",), 2),
    (("--mode", "fp16", "--accuracy-target", "0.99", "--eval", "TEST"), ("fp16",), 2),
    (("--accuracy-target", "0.99", "--eval", "BAD"), ("bad.npz", "image"), 1),
    (("--accuracy-target", "0.5", "--eval", "TEST", "--labels", "SHORT"), ("labels", "450"), 1),
])
def test_bad_arguments_are_refused(brink, digits, tmp_path, args, mentions, code):
    np.savez(tmp_path / "bad.npz", image=np.zeros((4, 1, 9, 9), np.float32))
    np.save(tmp_path / "short.npy", np.zeros(10, np.int64))
    subst = {"TEST": digits["test"], "BAD": str(tmp_path / "bad.npz"), "LABELS": digits["labels"],
             "SHORT": str(tmp_path / "short.npy")}
    out = tmp_path / "out.onnx"
    proc = brink("quantize", digits["model"], "-o", out, "--calib", digits["calib"],
                 *[subst.get(a, a) for a in args], timeout=600)
    check_clean_failure(proc)
    assert proc.returncode == code, brink.describe(proc)
    line = proc.stderr.strip()
    for m in mentions:
        assert m in line, brink.describe(proc)
    assert not out.exists()


@pytest.mark.parametrize("mode, precision", [("int8-dynamic", "fp32 (fallback)"), ("mixed", "fp16 (fallback)")])
def test_dynamic_and_mixed_without_calibration(brink, tmp_path, mode, precision):
    # int8-dynamic's MatMul / Gemm fall back too; mixed without --calib starts from int8-dynamic.
    from test_quantize import small_mlp
    onnx.save(small_mlp(), tmp_path / "mlp.onnx")
    x = np.random.default_rng(5).standard_normal((16, 4, 32)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", x=x)
    out, report = tmp_path / "q.onnx", tmp_path / "r.json"
    proc = brink("quantize", tmp_path / "mlp.onnx", "-o", out, "--mode", mode, "--eval", tmp_path / "eval.npz",
                 "--accuracy-target", "0.99997", "--report", report)
    assert proc.returncode == 0, brink.describe(proc)
    r = json.loads(report.read_text())
    acc = r["accuracy"]
    assert acc["met"] and acc["before_fallback"] < 0.99997 <= acc["after_fallback"]
    layers = {layer["name"]: layer["precision"] for layer in r["layers"]}
    assert sorted(layers.values()) == sorted([precision, "w8-dynamic"])
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert "MatMulInteger" in ops and "MatMul" in ops
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(tmp_path / "mlp.onnx"), providers=["CPUExecutionProvider"])
    cos = []
    for s in x:
        a, b = ref.run(None, {"x": s})[0].ravel(), sess.run(None, {"x": s})[0].ravel()
        cos.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert np.mean(cos) > 0.9999
