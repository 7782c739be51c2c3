"""Bad input must be refused cleanly: a positive exit code (never a signal), exactly one line on
stderr starting with "error: " and naming the thing at fault, within a time limit.

Covers broken model files (truncated, bit-flipped, garbage, empty, missing, text, a directory,
structurally invalid ONNX), wrong feeds (name, shape, dtype, missing, duplicated), corrupt
.npy/.npz files and malformed command lines. Everything is built here from
models/digits_cnn.onnx and small onnx.helper graphs; nothing needs torch.
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import MODELS_DIR, Brink, check_clean_failure, check_not_crashed

DIGITS = os.path.join(MODELS_DIR, "digits_cnn.onnx")
TIMEOUT = 60  # seconds per command: every case here takes milliseconds when handled well


@pytest.fixture(scope="module")
def digits_bytes() -> bytes:
    with open(DIGITS, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_input")
    np.save(d / "good.npy", np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32))
    return d


def good_input(work) -> str:
    return f"image={work / 'good.npy'}"


# ------------------------------------------------------------------------------------------
# Broken model files


def _tiny_model(nodes, inputs, outputs, initializers=(), opset=13, value_info=()):
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=list(initializers), value_info=list(value_info))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="brink-tests")
    m.ir_version = 8
    return m.SerializeToString()


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _out(name, rank=4):
    """A graph output of known rank and unknown (symbolic) dims."""
    return _f32(name, [f"{name}_d{i}" for i in range(rank)])


def _image_in():
    return [_f32("image", ["batch", 1, 8, 8])]


def _raw_tensor(name, dims, raw: bytes):
    """A float initializer whose raw_data need not match its dims (helper.make_tensor checks)."""
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, raw_data=raw)
    t.dims.extend(dims)
    return t


def structurally_bad_models():
    """(id, bytes, strings the error must name) for files that parse but cannot run."""
    cases = []
    cases.append(("no_graph", onnx.ModelProto(ir_version=8).SerializeToString(), []))
    cases.append(("unknown_op", _tiny_model([helper.make_node("NoSuchOp", ["image"], ["y"], name="mystery")],
                                            _image_in(), [_out("y")]), ["NoSuchOp"]))
    m = helper.make_model(helper.make_graph([helper.make_node("Frob", ["image"], ["y"], name="frob", domain="com.example")],
                                            "g", _image_in(), [_out("y")]),
                          opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    m.ir_version = 8
    cases.append(("unknown_domain", m.SerializeToString(), ["Frob"]))
    cases.append(("opset_999", _tiny_model([helper.make_node("Relu", ["image"], ["y"])], _image_in(),
                                           [_f32("y", ["batch", 1, 8, 8])], opset=999), ["999"]))
    cases.append(("undefined_value", _tiny_model([helper.make_node("Add", ["image", "ghost"], ["y"], name="add_ghost")],
                                                 _image_in(), [_out("y")]), ["ghost"]))
    cases.append(("cycle", _tiny_model([helper.make_node("Add", ["image", "z"], ["y"], name="loop_a"),
                                        helper.make_node("Relu", ["y"], ["z"], name="loop_b")],
                                       _image_in(), [_out("z")]), []))
    cases.append(("output_never_produced", _tiny_model([helper.make_node("Relu", ["image"], ["y"])], _image_in(),
                                                       [_out("nowhere")]), ["nowhere"]))
    w = _raw_tensor("w_short", [16, 1, 3, 3], b"\0" * 10)
    cases.append(("initializer_too_short", _tiny_model([helper.make_node("Conv", ["image", "w_short"], ["y"], name="c")],
                                                       _image_in(), [_out("y")], [w]), ["w_short"]))
    w = _raw_tensor("w_huge", [1 << 20, 1 << 20, 1 << 10, 3], b"\0" * 64)
    cases.append(("initializer_huge_dims", _tiny_model([helper.make_node("Conv", ["image", "w_huge"], ["y"], name="c")],
                                                       _image_in(), [_out("y")], [w]), ["w_huge"]))
    w = helper.make_tensor("w", TensorProto.FLOAT, [16, 3, 3, 3], np.zeros(16 * 27, np.float32))
    cases.append(("conv_channel_mismatch", _tiny_model([helper.make_node("Conv", ["image", "w"], ["y"], name="bad_conv")],
                                                       _image_in(), [_out("y")], [w]), ["bad_conv"]))
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 1, 3, 3], np.zeros(36, np.float32))
    cases.append(("conv_negative_pads", _tiny_model(
        [helper.make_node("Conv", ["image", "w"], ["y"], name="neg_pad_conv", pads=[-100, 0, -100, 0])],
        _image_in(), [_out("y")], [w]), ["neg_pad_conv"]))
    cases.append(("reshape_bad_count", _tiny_model(
        [helper.make_node("Reshape", ["image", "shape"], ["y"], name="bad_reshape")], [_f32("image", [1, 1, 8, 8])],
        [_out("y", 2)],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [7, 5])]), ["bad_reshape"]))
    cases.append(("input_without_type", _tiny_model([helper.make_node("Relu", ["image"], ["y"])],
                                                    [helper.make_empty_tensor_value_info("image")],
                                                    [_out("y")]), []))
    return cases


def file_cases(digits: bytes):
    rng = np.random.default_rng(0)
    n = len(digits)
    cases = []  # (id, content, whether the error must name the file)
    for cut in (1, 3, 7, 64, n // 4, n // 2, 3 * n // 4, n - 64, n - 1):
        cases.append((f"truncated_at_{cut}", digits[:cut], True))
    cases.append(("empty", b"", True))
    for size in (1, 100, 5000, 200_000):
        cases.append((f"garbage_{size}", rng.integers(0, 256, size, dtype=np.uint8).tobytes(), True))
    # Starts like a real ModelProto (ir_version, then a graph field of absurd length).
    cases.append(("bogus_graph_length", b"\x08\x08\x3a\xff\xff\xff\xff\x0f" + b"\x00" * 32, True))
    cases.append(("text", b"This is not an ONNX model.\nJust some text, line after line.\n" * 20, True))
    cases.append(("json", b'{"graph": {"node": []}, "ir_version": 8}\n', True))
    cases.append(("npy_as_model", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
                  + b" " * 40 + b"\n" + b"\0" * 8, True))
    return cases


MODEL_COMMANDS = {
    "run": lambda path, work: ["run", path, "--input", good_input(work), "--output-dir", str(work / "out")],
    "info": lambda path, work: ["info", path, "--json"],
    "bench": lambda path, work: ["bench", path, "--iterations", "1", "--warmup", "0", "--json"],
}


def _file_case_params():
    with open(DIGITS, "rb") as f:
        data = f.read()
    return [pytest.param(c, id=c[0]) for c in file_cases(data)]


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("case", _file_case_params())
def test_corrupt_model_file(brink, work, case, command):
    name, content, must_name_file = case
    path = work / f"{name}.onnx"
    path.write_bytes(content)
    brink.expect_error(*MODEL_COMMANDS[command](str(path), work), mentions=[path.name] if must_name_file else [],
                       timeout=TIMEOUT)


def check_info_refuses_or_reports(proc, mentions=()):
    """`brink info` describes models that cannot run: it may exit 0, but then its JSON must list
    the reason among "problems" (and name the things in `mentions`); otherwise a clean error."""
    if proc.returncode != 0:
        check_clean_failure(proc)
        for m in mentions:
            assert m in proc.stderr, f"the error does not name {m!r}\n{Brink.describe(proc)}"
        return
    info = json.loads(proc.stdout)
    problems = info.get("problems")
    assert isinstance(problems, list) and problems, f"info accepted the model without problems\n{Brink.describe(proc)}"
    assert info.get("runnable", False) is False, Brink.describe(proc)
    text = " ".join(map(str, problems))
    for m in mentions:
        assert m in text, f"no problem names {m!r}\n{Brink.describe(proc)}"


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in structurally_bad_models()])
def test_invalid_model(brink, work, case, command):
    """Files that parse as ONNX but cannot run: run and bench refuse them at load; info refuses
    them or lists the problem."""
    name, content, mentions = case
    path = work / f"{name}.onnx"
    path.write_bytes(content)
    args = MODEL_COMMANDS[command](str(path), work)
    if command == "info":
        check_info_refuses_or_reports(brink(*args, timeout=TIMEOUT), mentions)
    else:
        brink.expect_error(*args, mentions=mentions, timeout=TIMEOUT)


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_missing_model_file(brink, work, command):
    path = work / "does_not_exist.onnx"
    brink.expect_error(*MODEL_COMMANDS[command](str(path), work), mentions=[path.name], timeout=TIMEOUT)


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_model_is_directory(brink, work, command):
    path = work / "a_directory.onnx"
    path.mkdir(exist_ok=True)
    brink.expect_error(*MODEL_COMMANDS[command](str(path), work), mentions=[path.name], timeout=TIMEOUT)


def _bit_flip_cases(data: bytes, count=48, seed=0):
    """Flips 1 (or, every fourth case, 4) bits; a third of the cases in the first KB (nodes and
    their attributes), a third in the last 512 bytes (graph inputs/outputs, opset), a third anywhere."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(count):
        lo, hi = [(0, 1024), (len(data) - 512, len(data)), (0, len(data))][k % 3]
        buf = bytearray(data)
        flips = []
        for _ in range(4 if k % 4 == 3 else 1):
            pos, bit = int(rng.integers(lo, hi)), int(rng.integers(0, 8))
            buf[pos] ^= 1 << bit
            flips.append(f"{pos}.{bit}")
        cases.append(("flip_" + "_".join(flips), bytes(buf)))
    return cases


