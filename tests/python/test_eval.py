"""brink eval: a candidate model against its reference on a dataset.

Tiny hand-built ONNX models whose outputs are known in closed form (the "logits" are the input
itself, or the input plus a constant), so every number brink eval prints (cosine, SQNR, max abs
error, top-1 agreement, top-1/top-5 accuracy with labels) is checked against NumPy; plus the
refusals (models that do not match, labels that do not fit the data).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

CLASSES = 10
N = 40


def _model(path, outputs, input_name="x", features=CLASSES):
    """outputs: list of (name, scale, offset vector or None): name = input * scale + offset."""
    nodes, inits, outs = [], [], []
    for name, scale, offset in outputs:
        s = f"{name}_scale"
        inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), s))
        if offset is None:
            nodes.append(helper.make_node("Mul", [input_name, s], [name]))
        else:
            o = f"{name}_offset"
            inits.append(numpy_helper.from_array(np.asarray(offset, dtype=np.float32), o))
            nodes.append(helper.make_node("Mul", [input_name, s], [f"{name}_scaled"]))
            nodes.append(helper.make_node("Add", [f"{name}_scaled", o], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", features]))
    graph = helper.make_graph(nodes, "eval_test", [helper.make_tensor_value_info(
        input_name, TensorProto.FLOAT, ["batch", features])], outs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, CLASSES)).astype(np.float32)
    offset = (rng.standard_normal(CLASSES) * 0.6).astype(np.float32)
    labels = rng.integers(0, CLASSES, N).astype(np.int64)
    np.savez(d / "data.npz", x=x)
    np.save(d / "labels.npy", labels)
    np.save(d / "labels_f32.npy", labels.astype(np.float32))
    (d / "labels.txt").write_text("\n".join(str(v) for v in labels) + "\n")
    return {
        "dir": d, "x": x, "offset": offset, "labels": labels, "data": str(d / "data.npz"),
        "ref": _model(d / "ref.onnx", [("logits", 1.0, None)]),
        "cand": _model(d / "cand.onnx", [("logits", 1.0, offset)]),
        "cand_big": _model(d / "cand_big.onnx", [("logits", 1.0, offset * 3)]),
        "ref2": _model(d / "ref2.onnx", [("a", 1.0, None), ("b", 2.0, None)]),
        "cand2": _model(d / "cand2.onnx", [("a", 1.0, None), ("b", 2.0, offset)]),
        "other_input": _model(d / "other_input.onnx", [("logits", 1.0, None)], input_name="y"),
        "other_output": _model(d / "other_output.onnx", [("scores", 1.0, None)]),
    }


def _expected(ref: np.ndarray, cand: np.ndarray) -> dict:
    r, c = ref.astype(np.float64), cand.astype(np.float64)
    cos = (r * c).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1))
    err = ((r - c) ** 2).sum()
    return {"cosine_mean": cos.mean(), "cosine_min": cos.min(),
            "sqnr_db": 10 * math.log10((r ** 2).sum() / err) if err else None,
            "max_abs_error": np.abs(r - c).max()}


def _topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    # rank of the label: higher scores, plus ties with a smaller index (scores here are distinct)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return 100.0 * float(np.mean([labels[i] in order[i] for i in range(len(labels))]))


def test_self_is_identical(brink, setup):
    j = brink.json("eval", setup["ref"], setup["ref"], "--data", setup["data"], "--json")
    assert j["samples"] == N
    (out,) = j["outputs"]
    assert out["name"] == "logits" and out["shape"] == [1, CLASSES]
    assert out["cosine_mean"] == pytest.approx(1.0, abs=1e-12)
    assert out["cosine_min"] == pytest.approx(1.0, abs=1e-12)
    assert out["sqnr_db"] is None and out["identical"] is True  # infinite SQNR
    assert out["max_abs_error"] == 0 and out["candidate_nonfinite"] == 0
    c = j["classification"]
    assert c["classes"] == CLASSES and c["rows"] == N and c["labels"] is False
    assert c["top1_agreement"] == 100.0



def test_brink_package_candidate(brink, setup):
    pkg = str(setup["dir"] / "cand.brink")
    proc = brink("pack", setup["cand"], "-o", pkg)
    assert proc.returncode == 0, brink.describe(proc)
    j = brink.json("eval", setup["cand"], pkg, "--data", setup["data"], "--json")
    assert j["outputs"][0]["max_abs_error"] == pytest.approx(0, abs=1e-6)
    assert j["classification"]["top1_agreement"] == 100.0
    x, off = setup["x"], setup["offset"]
    j = brink.json("eval", setup["ref"], pkg, "--data", setup["data"], "--json")
    assert j["outputs"][0]["cosine_mean"] == pytest.approx(_expected(x, x + off)["cosine_mean"], rel=1e-5)

def test_perturbed_matches_numpy(brink, setup):
    x, off = setup["x"], setup["offset"]
    j = brink.json("eval", setup["ref"], setup["cand"], "--data", setup["data"], "--json")
    (out,) = j["outputs"]
    e = _expected(x, x + off)
    for key in ("cosine_mean", "cosine_min", "sqnr_db", "max_abs_error"):
        assert out[key] == pytest.approx(e[key], rel=1e-5, abs=1e-6), key
    assert out["identical"] is False
    agree = 100.0 * np.mean(x.argmax(1) == (x + off).argmax(1))
    assert 0 < agree < 100, "the test data should make some argmax differ"
    assert j["classification"]["top1_agreement"] == pytest.approx(agree)

    # A larger perturbation: every number moves the wrong way.
    big = brink.json("eval", setup["ref"], setup["cand_big"], "--data", setup["data"], "--json")
    (b,) = big["outputs"]
    assert b["cosine_mean"] < out["cosine_mean"] and b["cosine_min"] < out["cosine_min"]
    assert b["sqnr_db"] < out["sqnr_db"] and b["max_abs_error"] > out["max_abs_error"]
    assert b["sqnr_db"] == pytest.approx(out["sqnr_db"] - 20 * math.log10(3), rel=1e-5)
    assert big["classification"]["top1_agreement"] <= j["classification"]["top1_agreement"]


@pytest.mark.parametrize("labels_file", ["labels.npy", "labels.txt"])
def test_labels_top1_top5_match_numpy(brink, setup, labels_file):
    x, off, y = setup["x"], setup["offset"], setup["labels"]
    j = brink.json("eval", setup["ref"], setup["cand"], "--data", setup["data"],
                   "--labels", str(setup["dir"] / labels_file), "--json")
    c = j["classification"]
    assert c["labels"] is True and c["top5_k"] == 5
    assert c["reference_top1"] == pytest.approx(100.0 * np.mean(x.argmax(1) == y))
    assert c["candidate_top1"] == pytest.approx(100.0 * np.mean((x + off).argmax(1) == y))
    assert c["reference_top5"] == pytest.approx(_topk(x, y, 5))
    assert c["candidate_top5"] == pytest.approx(_topk(x + off, y, 5))
    assert c["top1_drop"] == pytest.approx(c["reference_top1"] - c["candidate_top1"])
    assert c["top5_drop"] == pytest.approx(c["reference_top5"] - c["candidate_top5"])


def test_samples_limits_data_and_labels(brink, setup):
    x, y = setup["x"][:7], setup["labels"][:7]
    j = brink.json("eval", setup["ref"], setup["ref"], "--data", setup["data"], "--labels",
                   str(setup["dir"] / "labels.npy"), "--samples", "7", "--json")
    assert j["samples"] == 7 and j["classification"]["rows"] == 7
    assert j["classification"]["reference_top1"] == pytest.approx(100.0 * np.mean(x.argmax(1) == y))


def test_per_output_metrics_and_no_classification(brink, setup):
    x, off = setup["x"], setup["offset"]
    j = brink.json("eval", setup["ref2"], setup["cand2"], "--data", setup["data"], "--json")
    a, b = j["outputs"]
    assert a["name"] == "a" and a["identical"] is True and a["cosine_min"] == pytest.approx(1.0)
    e = _expected(2 * x, 2 * x + off)
    assert b["name"] == "b"
    for key in ("cosine_mean", "cosine_min", "sqnr_db", "max_abs_error"):
        assert b[key] == pytest.approx(e[key], rel=1e-5, abs=1e-6), key
    assert j["classification"] is None  # two outputs: not a classifier


def test_table(brink, setup):
    proc = brink("eval", setup["ref"], setup["cand"], "--data", setup["data"], "--labels",
                 str(setup["dir"] / "labels.npy"))
    assert proc.returncode == 0, brink.describe(proc)
    for word in ("cos mean", "SQNR dB", "max |err|", "logits", "top-1", "top-5", "agreement"):
        assert word in proc.stdout, word
    proc = brink("eval", setup["ref"], setup["ref"], "--data", setup["data"])
    assert proc.returncode == 0 and " inf " in proc.stdout, brink.describe(proc)


def test_refusals(brink, setup):
    d, ref, data = setup["dir"], setup["ref"], setup["data"]
    brink.expect_error("eval", ref, setup["other_input"], "--data", data, mentions=["inputs", "x", "y"])
    brink.expect_error("eval", ref, setup["other_output"], "--data", data,
                       mentions=["outputs", "logits", "scores"])
    brink.expect_error("eval", setup["ref2"], ref, "--data", data, mentions=["outputs"])
    brink.expect_error("eval", ref, ref, "--data", str(d / "missing.npz"), mentions=["missing.npz"])
    brink.expect_error("eval", ref, str(d / "missing.onnx"), "--data", data, mentions=["missing.onnx"])

    np.save(d / "short_labels.npy", setup["labels"][:-1])
    brink.expect_error("eval", ref, ref, "--data", data, "--labels", str(d / "short_labels.npy"),
                       mentions=[f"{N - 1} labels", f"{N} predictions"])
    bad = setup["labels"].copy()
    bad[3] = CLASSES
    np.save(d / "bad_labels.npy", bad)
    brink.expect_error("eval", ref, ref, "--data", data, "--labels", str(d / "bad_labels.npy"),
                       mentions=["label 3", str(CLASSES)])
    brink.expect_error("eval", ref, ref, "--data", data, "--labels", str(d / "labels_f32.npy"),
                       mentions=["integers"])
    (d / "bad_labels.txt").write_text("1\n2\ncat\n")
    brink.expect_error("eval", ref, ref, "--data", data, "--labels", str(d / "bad_labels.txt"),
                       mentions=["line 3", "cat"])
    brink.expect_error("eval", setup["ref2"], setup["ref2"], "--data", data, "--labels",
                       str(d / "labels.npy"), mentions=["classifier"])
    np.savez(d / "wrong.npz", x=np.zeros((3, CLASSES + 1), np.float32))
    brink.expect_error("eval", ref, ref, "--data", str(d / "wrong.npz"), mentions=["wrong.npz"])
    brink.expect_error("eval", ref, ref, mentions=["--data"], exit_code=2)
