"""Packages with a portable fallback (`brink pack --fallback portable`, docs/FORMAT.md):
`brink info` lists the targets and the one this machine uses; BRINK_ISA=portable makes a run
use the fallback (outputs agree with the primary target's); a byte changed in a fallback chunk
is refused by `brink verify` and by a fallback run (a primary run never reads those chunks);
streaming and deltas work on such packages. (tests/unit/package_fallback_test.cc covers the
reader's side in detail.)"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import MODELS_DIR, Brink

DIGITS = os.path.join(MODELS_DIR, "digits_cnn.onnx")


@pytest.fixture(scope="module")
def packages(brink, tmp_path_factory):
    d = tmp_path_factory.mktemp("fallback")
    plain, fb = d / "plain.brink", d / "fallback.brink"
    a = brink.json("pack", DIGITS, "-o", plain, "--chunk-size", "4", "--json")
    b = brink.json("pack", DIGITS, "-o", fb, "--chunk-size", "4", "--fallback", "portable", "--json")
    assert a["fallback_bytes"] == 0 and b["fallback_bytes"] > 0
    assert b["fallback_targets"] == ["portable"]
    assert b["file_bytes"] - a["file_bytes"] >= b["fallback_bytes"]
    return plain, fb


def run(brink: Brink, pkg, d, *extra) -> np.ndarray:
    proc = brink("run", pkg, "--random", "--seed", "5", "-o", d, *extra)
    assert proc.returncode == 0, Brink.describe(proc)
    return np.load(d / "logits.npy")


def fallback_chunks(brink: Brink, pkg) -> list[dict]:
    chunks = brink.json("info", pkg, "--json")["chunks"]
    return [c for c in chunks if c["fallback"]]


def test_info_shows_targets_and_the_one_used(brink, packages, monkeypatch):
    _, fb = packages
    info = brink.json("info", fb, "--json")
    assert info["format"] == "2.1"
    assert info["targets"] == [info["target"], "portable"]
    assert info["uses_target"] == info["target"]
    assert info["chunks"][-1]["fallback"] and not info["chunks"][1]["fallback"]
    assert any(c["packed"] for c in info["chunks"])
    text = brink("info", fb).stdout
    assert f"target {info['target']}, portable (fallback)" in text
    assert f"this CPU:   uses {info['target']}" in text
    monkeypatch.setenv("BRINK_ISA", "portable")
    assert brink.json("info", fb, "--json")["uses_target"] == "portable"
    assert "this CPU:   uses portable" in brink("info", fb).stdout


def test_fallback_runs_like_the_primary(brink, packages, tmp_path, monkeypatch):
    plain, fb = packages
    want = run(brink, plain, tmp_path / "plain")
    np.testing.assert_array_equal(run(brink, fb, tmp_path / "primary"), want)
    streamed = brink.json("run", fb, "--stream", "--random", "--seed", "5", "--json")
    assert streamed["stream"]["target"] == brink.json("info", fb, "--json")["target"]
    monkeypatch.setenv("BRINK_ISA", "portable")
    np.testing.assert_allclose(run(brink, fb, tmp_path / "fallback"), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(brink, fb, tmp_path / "fallback_stream", "--stream"), want,
                               rtol=1e-4, atol=1e-5)
    streamed = brink.json("run", fb, "--stream", "--random", "--seed", "5", "--json")
    assert streamed["stream"]["target"] == "portable"


def test_a_changed_fallback_byte_is_refused(brink, packages, tmp_path, monkeypatch):
    _, fb = packages
    chunk = fallback_chunks(brink, fb)[-1]
    data = bytearray(fb.read_bytes())
    data[chunk["offset"] + chunk["size"] // 2] ^= 0x10
    bad = tmp_path / "bad.brink"
    bad.write_bytes(bytes(data))
    brink.expect_error("verify", bad, mentions=["SHA-256"])
    # The primary target never reads the fallback chunks, but hashes them: refused too...
    brink.expect_error("run", bad, "--random", mentions=["SHA-256", "(weights"])
    # ...as by a run that uses them, naming the chunk.
    monkeypatch.setenv("BRINK_ISA", "portable")
    brink.expect_error("run", bad, "--random", mentions=["SHA-256", "(weights"])
    brink.expect_error("run", bad, "--stream", "--random", mentions=["SHA-256"])


def test_diff_and_patch_keep_fallback_chunks(brink, packages, tmp_path, monkeypatch):
    plain, fb = packages
    delta = tmp_path / "u.delta"
    proc = brink("diff", plain, fb, "-o", delta)
    assert proc.returncode == 0, Brink.describe(proc)
    rebuilt = tmp_path / "rebuilt.brink"
    proc = brink("patch", plain, delta, "-o", rebuilt)
    assert proc.returncode == 0, Brink.describe(proc)
    assert rebuilt.read_bytes() == fb.read_bytes()
    monkeypatch.setenv("BRINK_ISA", "portable")
    np.testing.assert_allclose(run(brink, rebuilt, tmp_path / "r"), run(brink, fb, tmp_path / "f"))


def test_bad_fallback_options_are_refused(brink, tmp_path):
    brink.expect_error("pack", DIGITS, "-o", tmp_path / "x.brink", "--fallback", "risc-v",
                       mentions=["fallback target 'risc-v'"])
    brink.expect_error("pack", DIGITS, "-o", tmp_path / "x.brink", "--target", "portable",
                       "--fallback", "portable", mentions=["portable"])
    assert not (tmp_path / "x.brink").exists()