def _bit_flip_params():
    with open(DIGITS, "rb") as f:
        data = f.read()
    return [pytest.param(c, id=c[0]) for c in _bit_flip_cases(data)]


@pytest.mark.parametrize("case", _bit_flip_params())
def test_bit_flipped_model(brink, work, case):
    """A flipped bit may leave a loadable model (a changed weight): then run must succeed or
    fail cleanly; it must never crash or hang."""
    name, content = case
    path = work / f"{name}.onnx"
    path.write_bytes(content)
    out = work / f"out_{name}"
    proc = brink("run", str(path), "--input", good_input(work), "--output-dir", str(out), "--json", timeout=TIMEOUT)
    check_not_crashed(proc)
    if proc.returncode == 0:
        summary = json.loads(proc.stdout)
        for o in summary["outputs"]:
            assert os.path.isfile(o["file"])
    proc = brink("info", str(path), "--json", timeout=TIMEOUT)
    check_not_crashed(proc)
    if proc.returncode == 0:
        assert isinstance(json.loads(proc.stdout), dict)


# ------------------------------------------------------------------------------------------
# Wrong feeds


def _save(work, name, array) -> str:
    p = work / name
    np.save(p, array)
    return str(p)


@pytest.fixture(scope="module")
def feed_model(work) -> str:
    """image float32 [batch,1,8,8] -> y = Relu(2 * image): the feed checks need a model whose
    operators are certain to be supported, so that the only fault is the one under test."""
    path = work / "feed_model.onnx"
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    path.write_bytes(_tiny_model([helper.make_node("Mul", ["image", "two"], ["scaled"], name="scale"),
                                  helper.make_node("Relu", ["scaled"], ["y"], name="relu")],
                                 _image_in(), [_f32("y", ["batch", 1, 8, 8])], [two]))
    return str(path)


