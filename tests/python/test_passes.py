"""Graph passes (src/passes) on the exported models: what `brink info` reports they did, and
`brink run` giving the same outputs at every optimization level.

The per-model expectations say which patterns of the torch export must be gone after
optimization (the unit tests in tests/unit/passes_test.cc check each pass on small graphs).
A fusion only happens when its brink-domain operator is registered, so these tests assume a
build with all of docs/INTERNAL_OPS.md implemented.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import models

RUN_TIMEOUT = 600

# name -> (ONNX ops that must all be fused away at level 2, brink ops that must appear,
#          report fields with their exact expected values)
EXPECT = {
    "resnet50": ({"Conv", "Relu", "Add", "MaxPool", "GlobalAveragePool", "Gemm"},
                 {"brink.Conv", "brink.MatMul"},
                 {"fused_residual_adds": 16, "fused_activations": 49, "transposes_inserted": 2}),
    "mobilenet_v2": ({"Conv", "Clip", "Add", "Gemm"}, {"brink.Conv", "brink.MatMul"},
                     {"fused_residual_adds": 10, "fused_activations": 35, "transposes_inserted": 2}),
    "efficientnet_b0": ({"Conv", "Sigmoid", "Gemm"}, {"brink.Conv", "brink.MatMul"},
                        {"fused_residual_adds": 9, "fused_activations": 65, "transposes_inserted": 2}),
    "mobilenet_v3_small": ({"Conv", "HardSwish", "Relu", "HardSigmoid"}, {"brink.Conv"},
                           {"fused_residual_adds": 6, "transposes_inserted": 2}),
    "resnet18": ({"Conv", "Relu", "Add"}, {"brink.Conv"},
                 {"fused_residual_adds": 8, "transposes_inserted": 2}),
    "squeezenet1_1": ({"Conv", "Relu"}, {"brink.Conv"}, {"transposes_inserted": 2}),
    "shufflenet_v2_x0_5": ({"Conv", "Relu"}, {"brink.Conv"}, {"transposes_inserted": 1}),
    "bert_tiny": ({"ReduceMean", "Sqrt", "Pow", "Erf", "Gemm", "MatMul"},
                  {"brink.LayerNormalization", "brink.MatMul"},
                  {"fused_layernorms": 5, "fused_gelus": 2, "fused_matmul_bias": 14}),
    "bert_tiny_opset17": ({"LayerNormalization", "Erf", "Gemm"},
                          {"brink.LayerNormalization", "brink.MatMul"},
                          {"fused_layernorms": 5, "fused_gelus": 2, "fused_matmul_bias": 14}),
    "vit_tiny": ({"ReduceMean", "Erf", "Softmax", "Identity"},
                 {"brink.Attention", "brink.LayerNormalization"},
                 {"fused_attentions": 2, "fused_layernorms": 5, "fused_gelus": 2}),
}

PARAMS = [pytest.param(s.name, marks=[pytest.mark.slow] if s.slow else [], id=s.name)
          for s in models.SPECS if s.name in EXPECT]
ALL = [pytest.param(s.name, marks=[pytest.mark.slow] if s.slow else [], id=s.name) for s in models.SPECS]


@pytest.mark.parametrize("name", PARAMS)
def test_passes_fuse_the_exported_patterns(brink, name):
    g = models.ensure(name)
    info = brink.json("info", g.path, "--json", timeout=RUN_TIMEOUT)
    opt = info.get("optimization")
    assert isinstance(opt, dict), "'optimization' missing from brink info --json"
    assert opt["level"] == 2
    gone, present, counts = EXPECT[name]
    ops = opt["ops"]
    left = sorted(op for op in gone if ops.get(op, 0))
    assert not left, f"still in the optimized graph: {left} (optimized ops: {ops})"
    missing = sorted(op for op in present if not ops.get(op, 0))
    assert not missing, f"not in the optimized graph: {missing} (optimized ops: {ops})"
    for key, want in counts.items():
        assert opt[key] == want, f"{key}: {opt[key]}, expected {want} (report: {opt})"
    assert opt["nodes"] < info["nodes"]


@pytest.mark.parametrize("name", ALL)
def test_every_level_gives_the_same_outputs(brink, name, tmp_path):
    g = models.ensure(name)
    args = []
    for n in g.input_names:
        args += ["--input", f"{n}={g.input_path(n)}"]
    results = {}
    for level in (0, 1, 2):
        out_dir = str(tmp_path / f"O{level}")
        summary = brink.json("run", g.path, *args, "--opt-level", str(level), "--output-dir", out_dir,
                             "--threads", "1", "--json", timeout=RUN_TIMEOUT)
        results[level] = {o["name"]: np.load(o["file"], allow_pickle=False) for o in summary["outputs"]}
    for level in (1, 2):
        assert list(results[level]) == list(results[0])
        for out, want in results[0].items():
            got = results[level][out]
            assert got.dtype == want.dtype and got.shape == want.shape, out
            if want.dtype.kind in "biu":
                np.testing.assert_array_equal(got, want, err_msg=f"{out} at level {level}")
                continue
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-4 * scale,
                                       err_msg=f"output {out!r}: level {level} against level 0")
