"""brink quantize / brink eval on folders of images, the report's SQNR plot and per-layer times.

- The digits CNN (scripts/models/train_digits_cnn.py) calibrated from a folder of real images
  (scikit-learn's digits written as 8-bit PNG and BMP files, pixel = 15 * level, with the spec
  {"color": "gray", "std": 240} giving back level / 16 exactly) gives the same quantized model,
  byte for byte, as calibrating from calib.npz, and `brink eval` on a folder of the test images
  gives the same accuracy as on test.npz.
- Bad input: an empty folder, an image that does not decode, an unknown spec key, a spec whose
  output shape is not the model's, no spec, --preprocess on arrays: one line on stderr, no output.
- --plot writes a PNG of the expected size with bars in it (decoded here with zlib).
- The JSON report's per-layer times: the op each model ran (brink.QConv for a quantized Conv),
  a time or a note for each side, and the totals' latency.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import zlib

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))
import train_digits_cnn  # noqa: E402

onnx = pytest.importorskip("onnx")
from test_quantize import small_cnn  # noqa: E402

DIGITS_DIR = os.path.join(ROOT, "tests", "python", ".generated", "real", "digits_cnn")
DIGITS_SPEC = {"color": "gray", "std": 240, "layout": "nchw", "dtype": "float32"}


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(img: np.ndarray) -> bytes:
    """An 8-bit PNG of a uint8 [H, W] (gray) or [H, W, 3] (RGB) array, rows unfiltered."""
    h, w = img.shape[:2]
    color_type = 0 if img.ndim == 2 else 2
    raw = b"".join(b"\x00" + np.ascontiguousarray(img[y]).tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def bmp_bytes(gray: np.ndarray) -> bytes:
    """A 24-bit BMP of a uint8 [H, W] array (R = G = B, rows bottom-up, padded to 4 bytes)."""
    h, w = gray.shape
    row = (w * 3 + 3) // 4 * 4
    pixels = b"".join(np.repeat(gray[y], 3).tobytes().ljust(row, b"\x00") for y in reversed(range(h)))
    header = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(pixels), 0, 0, 54) + header + pixels


def read_png(path: str) -> np.ndarray:
    """Decodes an 8-bit RGB PNG (any row filters) to a uint8 [H, W, 3] array."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    assert depth == 8 and ctype == 2, f"expected 8-bit RGB, got depth {depth} color type {ctype}"
    raw = zlib.decompress(idat)
    stride, bpp = w * 3, 3
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3)


def write_digit_folder(folder, images: np.ndarray, spec: dict | None = DIGITS_SPEC) -> str:
    """images: float32 [N, 1, 8, 8] of level / 16 -> files 00000.png, 00001.bmp, ... (every
    third a BMP), pixel = 15 * level."""
    os.makedirs(folder, exist_ok=True)
    levels = np.rint(images[:, 0] * 16).astype(np.int64)
    assert np.array_equal(levels / 16.0, images[:, 0].astype(np.float64)), "digits are not level / 16"
    for i, lv in enumerate(levels):
        pixels = (lv * 15).astype(np.uint8)
        name, data = (f"{i:05d}.bmp", bmp_bytes(pixels)) if i % 3 == 2 else (f"{i:05d}.png", png_bytes(pixels))
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    if spec is not None:
        with open(os.path.join(folder, "preprocess.json"), "w") as f:
            json.dump(spec, f)
    return str(folder)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    meta = train_digits_cnn.read_meta(DIGITS_DIR)  # cached: no need for torch
    if meta is None:
        pytest.importorskip("torch")
        pytest.importorskip("sklearn")
        meta = train_digits_cnn.ensure(DIGITS_DIR)
    d = tmp_path_factory.mktemp("digit_images")
    calib = np.load(os.path.join(DIGITS_DIR, "calib.npz"))["image"]
    test = np.load(os.path.join(DIGITS_DIR, "test.npz"))["image"]
    return {"meta": meta, "model": os.path.join(DIGITS_DIR, "model.onnx"),
            "calib_npz": os.path.join(DIGITS_DIR, "calib.npz"), "test_npz": os.path.join(DIGITS_DIR, "test.npz"),
            "labels": os.path.join(DIGITS_DIR, "test_labels.npy"),
            "calib_dir": write_digit_folder(d / "calib", calib), "test_dir": write_digit_folder(d / "test", test),
            "tmp": d}