def test_feed_model_runs(brink, feed_model, work):
    """The control: with a good feed the model runs and gives Relu(2x)."""
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8), dtype=np.float32)
    p = _save(work, "control.npy", x)
    proc = brink("run", feed_model, "--input", f"image={p}", "--output-dir", str(work / "control"), timeout=TIMEOUT)
    assert proc.returncode == 0, brink.describe(proc)
    np.testing.assert_array_equal(np.load(work / "control" / "y.npy"), np.maximum(2 * x, 0))



def test_wrong_input_name(brink, feed_model, work):
    p = _save(work, "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    brink.expect_error("run", feed_model, "--input", f"pixels={p}", mentions=["pixels"], timeout=TIMEOUT)


def test_extra_unknown_input(brink, feed_model, work):
    p = _save(work, "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    brink.expect_error("run", feed_model, "--input", f"image={p}", "--input", f"extra_thing={p}",
                       mentions=["extra_thing"], timeout=TIMEOUT)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 1, 8, 9), (1, 3, 8, 8), (64,), (1, 1, 1, 8, 8), (1, 1, 0, 8)],
                         ids=lambda s: "x".join(map(str, s)))
def test_wrong_input_shape(brink, feed_model, work, shape):
    p = _save(work, "shape_" + "x".join(map(str, shape)) + ".npy", np.zeros(shape, np.float32))
    brink.expect_error("run", feed_model, "--input", f"image={p}", mentions=["image"], timeout=TIMEOUT)


def test_scalar_input(brink, feed_model, work):
    p = _save(work, "scalar.npy", np.float32(1.0))
    brink.expect_error("run", feed_model, "--input", f"image={p}", mentions=["image"], timeout=TIMEOUT)


