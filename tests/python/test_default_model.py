"""The embedded default model (models/digits_cnn.onnx, trained by scripts/train_default_model.py):
Brink's top-1 accuracy on the held-out test split must equal ONNX Runtime's and be >= 95%."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import models
from conftest import MODELS_DIR

MODEL = os.path.join(MODELS_DIR, "digits_cnn.onnx")
DATA = os.path.join(MODELS_DIR, "digits_test.npz")


@pytest.fixture(scope="module")
def test_split():
    if not (os.path.isfile(MODEL) and os.path.isfile(DATA)):
        pytest.fail(f"{MODEL} or {DATA} is missing: run scripts/train_default_model.py")
    with np.load(DATA) as d:
        images, labels = d["image"], d["label"]
    assert images.dtype == np.float32 and images.ndim == 4 and images.shape[1:] == (1, 8, 8)
    assert labels.dtype == np.int64 and labels.shape == (images.shape[0],)
    return images, labels


@pytest.fixture(scope="module")
def ort_logits(test_split):
    return models.ort_run(MODEL, {"image": test_split[0]})["logits"]


def test_onnxruntime_accuracy(test_split, ort_logits):
    acc = float((ort_logits.argmax(1) == test_split[1]).mean())
    assert acc >= 0.95, f"the committed model's test accuracy under ONNX Runtime is {acc:.4f}"


def test_accuracy_matches_onnxruntime(brink, test_split, ort_logits, tmp_path):
    images, labels = test_split
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, image=images)  # only the model's input: the label array is not one
    out_dir = tmp_path / "out"
    summary = brink.json("run", MODEL, "--inputs", str(inputs), "--output-dir", str(out_dir), "--threads", "1",
                         "--json")
    [out] = summary["outputs"]
    assert out["name"] == "logits" and out["dtype"] == "float32" and out["shape"] == [len(labels), 10]
    logits = np.load(out_dir / "logits.npy", allow_pickle=False)
    assert logits.shape == (len(labels), 10) and logits.dtype == np.float32

    brink_correct = int((logits.argmax(1) == labels).sum())
    ort_correct = int((ort_logits.argmax(1) == labels).sum())
    assert brink_correct == ort_correct, \
        f"Brink gets {brink_correct}/{len(labels)} right, ONNX Runtime {ort_correct}/{len(labels)}"
    assert brink_correct / len(labels) >= 0.95
    np.testing.assert_allclose(logits, ort_logits, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ort_logits).max())))


def test_single_image_via_input(brink, test_split, ort_logits, tmp_path):
    images, _ = test_split
    x = tmp_path / "one.npy"
    np.save(x, images[7:8])
    brink.json("run", MODEL, "--input", f"image={x}", "--output-dir", str(tmp_path), "--json")
    logits = np.load(tmp_path / "logits.npy")
    assert logits.shape == (1, 10)
    np.testing.assert_allclose(logits, ort_logits[7:8], rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ort_logits).max())))


def test_random_inputs_are_seeded(brink, tmp_path):
    def run(seed, sub):
        brink.json("run", MODEL, "--random", "--seed", str(seed), "--output-dir", str(tmp_path / sub), "--json")
        return np.load(tmp_path / sub / "logits.npy")
    a, b, c = run(3, "a"), run(3, "b"), run(4, "c")
    assert a.shape == (1, 10)  # the symbolic batch dim is 1 for random inputs
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c), "different seeds gave identical outputs"


def test_info(brink):
    import onnx
    info = brink.json("info", MODEL, "--json")
    assert info["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["batch", 1, 8, 8]}]
    assert info["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}]
    assert info["opset"] == 13
    assert info["problems"] == []
    m = onnx.load(MODEL)
    assert info["ops"] == dict(Counter(n.op_type for n in m.graph.node))
    assert info["parameters"] == sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    # Conv 1->16 on 8x8 and 16->32 on 4x4 (3x3 kernels), Gemm 128->10, at batch 1.
    macs = 16 * 9 * 64 + 32 * 16 * 9 * 16 + 128 * 10
    assert 0.9 * macs <= info["macs"] <= 1.1 * macs, f"macs {info['macs']}, expected about {macs}"
    assert isinstance(info["arena_bytes"], int) and info["arena_bytes"] > 0


def test_bench(brink):
    from test_differential import check_bench_json
    b = brink.json("bench", MODEL, "--threads", "1", "--json", "--iterations", "20", "--warmup", "2")
    check_bench_json(b, 20)
