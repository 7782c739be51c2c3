"""The .brink package from the command line and the Python module: keygen, pack, verify, info,
run; a package runs like the .onnx it came from; damage, a wrong key and a foreign target
are refused with one line on stderr and a non-zero exit. (tests/unit/package_test.cc covers
the format byte by byte.)"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import MODELS_DIR, Brink, check_clean_failure

DIGITS = os.path.join(MODELS_DIR, "digits_cnn.onnx")


@pytest.fixture(scope="module")
def keys(brink, tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    proc = brink("keygen", "-o", d / "dev", "--expires", "2099-12-31")
    assert proc.returncode == 0, Brink.describe(proc)
    other = brink("keygen", "-o", d / "other")
    assert other.returncode == 0, Brink.describe(other)
    assert (d / "dev.pub").read_text().strip().endswith("expires=2099-12-31")
    assert oct((d / "dev.key").stat().st_mode & 0o777) == "0o600"
    return d


@pytest.fixture(scope="module")
def package(brink, keys, tmp_path_factory):
    d = tmp_path_factory.mktemp("pkg")
    (d / "labels.txt").write_text("\n".join(str(i) for i in range(10)) + "\n")
    (d / "meta.json").write_text(json.dumps({"mean": [0.0], "std": [16.0], "layout": "NCHW"}))
    out = d / "digits.brink"
    proc = brink("pack", DIGITS, "-o", out, "--sign", keys / "dev.key", "--name", "digits",
                 "--version", "1.0.0", "--labels", d / "labels.txt", "--meta", d / "meta.json", "--json")
    assert proc.returncode == 0, Brink.describe(proc)
    summary = json.loads(proc.stdout)
    assert summary["file_bytes"] == out.stat().st_size
    assert summary["signer"] and summary["chunks"] >= 2
    return out


def test_info_and_verify(brink, keys, package):
    info = json.loads(brink("info", package, "--json").stdout)
    assert info["name"] == "digits" and info["version"] == "1.0.0"
    assert info["labels"] == [str(i) for i in range(10)]
    assert info["meta"]["layout"] == "NCHW"
    assert info["inputs"][0]["name"] == "image"
    assert all(c["offset"] % 64 == 0 for c in info["chunks"])
    proc = brink("verify", package, "--pubkey", keys / "dev.pub", "--json")
    assert proc.returncode == 0, Brink.describe(proc)
    v = json.loads(proc.stdout)
    assert v["ok"] and v["signer_trusted"] and v["runs_here"]


def test_runs_like_the_onnx(brink, keys, package, tmp_path):
    x = np.random.default_rng(1).random((4, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for name, model, extra in [("onnx", DIGITS, []), ("brink", package, ["--pubkey", keys / "dev.pub"])]:
        proc = brink("run", model, "--input", f"image={tmp_path / 'x.npy'}", "--output-dir", tmp_path / name, *extra)
        assert proc.returncode == 0, Brink.describe(proc)
        outs[name] = np.load(tmp_path / name / "logits.npy")
    np.testing.assert_array_equal(outs["onnx"], outs["brink"])
    brink_module = pytest.importorskip("brink") if os.environ.get("BRINK_REQUIRE_PYTHON_MODULE") != "1" \
        else __import__("brink")
    for kwargs in ({}, {"pubkey": keys / "dev.pub"}):
        session = brink_module.InferenceSession(str(package), **kwargs)
        (y,) = session.run(None, {"image": x})
        np.testing.assert_array_equal(y, outs["onnx"])
    with pytest.raises(brink_module.InvalidModel, match="not by the trusted key"):
        brink_module.InferenceSession(package, pubkey=str(keys / "other.pub"))


def test_refusals(brink, keys, package, tmp_path):
    data = package.read_bytes()
    # Damage in the weights, in the manifest, in the signature.
    for where in (len(data) // 3, len(data) - 300, len(data) - 10):
        bad = bytearray(data)
        bad[where] ^= 0x01
        path = tmp_path / f"bad{where}.brink"
        path.write_bytes(bytes(bad))
        for cmd in (["verify", path], ["run", path, "--random"], ["info", path]):
            check_clean_failure(brink(*cmd))
    # Signed by someone else.
    proc = brink("verify", package, "--pubkey", keys / "other.pub")
    check_clean_failure(proc)
    assert "not by the trusted key" in proc.stderr
    # A package for another CPU: info and verify read it, run refuses it.
    foreign = tmp_path / "foreign.brink"
    assert brink("pack", DIGITS, "-o", foreign, "--target", "aarch64").returncode == 0
    assert brink("info", foreign).returncode == 0
    proc = brink("run", foreign, "--random")
    check_clean_failure(proc)
    assert "package targets aarch64" in proc.stderr
    # Bad pack arguments leave no file behind.
    for args in (["--target", "sparc"], ["--sign", keys / "dev.pub"], ["--meta", DIGITS]):
        out = tmp_path / "never.brink"
        check_clean_failure(brink("pack", DIGITS, "-o", out, *args))
        assert not out.exists()
    check_clean_failure(brink("pack", package, "-o", tmp_path / "again.brink"))
    check_clean_failure(brink("keygen", "-o", keys / "dev"))  # never overwrites a secret key


def test_diff_and_patch(brink, package, tmp_path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(DIGITS)
    last = max((t for t in m.graph.initializer if len(t.dims) == 2), key=lambda t: list(m.graph.initializer).index(t))
    last.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(last) * np.float32(0.5), last.name))
    tuned = tmp_path / "tuned.onnx"
    onnx.save(m, tuned)
    old, new = tmp_path / "v1.brink", tmp_path / "v2.brink"
    for src, dst in ((DIGITS, old), (tuned, new)):
        assert brink("pack", src, "-o", dst, "--chunk-size", "4").returncode == 0
    proc = brink("diff", old, new, "-o", tmp_path / "u.delta", "--json")
    assert proc.returncode == 0, Brink.describe(proc)
    d = json.loads(proc.stdout)
    assert 0 < d["changed_chunks"] < d["total_chunks"]
    assert d["delta_bytes"] < d["new_bytes"]
    proc = brink("patch", old, tmp_path / "u.delta", "-o", tmp_path / "rebuilt.brink")
    assert proc.returncode == 0, Brink.describe(proc)
    assert (tmp_path / "rebuilt.brink").read_bytes() == new.read_bytes()
    # Applied to the wrong base, or damaged: refused, nothing written.
    out = tmp_path / "never.brink"
    check_clean_failure(brink("patch", new, tmp_path / "u.delta", "-o", out))
    bad = bytearray((tmp_path / "u.delta").read_bytes())
    bad[-5] ^= 1
    (tmp_path / "bad.delta").write_bytes(bytes(bad))
    check_clean_failure(brink("patch", old, tmp_path / "bad.delta", "-o", out))
    check_clean_failure(brink("patch", old, DIGITS, "-o", out))
    assert not out.exists()


def test_max_memory(brink, package, tmp_path):
    outs = {}
    for tag, extra in (("full", []), ("bounded", ["--max-memory", "1"])):
        proc = brink("run", package, "--random", "--seed", "5", "--output-dir", tmp_path / tag, *extra)
        assert proc.returncode == 0, Brink.describe(proc)
        outs[tag] = np.load(tmp_path / tag / "logits.npy")
    np.testing.assert_array_equal(outs["full"], outs["bounded"])
    check_clean_failure(brink("run", package, "--random", "--max-memory", "0"))


def test_encryption(brink, keys, tmp_path):
    assert brink("keygen", "--encryption", "-o", tmp_path / "k").returncode == 0
    assert brink("keygen", "--encryption", "-o", tmp_path / "other").returncode == 0
    out = tmp_path / "enc.brink"
    proc = brink("pack", DIGITS, "-o", out, "--encrypt", tmp_path / "k.enckey", "--sign", keys / "dev.key")
    assert proc.returncode == 0, Brink.describe(proc)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(2).random((2, 1, 8, 8), dtype=np.float32))
    runs = {}
    for tag, model, extra in (("plain", DIGITS, []), ("enc", out, ["--key", tmp_path / "k.enckey"])):
        proc = brink("run", model, "--input", f"image={x}", "--output-dir", tmp_path / tag, *extra)
        assert proc.returncode == 0, Brink.describe(proc)
        runs[tag] = np.load(tmp_path / tag / "logits.npy")
    np.testing.assert_array_equal(runs["plain"], runs["enc"])
    proc = brink("run", out, "--random")
    check_clean_failure(proc)
    assert "is encrypted" in proc.stderr
    check_clean_failure(brink("run", out, "--random", "--key", tmp_path / "other.enckey"))
    check_clean_failure(brink("pack", DIGITS, "-o", tmp_path / "x.brink", "--encrypt", keys / "dev.pub"))


def test_device_runner(brink, keys, package, tmp_path):
    """brink-run (the device-side runner, no protobuf/ONNX) runs a signed package like brink run."""
    runner = os.path.join(os.path.dirname(brink.path), "brink-run")
    if not os.access(runner, os.X_OK):
        pytest.skip(f"{runner} not built")
    import subprocess
    libs = subprocess.run(["ldd", runner], capture_output=True, text=True).stdout
    assert "protobuf" not in libs and "onnx" not in libs
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(4).random((1, 1, 8, 8), dtype=np.float32))
    proc = subprocess.run([runner, str(package), "--pubkey", str(keys / "dev.pub"), "--input", f"image={x}",
                           "--output-dir", str(tmp_path), "--repeat", "3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ref = brink("run", DIGITS, "--input", f"image={x}", "--output-dir", tmp_path / "ref")
    assert ref.returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), np.load(tmp_path / "ref" / "logits.npy"))
    bad = subprocess.run([runner, str(package), "--pubkey", str(keys / "other.pub")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    assert subprocess.run([runner], capture_output=True).returncode == 2


def test_module_pack_and_verify(keys, tmp_path):
    if os.environ.get("BRINK_REQUIRE_PYTHON_MODULE") == "1":
        import brink as brink_module
    else:
        brink_module = pytest.importorskip("brink")
    out = tmp_path / "m.brink"
    summary = brink_module.pack(DIGITS, out, sign=keys / "dev.key", version="2.0.0", labels=["a", "b"],
                                meta={"std": 16.0}, chunk_size=4096)
    assert summary["file_bytes"] == out.stat().st_size and summary["prepacked_nodes"] > 0
    card = brink_module.verify(out, pubkey=keys / "dev.pub")
    assert card["name"] == "digits_cnn" and card["version"] == "2.0.0" and card["signer_trusted"]
    assert card["labels"] == ["a", "b"] and json.loads(card["meta_json"]) == {"std": 16.0}
    x = np.random.default_rng(6).random((1, 1, 8, 8), dtype=np.float32)
    (a,) = brink_module.InferenceSession(DIGITS).run(None, {"image": x})
    (b,) = brink_module.InferenceSession(out, pubkey=keys / "dev.pub").run(None, {"image": x})
    np.testing.assert_array_equal(a, b)
    with pytest.raises(brink_module.InvalidModel, match="not by the trusted key"):
        brink_module.verify(out, pubkey=keys / "other.pub")
    data = bytearray(out.read_bytes())
    data[200] ^= 1
    (tmp_path / "bad.brink").write_bytes(bytes(data))
    with pytest.raises(brink_module.InvalidModel, match="SHA-256"):
        brink_module.verify(tmp_path / "bad.brink")
    with pytest.raises(brink_module.InvalidArgument):
        brink_module.pack(DIGITS, tmp_path / "x.brink", target="sparc")
    with pytest.raises(brink_module.InvalidArgument):
        brink_module.pack(DIGITS, tmp_path / "x.brink", meta={"bad": object()})
    assert not (tmp_path / "x.brink").exists()


def test_module_pack_with_fallback_and_int8_kernels(brink, tmp_path):
    """brink.pack(fallback=..., int8_kernels=...) and InferenceSession(int8_kernels=...) do what
    `brink pack --fallback` and `--int8-kernels` do; bad values are refused before anything."""
    if os.environ.get("BRINK_REQUIRE_PYTHON_MODULE") == "1":
        import brink as brink_module
    else:
        brink_module = pytest.importorskip("brink")
    out = tmp_path / "fb.brink"
    summary = brink_module.pack(DIGITS, out, fallback=["portable"])
    cli = brink.json("pack", DIGITS, "-o", tmp_path / "cli.brink", "--fallback", "portable", "--json")
    assert summary["fallback_targets"] == ["portable"]
    assert summary["fallback_bytes"] == cli["fallback_bytes"] > 0
    card = brink_module.verify(out)
    assert card["targets"][1:] == ["portable"] and card["runs_here"]
    assert card["target_here"] == card["targets"][0]

    # An int8 model: the integer and float kernels of its quantized convs agree closely, and a
    # package compiled for the integer ones runs like the .onnx under them.
    q = tmp_path / "digits.int8.onnx"
    proc = brink("quantize", DIGITS, "-o", q, "--calib", os.path.join(MODELS_DIR, "digits_calib.npz"),
                 "--threads", "1", timeout=600)
    assert proc.returncode == 0, Brink.describe(proc)
    x = np.random.default_rng(8).random((3, 1, 8, 8), dtype=np.float32)
    ys = {k: brink_module.InferenceSession(q, int8_kernels=k).run(None, {"image": x})[0]
          for k in ("faster", "integer", "float")}
    np.testing.assert_allclose(ys["integer"], ys["float"], atol=0.05 * float(np.abs(ys["float"]).max()))
    brink_module.pack(q, tmp_path / "q.brink", int8_kernels="integer")
    (y,) = brink_module.InferenceSession(tmp_path / "q.brink", int8_kernels="integer").run(None, {"image": x})
    np.testing.assert_array_equal(y, ys["integer"])

    with pytest.raises(brink_module.InvalidArgument, match="int8"):
        brink_module.InferenceSession(q, int8_kernels="fastest")
    for bad in ({"fallback": "portable"}, {"fallback": ["sparc"]}, {"int8_kernels": "fastest"}):
        with pytest.raises(brink_module.InvalidArgument):
            brink_module.pack(DIGITS, tmp_path / "never.brink", **bad)
    assert not (tmp_path / "never.brink").exists()


def test_int8_package_stores_packed_integer_weights(brink, tmp_path, monkeypatch):
    """An INT8 model's integer layers (brink.QConv, its depthwise kernel, QGemm) are stored
    pre-packed: a load adopts them in place, and the package runs exactly like the .onnx."""
    q = tmp_path / "digits.int8.onnx"
    proc = brink("quantize", DIGITS, "-o", q, "--calib", os.path.join(MODELS_DIR, "digits_calib.npz"),
                 "--threads", "1", timeout=600)
    assert proc.returncode == 0, Brink.describe(proc)
    sizes = {}
    for name, extra in [("packed", []), ("plain", ["--no-prepack"])]:
        out = tmp_path / f"{name}.brink"
        proc = brink("pack", q, "-o", out, "--int8-kernels", "integer", "--json", *extra)
        assert proc.returncode == 0, Brink.describe(proc)
        summary = json.loads(proc.stdout)
        info = json.loads(brink("info", out, "--json").stdout)
        assert info["prepacked_nodes"] == summary["prepacked_nodes"]
        sizes[name] = (summary["prepacked_nodes"], out.stat().st_size)
    # Every integer conv of the digits CNN (and its classifier, when it is a QGemm).
    assert sizes["packed"][0] >= 2 and sizes["plain"][0] == 0, sizes
    x = np.random.default_rng(3).random((5, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for name, model in [("onnx", q), ("packed", tmp_path / "packed.brink"), ("plain", tmp_path / "plain.brink")]:
        proc = brink("run", model, "--input", f"image={tmp_path / 'x.npy'}", "--int8-kernels", "integer",
                     "--output-dir", tmp_path / name)
        assert proc.returncode == 0, Brink.describe(proc)
        outs[name] = np.load(tmp_path / name / "logits.npy")
    np.testing.assert_array_equal(outs["onnx"], outs["packed"])
    np.testing.assert_array_equal(outs["onnx"], outs["plain"])
    # "faster" at load keeps the integer kernels of the layers that hold packed int8 weights.
    proc = brink("run", tmp_path / "packed.brink", "--input", f"image={tmp_path / 'x.npy'}",
                 "--output-dir", tmp_path / "faster")
    assert proc.returncode == 0, Brink.describe(proc)
    np.testing.assert_array_equal(outs["onnx"], np.load(tmp_path / "faster" / "logits.npy"))
    # Packed for this machine's int8 kernels: where another kernel would run (the portable one
    # here), the load is refused with the layout it found and the one it makes.
    monkeypatch.setenv("BRINK_ISA", "portable")
    brink.expect_error("run", tmp_path / "packed.brink", "--random", mentions=("this build packs", "portable"))