def test_digits_calibrated_from_images_match_npz(brink, digits, tmp_path):
    outs = {}
    for kind in ("calib_dir", "calib_npz"):
        out = str(tmp_path / f"{kind}.onnx")
        proc = brink("quantize", digits["model"], "-o", out, "--calib", digits[kind], "--threads", "1",
                     "--time-runs", "0", timeout=600)
        assert proc.returncode == 0, brink.describe(proc)
        outs[kind] = out
    # The images decode and preprocess to exactly the arrays of calib.npz: the same model.
    assert open(outs["calib_dir"], "rb").read() == open(outs["calib_npz"], "rb").read()

    results = {}
    for kind in ("test_dir", "test_npz"):
        results[kind] = brink.json("eval", digits["model"], outs["calib_dir"], "--data", digits[kind],
                                   "--labels", digits["labels"], "--json", timeout=600)
    img, npz = results["test_dir"], results["test_npz"]
    c = img["classification"]
    print(f"\naccuracy: digits CNN from PNG/BMP folders: FP32 top-1 {c['reference_top1']:.2f}%, "
          f"INT8 top-1 {c['candidate_top1']:.2f}% (drop {c['top1_drop']:.2f} pts)")
    assert img["samples"] == npz["samples"] == 450
    for key in ("reference_top1", "candidate_top1", "top1_agreement"):
        assert c[key] == npz["classification"][key], key
    assert img["outputs"][0]["sqnr_db"] == pytest.approx(npz["outputs"][0]["sqnr_db"], rel=1e-9)
    assert c["top1_drop"] <= 0.5
    assert "images" in img["data_description"]


def _expect_no_output(brink, model, out, *args, mentions=()):
    brink.expect_error("quantize", model, "-o", out, *args, mentions=mentions)
    assert not os.path.exists(out)


def test_bad_image_folders(brink, digits, tmp_path):
    model, out = digits["model"], str(tmp_path / "out.onnx")
    calib = np.load(digits["calib_npz"])["image"][:4]
    empty = tmp_path / "empty"
    empty.mkdir()
    _expect_no_output(brink, model, out, "--calib", str(empty), mentions=["no images", str(empty)])

    broken = write_digit_folder(tmp_path / "broken", calib)
    with open(os.path.join(broken, "00001.png"), "wb") as f:
        f.write(png_bytes(np.zeros((8, 8), np.uint8))[:40])  # truncated
    _expect_no_output(brink, model, out, "--calib", broken, mentions=["00001.png", "cannot decode"])

    typo = write_digit_folder(tmp_path / "typo", calib, {"color": "gray", "stdev": 240})
    _expect_no_output(brink, model, out, "--calib", typo, mentions=["preprocess.json", 'unknown key "stdev"'])

    wrong = write_digit_folder(tmp_path / "wrong", calib, {"color": "gray", "resize": [16, 16]})
    _expect_no_output(brink, model, out, "--calib", wrong,
                      mentions=["makes [1, 1, 16, 16]", "model input 'image' is [batch, 1, 8, 8]"])
    rgb = write_digit_folder(tmp_path / "rgb", calib, {"color": "rgb"})
    _expect_no_output(brink, model, out, "--calib", rgb, mentions=["gives 3 channels", "image"])

    nospec = write_digit_folder(tmp_path / "nospec", calib, None)
    _expect_no_output(brink, model, out, "--calib", nospec, mentions=["no preprocessing spec", "--preprocess"])
    # An explicit spec makes the same folder work, for eval too.
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(DIGITS_SPEC))
    r = brink.json("eval", model, model, "--data", nospec, "--preprocess", str(spec), "--json")
    assert r["samples"] == 4
    _expect_no_output(brink, model, out, "--calib", digits["calib_npz"], "--preprocess", str(spec),
                      mentions=["applies to images"])
    brink.expect_error("eval", model, model, "--data", typo, mentions=['unknown key "stdev"'])


