"""Differential tests: `brink run` against ONNX Runtime (CPU, one thread) on the same inputs.

The models (torchvision CNNs, a BERT-like encoder, a ViT, LSTM/GRU, a YOLO-style detector)
are exported from PyTorch with random weights at fixed seeds by models.py and cached in
tests/python/.generated/; the first run exports them (about half a minute). Large models
are marked `slow` (-m "not slow" skips them).
"""
from __future__ import annotations

import numbers
import os
from collections import Counter

import numpy as np
import pytest

import models

PARAMS = [pytest.param(s.name, marks=[pytest.mark.slow] if s.slow else [], id=s.name) for s in models.SPECS]
RUN_TIMEOUT = 600


def _input_args(g: models.GeneratedModel):
    args = []
    for n in g.input_names:
        args += ["--input", f"{n}={g.input_path(n)}"]
    return args


def assert_close(name: str, b: np.ndarray, o: np.ndarray) -> None:
    assert b.dtype == o.dtype, f"{name}: dtype {b.dtype}, ONNX Runtime gives {o.dtype}"
    assert b.shape == o.shape, f"{name}: shape {b.shape}, ONNX Runtime gives {o.shape}"
    if o.dtype.kind in "biu":
        np.testing.assert_array_equal(b, o, err_msg=name)
        return
    assert np.isfinite(o).all(), f"{name}: ONNX Runtime's reference output is not finite"
    scale = max(1.0, float(np.abs(o).max()))
    np.testing.assert_allclose(b, o, rtol=1e-4, atol=1e-4 * scale, err_msg=f"output {name!r}")


@pytest.mark.parametrize("name", PARAMS)
def test_run_matches_onnxruntime(brink, name, tmp_path):
    g = models.ensure(name)
    expected = models.ort_run(g.path, g.load_inputs())
    out_dir = str(tmp_path / "out")
    summary = brink.json("run", g.path, *_input_args(g), "--output-dir", out_dir, "--threads", "1", "--json",
                         timeout=RUN_TIMEOUT)

    assert isinstance(summary.get("model"), str)
    assert isinstance(summary.get("latency_ms"), numbers.Real) and summary["latency_ms"] >= 0
    outs = summary.get("outputs")
    assert isinstance(outs, list)
    assert [o.get("name") for o in outs] == list(expected), "outputs (names, in graph order)"
    for entry in outs:
        name_ = entry["name"]
        o = expected[name_]
        assert entry.get("dtype") == o.dtype.name, f"{name_}: dtype in the JSON summary"
        assert entry.get("shape") == list(o.shape), f"{name_}: shape in the JSON summary"
        want_file = os.path.join(out_dir, models.output_file_name(name_) + ".npy")
        assert os.path.normpath(entry.get("file", "")) == os.path.normpath(want_file), f"{name_}: file"
        assert os.path.isfile(want_file), f"{name_}: {want_file} was not written"
        assert_close(name_, np.load(want_file, allow_pickle=False), o)


@pytest.mark.parametrize("name", PARAMS)
def test_info_describes_model(brink, name):
    import onnx
    g = models.ensure(name)
    info = brink.json("info", g.path, "--json", timeout=RUN_TIMEOUT)
    for key in ("inputs", "outputs", "opset", "ops", "parameters", "macs", "arena_bytes", "problems"):
        assert key in info, f"'{key}' missing from brink info --json"
    assert info["problems"] == [], f"brink reports problems with a model ONNX Runtime runs: {info['problems']}"

    sess = models.ort_session(g.path)
    inputs = g.load_inputs()
    ref_outs = models.ort_run(g.path, inputs)
    assert [i["name"] for i in info["inputs"]] == [i.name for i in sess.get_inputs()]
    for i in info["inputs"]:
        assert i["dtype"] == inputs[i["name"]].dtype.name, i
        assert i["shape"] == list(inputs[i["name"]].shape), i
    assert [o["name"] for o in info["outputs"]] == list(ref_outs)
    for o in info["outputs"]:
        # Static shapes everywhere (batch 1): Brink's shape inference must find them at load.
        assert o["dtype"] == ref_outs[o["name"]].dtype.name, o
        assert o["shape"] == list(ref_outs[o["name"]].shape), o

    m = onnx.load(g.path)
    assert info["opset"] == g.opset
    file_ops = Counter(n.op_type for n in m.graph.node)
    brink_ops = Counter(info["ops"])
    file_ops.pop("Constant", None)
    brink_ops.pop("Constant", None)
    assert dict(brink_ops) == dict(file_ops), "operator histogram (Constant nodes aside)"
    init = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    const = sum(int(np.prod(a.t.dims)) for n in m.graph.node if n.op_type == "Constant"
                for a in n.attribute if a.name == "value")
    assert init <= info["parameters"] <= init + const, \
        f"parameters {info['parameters']}: the initializers hold {init} elements"
    assert isinstance(info["macs"], int) and info["macs"] > 0
    assert isinstance(info["arena_bytes"], int) and info["arena_bytes"] > 0


BENCH_KEYS = ("schema_version", "model", "threads", "iterations", "load_ms", "first_inference_ms", "latency_ms",
              "throughput_per_s", "peak_rss_bytes")
LATENCY_KEYS = ("p50", "p90", "p99", "mean", "min", "max")


def check_bench_json(b: dict, iterations: int) -> None:
    for key in BENCH_KEYS:
        assert key in b, f"'{key}' missing from brink bench --json (docs/BENCH_JSON.md)"
    assert b["schema_version"] == 1
    assert b["iterations"] == iterations
    assert b["threads"] == 1
    for key in ("load_ms", "first_inference_ms", "throughput_per_s"):
        assert isinstance(b[key], numbers.Real) and b[key] >= 0, key
    assert b["throughput_per_s"] > 0
    lat = b["latency_ms"]
    for key in LATENCY_KEYS:
        assert isinstance(lat.get(key), numbers.Real) and lat[key] >= 0, f"latency_ms.{key}"
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert isinstance(b["peak_rss_bytes"], int) and b["peak_rss_bytes"] > 0


@pytest.mark.parametrize("name", PARAMS)
def test_bench_json(brink, name):
    g = models.ensure(name)
    b = brink.json("bench", g.path, "--threads", "1", "--json", "--iterations", "3", "--warmup", "1",
                   timeout=RUN_TIMEOUT)
    check_bench_json(b, 3)
    assert b["model"] == g.path