@pytest.mark.parametrize("dtype", ["float64", "float16", "int64", "int32", "uint8", "bool"])
def test_wrong_input_dtype(brink, feed_model, work, dtype):
    p = _save(work, f"dtype_{dtype}.npy", np.zeros((1, 1, 8, 8), dtype))
    brink.expect_error("run", feed_model, "--input", f"image={p}", mentions=["image"], timeout=TIMEOUT)


def test_missing_input(brink, feed_model, work):
    brink.expect_error("run", feed_model, mentions=["image"], timeout=TIMEOUT)


def test_missing_one_of_two_inputs(brink, work):
    path = work / "two_inputs.onnx"
    path.write_bytes(_tiny_model([helper.make_node("Add", ["first_operand", "second_operand"], ["y"])],
                                 [_f32("first_operand", [2, 3]), _f32("second_operand", [2, 3])], [_f32("y", [2, 3])]))
    a = _save(work, "a.npy", np.ones((2, 3), np.float32))
    brink.expect_error("run", str(path), "--input", f"first_operand={a}", mentions=["second_operand"], timeout=TIMEOUT)
    # The same model runs when both are given (so the refusal above was about the missing input).
    proc = brink("run", str(path), "--input", f"first_operand={a}", "--input", f"second_operand={a}",
                 "--output-dir", str(work / "two"), timeout=TIMEOUT)
    assert proc.returncode == 0, brink.describe(proc)
    np.testing.assert_array_equal(np.load(work / "two" / "y.npy"), np.full((2, 3), 2, np.float32))


def test_input_given_twice(brink, feed_model, work):
    p = _save(work, "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    brink.expect_error("run", feed_model, "--input", f"image={p}", "--input", f"image={p}", mentions=["image"],
                       timeout=TIMEOUT)


def test_input_in_npz_and_on_command_line(brink, feed_model, work):
    p = _save(work, "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    z = work / "x.npz"
    np.savez(z, image=np.zeros((1, 1, 8, 8), np.float32))
    brink.expect_error("run", feed_model, "--inputs", str(z), "--input", f"image={p}", mentions=["image"],
                       timeout=TIMEOUT)


def test_npz_with_wrong_name(brink, feed_model, work):
    z = work / "wrong_name.npz"
    np.savez(z, pixels=np.zeros((1, 1, 8, 8), np.float32))
    brink.expect_error("run", feed_model, "--inputs", str(z), mentions=["pixels"], timeout=TIMEOUT)


# ------------------------------------------------------------------------------------------
# Corrupt .npy / .npz files


def _npy_header(descr="<f4", shape=(1, 1, 8, 8), fortran=False, version=1, pad_to=64, header=None) -> bytes:
    if header is None:
        header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
    h = header.encode("latin1")
    prefix = 10 if version == 1 else 12
    total = -(-(prefix + len(h) + 1) // pad_to) * pad_to
    h = h + b" " * (total - prefix - len(h) - 1) + b"\n"
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h


GOOD_DATA = np.zeros(64, np.float32).tobytes()


def corrupt_npy_cases():
    good = _npy_header() + GOOD_DATA
    return [
        ("empty", b""),
        ("magic_only", b"\x93NUMPY"),
        ("bad_magic", b"\x93NUMPZ" + good[6:]),
        ("text", b"0.5 0.5 0.5\n" * 10),
        ("header_truncated", good[:30]),
        ("header_len_past_eof", good[:8] + struct.pack("<H", 60000) + good[10:]),
        ("data_truncated", good[:-4]),
        ("data_missing", _npy_header()),
        ("version_9", good[:6] + b"\x09\x00" + good[8:]),
        ("header_not_a_dict", _npy_header(header="[1, 2, 3]")),
        ("header_garbage", _npy_header(header="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8 ") + GOOD_DATA),
        ("header_missing_shape", _npy_header(header="{'descr': '<f4', 'fortran_order': False, }") + GOOD_DATA),
        ("header_missing_descr", _npy_header(header="{'fortran_order': False, 'shape': (1, 1, 8, 8), }") + GOOD_DATA),
        ("negative_dim", _npy_header(shape=(1, 1, -8, 8)) + GOOD_DATA),
        ("huge_shape", _npy_header(shape=(1 << 30, 1 << 30, 1 << 20, 8)) + GOOD_DATA),
        ("overflowing_shape", _npy_header(shape=(1 << 62, 1 << 62, 16, 8)) + GOOD_DATA),
        ("unknown_descr", _npy_header(descr="<q9") + GOOD_DATA),
        ("object_descr", _npy_header(descr="|O") + GOOD_DATA),
        ("unicode_descr", _npy_header(descr="<U4") + GOOD_DATA),
        ("structured_descr", _npy_header(header="{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 1, 8, 8), }")
         + GOOD_DATA),
        ("random_garbage", np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()),
    ]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in corrupt_npy_cases()])