@pytest.fixture(scope="module")
def cnn_quantized(brink, tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    model = d / "cnn.onnx"
    onnx.save(small_cnn(), str(model))
    calib = d / "calib.npz"
    np.savez(calib, x=np.random.default_rng(1).standard_normal((8, 1, 3, 16, 16)).astype(np.float32))
    out, report, plot = d / "q.onnx", d / "report.json", d / "sqnr.png"
    proc = brink("quantize", model, "-o", out, "--calib", calib, "--report", report, "--plot", plot,
                 "--threads", "1", timeout=600)
    assert proc.returncode == 0, brink.describe(proc)
    return {"stdout": proc.stdout, "report": json.loads(report.read_text()), "plot": str(plot)}


def test_sqnr_plot_png(cnn_quantized):
    img = read_png(cnn_quantized["plot"])
    layers = cnn_quantized["report"]["layers"]
    n = len(layers)
    assert img.shape == (320, max(320, 80 + 24 * n), 3)
    colors = {tuple(c) for c in img.reshape(-1, 3)}
    assert len(colors) >= 4, "a blank picture"
    good, bad = (46, 139, 87), (230, 85, 13)
    # Each compared layer has a bar at its slot, green at or above 20 dB, red below.
    base = 320 - 40
    for i, layer in enumerate(layers):
        x = 56 + 24 * i + 12
        want = good if layer["sqnr_db"] >= 20 else bad
        assert tuple(img[base - 1, x]) == want, (i, layer["name"], layer["sqnr_db"])
    assert "wrote " + cnn_quantized["plot"] in cnn_quantized["stdout"]


def test_per_layer_times(cnn_quantized):
    report = cnn_quantized["report"]
    totals = report["totals"]
    assert totals["latency_ms_p50_fp32"] > 0 and totals["latency_ms_p50_quantized"] > 0
    assert totals["timing_runs"] == 3 * 4 and totals["timing_threads"] == 1
    assert 0 < totals["output_cosine_min"] <= 1 and totals["output_sqnr_db_min"] > 10
    measured = 0
    for layer in report["layers"]:
        for side in ("fp32", "quantized"):
            t = layer["time"][side]
            if t["ms"] is None:
                assert t["note"], (layer["name"], side)  # fused: says so, no invented number
            else:
                assert t["ms"] > 0 and t["op"], (layer["name"], side)
                measured += 1
    assert measured >= len(report["layers"])
    convs = [l for l in report["layers"] if l["op"].startswith("Conv")]  # "Conv+Relu" too
    assert convs
    for layer in convs:  # the runtime ran each quantized Conv as an integer conv
        assert layer["time"]["quantized"]["op"] == "brink.QConv", layer
        assert not layer["time"]["fp32"]["op"].startswith("brink.Q"), layer
    out = cnn_quantized["stdout"]
    assert "per-layer time" in out and "latency p50: FP32" in out and "brink.QConv" in out


def test_per_layer_times_int8_dynamic(brink, tmp_path):
    """int8-dynamic's MatMulInteger chain runs as one com.microsoft.MatMulIntegerToFloat, named
    after the layer ("<layer>_quant"): each layer still gets a time on both sides."""
    from test_quantize import small_mlp
    onnx.save(small_mlp(), str(tmp_path / "mlp.onnx"))
    report = tmp_path / "r.json"
    proc = brink("quantize", tmp_path / "mlp.onnx", "-o", tmp_path / "q.onnx", "--mode", "int8-dynamic",
                 "--report", report, "--threads", "1", "--time-runs", "2")
    assert proc.returncode == 0, brink.describe(proc)
    r = json.loads(report.read_text())
    assert r["totals"]["timing_runs"] == 2 * 2  # 2 random samples without --calib
    for layer in r["layers"]:
        q = layer["time"]["quantized"]
        assert q["ms"] is not None and q["ms"] > 0, layer
        assert q["op"] == "com.microsoft.MatMulIntegerToFloat", layer
        assert layer["time"]["fp32"]["ms"] is not None, layer