def test_corrupt_npy(brink, feed_model, work, case):
    name, content = case
    p = work / f"corrupt_{name}.npy"
    p.write_bytes(content)
    brink.expect_error("run", feed_model, "--input", f"image={p}", mentions=[p.name], timeout=TIMEOUT)


def test_valid_but_unusual_npy_layouts(brink, feed_model, work, tmp_path):
    """Big-endian and Fortran-order .npy files are valid: either read correctly or refused cleanly."""
    x = np.random.default_rng(5).standard_normal((1, 1, 8, 8), dtype=np.float32)
    expected = np.maximum(x * 2, 0)
    for label, arr in (("bigendian", x.astype(">f4")), ("fortran", np.asfortranarray(x))):
        p = tmp_path / f"{label}.npy"
        np.save(p, arr)
        proc = brink("run", feed_model, "--input", f"image={p}", "--output-dir", str(tmp_path / label), timeout=TIMEOUT)
        check_not_crashed(proc)
        if proc.returncode == 0:
            got = np.load(tmp_path / label / "y.npy")
            np.testing.assert_array_equal(got, expected, err_msg=f"{label} .npy read wrongly")


def test_missing_npy(brink, feed_model, work):
    brink.expect_error("run", feed_model, "--input", f"image={work / 'nowhere.npy'}", mentions=["nowhere.npy"],
                       timeout=TIMEOUT)


def test_npy_is_directory(brink, feed_model, work):
    d = work / "dir.npy"
    d.mkdir(exist_ok=True)
    brink.expect_error("run", feed_model, "--input", f"image={d}", mentions=["dir.npy"], timeout=TIMEOUT)


def _zip_bytes(entries, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def corrupt_npz_cases():
    good_npy = _npy_header() + GOOD_DATA
    good = _zip_bytes([("image.npy", good_npy)])
    deflated = _zip_bytes([("image.npy", good_npy)], zipfile.ZIP_DEFLATED)
    bad_crc = bytearray(good)
    bad_crc[14] ^= 0xFF  # CRC-32 field of the local header
    bad_deflate = bytearray(deflated)
    bad_deflate[40:48] = b"\xff" * 8  # inside the compressed stream
    return [
        ("empty", b""),
        ("garbage", np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8).tobytes()),
        ("truncated", good[: len(good) // 2]),
        ("truncated_end", good[:-10]),
        ("corrupt_entry", _zip_bytes([("image.npy", good_npy[:20])])),
        ("entry_not_npy", _zip_bytes([("image.npy", b"hello")])),
        ("bad_deflate_stream", bytes(bad_deflate)),
        ("deflate_truncated", deflated[: len(deflated) - 40]),
        ("text", b"image=1,2,3\n"),
    ]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in corrupt_npz_cases()])
def test_corrupt_npz(brink, feed_model, work, case):
    name, content = case
    p = work / f"corrupt_{name}.npz"
    p.write_bytes(content)
    brink.expect_error("run", feed_model, "--inputs", str(p), mentions=[p.name], timeout=TIMEOUT)


def test_missing_npz(brink, feed_model, work):
    brink.expect_error("run", feed_model, "--inputs", str(work / "nowhere.npz"), mentions=["nowhere.npz"], timeout=TIMEOUT)


# ------------------------------------------------------------------------------------------
# Malformed command lines (exit code 2 per the README)


@pytest.mark.parametrize("args", [
    pytest.param([], id="no_subcommand"),
    pytest.param(["frobnicate"], id="unknown_subcommand"),
    pytest.param(["run"], id="run_without_model"),
    pytest.param(["run", DIGITS, "--no-such-option"], id="unknown_option"),
    pytest.param(["run", DIGITS, "--threads", "-3"], id="negative_threads"),
    pytest.param(["run", DIGITS, "--threads", "many"], id="non_numeric_threads"),
    pytest.param(["bench", DIGITS, "--iterations", "x"], id="non_numeric_iterations"),
])
def test_bad_command_line(brink, args):
    brink.expect_error(*args, timeout=TIMEOUT, exit_code=2)


@pytest.mark.parametrize("spec", ["image", "=x.npy", "image="], ids=["no_equals", "no_name", "no_file"])
def test_malformed_input_spec(brink, feed_model, spec):
    brink.expect_error("run", feed_model, "--input", spec, timeout=TIMEOUT)
