"""The Python module `brink` (python/): ONNX Runtime-like API, zero-copy NumPy, errors, threads.

Needs the module importable: scripts/test.sh installs it into .venv with `pip install .`;
for development, a CMake build with -DBRINK_PYTHON=ON and PYTHONPATH=<build>/python works
too. Without it every test here is skipped, unless BRINK_REQUIRE_PYTHON_MODULE=1 (set by
scripts/test.sh), which turns the missing module into a failure.

Covers: outputs equal ONNX Runtime's on the differential model set (models.py) and the
NodeArgs match ORT's; wrong input names, shapes and dtypes raise InvalidArgument with the
CLI's message; load errors map to the right BrinkError subclass; feeds and outputs are not
copied where the layout allows (and are copied where sharing would be visible); four Python
threads running one session get the serial results and the GIL is released while running;
a deleted session gives its memory back (RSS over repeated load/run/delete in a child).
Speed is measured by bench/python_overhead.py, not here.
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import models
from conftest import ROOT
from test_differential import assert_close


@pytest.fixture(scope="session")
def bk():
    try:
        import brink as module
    except ImportError as e:
        if os.environ.get("BRINK_REQUIRE_PYTHON_MODULE") == "1":
            pytest.fail(f"the brink Python module is not importable: {e}")
        pytest.skip(f"the brink Python module is not installed ({e}); `pip install .` or build with "
                    "-DBRINK_PYTHON=ON and set PYTHONPATH=<build>/python")
    return module


# ------------------------------------------------------------------------------------------
# Small models built here (no torch)


def _save_model(tmp_path, name, nodes, inputs, outputs, initializers=(), opset=13) -> str:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="brink-tests")
    m.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, str(path))
    return str(path)


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.fixture
def feed_model(tmp_path) -> str:
    """image float32 [batch,1,8,8] -> y = Relu(2 * image)."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    return _save_model(tmp_path, "feed_model", [helper.make_node("Mul", ["image", "two"], ["scaled"]),
                                                helper.make_node("Relu", ["scaled"], ["y"])],
                       [_f32("image", ["batch", 1, 8, 8])], [_f32("y", ["batch", 1, 8, 8])], [two])


def _matmul_chain(tmp_path, name, layers, n, rows) -> str:
    """x [rows, n] -> `layers` x (MatMul with an n x n weight, Relu): n*n*4*layers bytes of weights."""
    rng = np.random.default_rng(7)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((n, n), dtype=np.float32) / np.sqrt(n)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Relu", [f"m{i}"], [f"r{i}"]))
        prev = f"r{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    return _save_model(tmp_path, name, nodes, [_f32("x", [rows, n])], [_f32("y", [rows, n])], inits)


# ------------------------------------------------------------------------------------------
# Module basics


def test_version_and_cpu(bk):
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        version = re.search(r"project\(brink VERSION ([0-9.]+)", f.read()).group(1)
    assert bk.__version__ == version
    isas = bk.available_isas()
    assert isas[0] == "portable" and len(set(isas)) == len(isas)
    info = bk.cpu_info()
    assert info["best_isa"] in isas
    assert info["logical_cores"] >= 1 and info["physical_cores"] >= 1
    assert isinstance(info["features"]["avx2"], bool)
    assert bk.get_available_providers() == ["CPUExecutionProvider"]


def test_exception_hierarchy(bk):
    for name in ("InvalidArgument", "InvalidModel", "Unsupported", "NotFound", "IoError", "Internal"):
        cls = getattr(bk, name)
        assert issubclass(cls, bk.BrinkError) and cls.__module__ == "brink", name
        assert cls.code == name
    assert issubclass(bk.BrinkError, RuntimeError)
    assert issubclass(bk.InvalidArgument, ValueError)


# ------------------------------------------------------------------------------------------
# Differential: the module against ONNX Runtime on the generated model set

PARAMS = [pytest.param(s.name, marks=[pytest.mark.slow] if s.slow else [], id=s.name) for s in models.SPECS]


@pytest.mark.parametrize("name", PARAMS)
def test_matches_onnxruntime(bk, name):
    g = models.ensure(name)
    inputs = g.load_inputs()
    ref = models.ort_session(g.path)
    expected = dict(zip([o.name for o in ref.get_outputs()], ref.run(None, inputs)))

    sess = bk.InferenceSession(g.path, threads=1)
    for mine, theirs in ((sess.get_inputs(), ref.get_inputs()), (sess.get_outputs(), ref.get_outputs())):
        assert [(a.name, a.type, a.shape) for a in mine] == [(a.name, a.type, a.shape) for a in theirs]
    outs = sess.run(None, inputs)
    assert len(outs) == len(expected)
    for (out_name, o), b in zip(expected.items(), outs):
        assert isinstance(b, np.ndarray)
        assert_close(out_name, b, o)
    # A subset, in an order of our choosing, gives the same arrays.
    names = list(expected)[::-1]
    for out_name, b in zip(names, sess.run(names, inputs)):
        assert_close(out_name, b, expected[out_name])


def test_load_from_bytes_and_pathlike(bk, feed_model):
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8), dtype=np.float32)
    want = np.maximum(2 * x, 0)
    data = pathlib.Path(feed_model).read_bytes()
    for source in (feed_model, pathlib.Path(feed_model), data, bytearray(data), memoryview(data)):
        sess = bk.InferenceSession(source)
        (y,) = sess.run(["y"], {"image": x})
        np.testing.assert_array_equal(y, want)
    assert bk.InferenceSession(data).model_path is None
    assert bk.InferenceSession(feed_model).model_path == feed_model


def test_node_args_and_info(bk, feed_model):
    sess = bk.InferenceSession(feed_model, threads=1)
    (i,) = sess.get_inputs()
    assert (i.name, i.type, i.shape, i.dtype) == ("image", "tensor(float)", ["batch", 1, 8, 8], np.float32)
    assert "image" in repr(i)
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.num_threads == 1
    assert bk.InferenceSession(feed_model, threads=0).num_threads >= 1
    assert sess.info()["arena_bytes"] is None  # batch is symbolic
    fixed = bk.InferenceSession(feed_model, dim_values={"batch": 3})
    assert fixed.info()["arena_bytes"] is not None
    fixed.run(None, {"image": np.zeros((3, 1, 8, 8), np.float32)})
    with pytest.raises(bk.InvalidArgument, match="image"):
        fixed.run(None, {"image": np.zeros((2, 1, 8, 8), np.float32)})


def test_info_counts_macs(bk, tmp_path):
    path = _matmul_chain(tmp_path, "chain", layers=2, n=64, rows=8)
    info = bk.InferenceSession(path).info()
    assert info["macs"] == 2 * 8 * 64 * 64
    assert info["flops"] >= 2 * info["macs"]
    assert info["parameter_count"] == 2 * 64 * 64


def test_providers_like_onnxruntime(bk, feed_model):
    bk.InferenceSession(feed_model, providers=["CPUExecutionProvider"])
    bk.InferenceSession(feed_model, providers=[("CPUExecutionProvider", {})])
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        bk.InferenceSession(feed_model, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])


# ------------------------------------------------------------------------------------------
# Errors


def test_load_errors(bk, tmp_path):
    missing = str(tmp_path / "nowhere.onnx")
    with pytest.raises(bk.NotFound, match="nowhere.onnx"):
        bk.InferenceSession(missing)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"This is not an ONNX model.\n" * 10)
    with pytest.raises(bk.InvalidModel, match="garbage.onnx"):
        bk.InferenceSession(str(garbage))
    with pytest.raises(bk.InvalidModel):
        bk.InferenceSession(b"\x08\x08\x3a\xff\xff\xff\xff\x0f" + b"\0" * 32)
    unknown = _save_model(tmp_path, "unknown_op", [helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")],
                          [_f32("x", [1])], [_f32("y", [1])])
    with pytest.raises(bk.Unsupported, match="NoSuchOp"):
        bk.InferenceSession(unknown)
    good = _save_model(tmp_path, "relu", [helper.make_node("Relu", ["x"], ["y"])], [_f32("x", [1])],
                       [_f32("y", [1])])
    with pytest.raises(bk.InvalidArgument, match="threads"):
        bk.InferenceSession(good, threads=-1)
    with pytest.raises(bk.InvalidArgument, match="threads"):
        bk.InferenceSession(good, threads="2")
    with pytest.raises(bk.InvalidArgument, match="dim_values"):
        bk.InferenceSession(good, dim_values={"batch": -1})


BAD_FEEDS = [
    pytest.param({"pixels": np.zeros((1, 1, 8, 8), np.float32)}, ["pixels", "image"], id="wrong_name"),
    pytest.param({}, ["missing input 'image'"], id="missing"),
    pytest.param({"image": np.zeros((1, 1, 8, 8), np.float32), "extra": np.zeros(1, np.float32)}, ["extra"],
                 id="extra"),
    pytest.param({"image": np.zeros((1, 1, 8, 9), np.float32)}, ["image", "[1, 1, 8, 9]"], id="wrong_dim"),
    pytest.param({"image": np.zeros((1, 8, 8), np.float32)}, ["image", "[1, 8, 8]"], id="wrong_rank"),
    pytest.param({"image": np.float32(1)}, ["image"], id="scalar"),
    pytest.param({"image": np.zeros((1, 1, 8, 8), np.float64)}, ["image", "float64", "float32"], id="float64"),
    pytest.param({"image": np.zeros((1, 1, 8, 8), np.int64)}, ["image", "int64"], id="int64"),
    pytest.param({"image": np.zeros((1, 1, 8, 8), np.float16)}, ["image", "float16"], id="float16"),
    pytest.param({"image": np.zeros((1, 1, 8, 8), bool)}, ["image", "bool"], id="bool"),
    pytest.param({"image": [[[[0.5] * 8] * 8]]}, ["image", "float64"], id="python_list"),
    pytest.param({"image": np.zeros((1, 1, 8, 8), np.complex64)}, ["image", "complex64"], id="complex"),
    pytest.param({"image": np.array([["a"]])}, ["image", "<U1"], id="strings"),
    pytest.param({"image": object()}, ["image", "object"], id="object"),
]


@pytest.mark.parametrize("feeds,mentions", BAD_FEEDS)
def test_bad_feeds(bk, feed_model, feeds, mentions):
    sess = bk.InferenceSession(feed_model, threads=1)
    with pytest.raises(bk.InvalidArgument) as e:
        sess.run(None, feeds)
    for m in mentions:
        assert m in str(e.value), f"{str(e.value)!r} does not name {m!r}"
    assert "\n" not in str(e.value)


def test_bad_run_arguments(bk, feed_model):
    sess = bk.InferenceSession(feed_model, threads=1)
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(bk.InvalidArgument, match="unknown output 'nope'.*'y'"):
        sess.run(["nope"], {"image": x})
    with pytest.raises(bk.InvalidArgument, match="output_names"):
        sess.run("y", {"image": x})
    with pytest.raises(bk.InvalidArgument, match="feed names must be str"):
        sess.run(None, {1: x})
    with pytest.raises(bk.InvalidArgument, match="run_options"):
        sess.run(None, {"image": x}, run_options=object())
    # The session still works after each refusal.
    np.testing.assert_array_equal(sess.run(None, {"image": x + 1})[0], np.full_like(x, 2))


@pytest.mark.parametrize("case", ["wrong_name", "wrong_shape", "wrong_dtype"])
def test_error_text_matches_cli(bk, brink, feed_model, tmp_path, case):
    """str(exception) is the line the CLI prints after 'error: '."""
    name, arr = {"wrong_name": ("pixels", np.zeros((1, 1, 8, 8), np.float32)),
                 "wrong_shape": ("image", np.zeros((1, 3, 8, 8), np.float32)),
                 "wrong_dtype": ("image", np.zeros((1, 1, 8, 8), np.int32))}[case]
    npy = tmp_path / "x.npy"
    np.save(npy, arr)
    line = brink.expect_error("run", feed_model, "--input", f"{name}={npy}", "--output-dir", str(tmp_path / "o"))
    with pytest.raises(bk.InvalidArgument) as e:
        bk.InferenceSession(feed_model).run(None, {name: arr})
    assert line == "error: " + str(e.value)


def test_load_error_text_matches_cli(bk, brink, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x08\x3a\xff\xff\xff\xff\x0f" + b"\0" * 32)
    line = brink.expect_error("info", str(garbage), "--json")
    with pytest.raises(bk.BrinkError) as e:
        bk.InferenceSession(str(garbage))
    assert line == "error: " + str(e.value)


def test_bench_mirrors_the_cli(bk, brink, feed_model):
    """brink.bench returns what `brink bench --json` prints, with the same meaning."""
    result = bk.bench(feed_model, threads=1, warmup=2, iterations=7, dim_values={"batch": 3})
    cli = brink.json("bench", feed_model, "--threads", "1", "--iterations", "7", "--dim", "batch=3", "--json")
    assert set(result) <= set(cli), set(result) - set(cli)
    assert result["iterations"] == 7 and result["threads"] == 1
    lat = result["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert result["load_ms"] > 0 and result["first_inference_ms"] > 0
    # Mul and Relu are not MAC-shaped layers: no FLOPs are counted, by either.
    assert result["model_flops"] == cli["model_flops"] == 0
    assert result["isa"] == cli["isa"]
    assert result["peak_rss_bytes"] > 0
    timed = bk.bench(feed_model, threads=1, warmup=0, seconds=0.05)
    assert timed["iterations"] >= 1


def test_bench_counts_flops_like_the_cli(bk, brink, tmp_path):
    path = _matmul_chain(tmp_path, "chain", layers=2, n=16, rows=4)
    result = bk.bench(path, threads=1, iterations=3)
    cli = brink.json("bench", path, "--threads", "1", "--iterations", "3", "--json")
    assert result["model_flops"] == cli["model_flops"] == 2 * 2 * 4 * 16 * 16
    assert result["gflops"] > 0


def test_bench_rejects_bad_arguments(bk, feed_model):
    for kwargs, mentions in [({"iterations": 0}, "iterations"), ({"warmup": -1}, "warmup"),
                             ({"seconds": 0}, "seconds"), ({"feeds": {"pixels": np.zeros(1)}}, "pixels")]:
        with pytest.raises(bk.InvalidArgument, match=mentions):
            bk.bench(feed_model, threads=1, **kwargs)


# ------------------------------------------------------------------------------------------
# Zero copy


def test_feeds_are_not_copied(bk):
    x = np.random.default_rng(0).standard_normal((2, 3, 4), dtype=np.float32)
    addr, same = bk._brink._feed_address(x)
    assert same and addr == x.ctypes.data
    ro = x.copy()
    ro.flags.writeable = False
    addr, same = bk._brink._feed_address(ro)
    assert same and addr == ro.ctypes.data
    # A contiguous slice of a bigger buffer (not 64-byte aligned) is still read in place.
    sub = np.zeros(1001, np.float32)[1:]
    addr, same = bk._brink._feed_address(sub)
    assert same and addr == sub.ctypes.data
    # Layouts the runtime cannot read are copied once; the copy is C-ordered.
    for strided in (x[:, ::2], x.transpose(2, 0, 1), np.asfortranarray(x), x.astype(">f4")):
        addr, same = bk._brink._feed_address(strided)
        assert not same and addr != strided.ctypes.data


def test_unaligned_and_strided_feeds_give_right_results(bk, feed_model):
    sess = bk.InferenceSession(feed_model, threads=1)
    base = np.random.default_rng(2).standard_normal(1 + 3 * 64, dtype=np.float32)
    x = base[1:].reshape(3, 1, 8, 8)  # 4 bytes past an allocation's start
    assert x.ctypes.data % 64 != 0
    np.testing.assert_array_equal(sess.run(None, {"image": x})[0], np.maximum(2 * x, 0))
    big = np.random.default_rng(3).standard_normal((2, 1, 16, 16), dtype=np.float32)
    strided = big[:, :, ::2, 1::2]
    np.testing.assert_array_equal(sess.run(None, {"image": strided})[0], np.maximum(2 * strided, 0))
    swapped = big[:, :, :8, :8].astype(">f4")
    np.testing.assert_array_equal(sess.run(None, {"image": swapped})[0], np.maximum(2 * swapped, 0))


def test_outputs_are_handed_over(bk, feed_model):
    sess = bk.InferenceSession(feed_model, threads=1)
    x = np.random.default_rng(4).standard_normal((1, 1, 8, 8), dtype=np.float32)
    before = x.copy()
    (y,) = sess.run(None, {"image": x})
    np.testing.assert_array_equal(x, before)  # the feed is read, never written
    assert not y.flags.owndata and type(y.base).__name__ == "PyCapsule"  # Brink's buffer, no copy
    assert y.flags.writeable and y.flags.c_contiguous and y.flags.aligned
    assert not np.shares_memory(x, y)
    y[...] = 7  # writable and independent: the next run is unaffected
    (y2,) = sess.run(None, {"image": x})
    np.testing.assert_array_equal(y2, np.maximum(2 * x, 0))
    assert not np.shares_memory(y, y2)


def test_outputs_that_would_share_memory_are_copied(bk, tmp_path):
    """Outputs aliasing a feed, a constant of the model or another output come back as copies:
    every returned array is independent, as with ONNX Runtime."""
    c = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "c")
    shape = numpy_helper.from_array(np.array([3, 2], np.int64), "shape")
    path = _save_model(tmp_path, "aliases",
                       [helper.make_node("Identity", ["x"], ["same"]),
                        helper.make_node("Relu", ["x"], ["r"]),
                        helper.make_node("Reshape", ["r", "shape"], ["r_view"]),
                        helper.make_node("Identity", ["c"], ["const"])],
                       [_f32("x", [2, 3])],
                       [_f32("same", [2, 3]), _f32("r", [2, 3]), _f32("r_view", [3, 2]), _f32("const", [2, 3])],
                       [c, shape])
    sess = bk.InferenceSession(path)
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    same, r, r_view, const = sess.run(None, {"x": x})
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(r_view, np.maximum(x, 0).reshape(3, 2))
    arrays = [x, same, r, r_view, const]
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            assert not np.shares_memory(arrays[i], arrays[j]), (i, j)
    const[...] = -1
    np.testing.assert_array_equal(sess.run(["const"], {"x": x})[0], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_results_survive_later_runs(bk, tmp_path):
    """An output that is a view step (Reshape, Flatten, Squeeze) of an intermediate must not
    point into memory the next run reuses."""
    shape = numpy_helper.from_array(np.array([4, 6], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    path = _save_model(tmp_path, "views",
                       [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["a"]),
                        helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Flatten", ["s"], ["b"], axis=1),
                        helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Squeeze", ["n", "axes"], ["c"])],
                       [_f32("x", [1, 2, 3, 4])], [_f32("a", [4, 6]), _f32("b", [1, 24]), _f32("c", [2, 3, 4])],
                       [shape, axes])
    sess = bk.InferenceSession(path, threads=1)
    rng = np.random.default_rng(8)
    x1, x2 = (rng.standard_normal((1, 2, 3, 4), dtype=np.float32) for _ in range(2))
    first = sess.run(None, {"x": x1})
    kept = [o.copy() for o in first]
    second = sess.run(None, {"x": x2})
    for k, (o, want) in enumerate(zip(first, kept)):
        np.testing.assert_array_equal(o, want, err_msg=f"output {k} changed when the session ran again")
        assert not np.shares_memory(o, second[k])
    np.testing.assert_array_equal(second[0], np.maximum(x2, 0).reshape(4, 6))
    np.testing.assert_array_equal(second[2], -x2[0])


def test_dtypes_round_trip(bk, tmp_path):
    """Every element type NumPy has goes in and out unchanged (Identity per input)."""
    types = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.float16: TensorProto.FLOAT16,
             np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16,
             np.uint16: TensorProto.UINT16, np.int32: TensorProto.INT32, np.uint32: TensorProto.UINT32,
             np.int64: TensorProto.INT64, np.uint64: TensorProto.UINT64, np.bool_: TensorProto.BOOL}
    nodes, ins, outs, feeds = [], [], [], {}
    rng = np.random.default_rng(5)
    for k, (np_t, onnx_t) in enumerate(types.items()):
        ins.append(helper.make_tensor_value_info(f"in{k}", onnx_t, [2, 5]))
        outs.append(helper.make_tensor_value_info(f"out{k}", onnx_t, [2, 5]))
        # Neg/Not need matching types; Identity keeps it about the binding, not the ops.
        nodes.append(helper.make_node("Identity", [f"in{k}"], [f"out{k}"]))
        feeds[f"in{k}"] = (rng.standard_normal((2, 5)) * 50).astype(np_t)
    sess = bk.InferenceSession(_save_model(tmp_path, "dtypes", nodes, ins, outs))
    assert [i.dtype for i in sess.get_inputs()] == [np.dtype(t) for t in types]
    for (name, x), y in zip(feeds.items(), sess.run(None, feeds)):
        assert y.dtype == x.dtype and y.shape == x.shape, name
        np.testing.assert_array_equal(y, x)


# ------------------------------------------------------------------------------------------
# Threads


def test_four_threads_share_one_session(bk):
    g = models.ensure("squeezenet1_1")
    sess = bk.InferenceSession(g.path, threads=1)
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((1, 3, 224, 224), dtype=np.float32) for _ in range(4)]
    expected = [sess.run(None, {"input": x})[0] for x in xs]
    runs_each = 3
    results, errors = {}, []
    start = threading.Barrier(4)

    def worker(k):
        try:
            start.wait()
            # Each thread cycles through all inputs, so runs with different data overlap.
            results[k] = [sess.run(None, {"input": xs[(k + i) % 4]})[0] for i in range(runs_each)]
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    for k in range(4):
        for i, y in enumerate(results[k]):
            np.testing.assert_allclose(y, expected[(k + i) % 4], rtol=1e-5, atol=1e-5, err_msg=f"thread {k} run {i}")


def test_gil_is_released_while_running(bk, tmp_path):
    """With a switch interval of minutes, a thread holding the GIL keeps it until it blocks:
    this thread can only observe the worker inside `run` if `run` released the GIL."""
    sess = bk.InferenceSession(_matmul_chain(tmp_path, "long", layers=4, n=256, rows=256), threads=1)
    x = np.random.default_rng(6).standard_normal((256, 256), dtype=np.float32)
    state = {"in_run": False, "runs": 0}
    started = threading.Event()

    def worker():
        started.set()
        for _ in range(50):  # bounded: if run kept the GIL this thread would never yield it
            state["in_run"] = True
            sess.run(None, {"x": x})
            state["in_run"] = False
            state["runs"] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(120)
    try:
        t = threading.Thread(target=worker)
        t.start()
        started.wait()  # blocks, giving the GIL to the worker
        seen_in_run, runs_done = state["in_run"], state["runs"]
    finally:
        sys.setswitchinterval(old)
    t.join()
    assert seen_in_run and runs_done < 50, f"the worker held the GIL through {runs_done} runs"


# ------------------------------------------------------------------------------------------
# Memory

_RSS_SCRIPT = textwrap.dedent("""
    import gc, json, sys
    import numpy as np
    import brink

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    path, cycles = sys.argv[1], int(sys.argv[2])
    x = np.ones((4, 4096), np.float32)
    samples = []
    for i in range(cycles):
        sess = brink.InferenceSession(path, threads=1)
        sess.run(None, {"x": x})
        loaded = rss()
        del sess
        gc.collect()
        samples.append({"loaded": loaded, "deleted": rss()})
    print(json.dumps(samples))
""")


def test_deleted_session_releases_memory(bk, tmp_path):
    """Load, run and delete a model with 64 MiB of weights ten times in a fresh process: RSS
    must not grow from cycle to cycle (a leaked session would add 64 MiB each time), and
    deleting a session must give most of its weights back."""
    import json
    path = _matmul_chain(tmp_path, "big", layers=1, n=4096, rows=4)
    weights = 4096 * 4096 * 4
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(bk.__file__)),
                                                                   os.environ.get("PYTHONPATH", "")] if p))
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, path, "10"], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    samples = json.loads(proc.stdout)
    mib = 1 << 20
    report = ", ".join(f"{s['loaded'] / mib:.0f}/{s['deleted'] / mib:.0f}" for s in samples)
    growth = samples[-1]["deleted"] - samples[1]["deleted"]
    assert growth < weights / 4, f"RSS grew {growth / mib:.0f} MiB over 8 cycles (loaded/deleted MiB: {report})"
    freed = min(s["loaded"] - s["deleted"] for s in samples[1:])
    assert freed > weights / 2, f"deleting a session freed only {freed / mib:.0f} MiB (loaded/deleted MiB: {report})"


# ------------------------------------------------------------------------------------------
# bench/compare_ort.py (issue 3's benchmark) runs and writes its report; speed is not checked


def test_compare_ort_quick(bk, tmp_path):
    import json
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(bk.__file__)),
                                                                   os.environ.get("PYTHONPATH", "")] if p))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare_ort.py"), "--quick", "--out-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=900, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "compare_ort.json").read_text())
    md = (tmp_path / "compare_ort.md").read_text()
    assert result["schema_version"] == 1
    for key in ("command", "date", "machine", "brink", "onnxruntime", "peak_gflops", "settings", "results", "targets"):
        assert key in result, key
    assert result["brink"]["version"] == bk.__version__
    (row,) = result["results"]
    assert row["error"] is None and row["threads"] == 1 and row["macs"] > 0
    assert row["max_scaled_difference"] < 1e-3, "Brink and ORT disagree on the benchmark inputs"
    for engine in ("brink", "onnxruntime"):
        r = row[engine]
        assert r["runs"] == 5
        assert 0 < r["min_ms"] <= r["p50_ms"] <= r["p90_ms"]
        assert r["gflops"] > 0
        for key in ("load_ms", "first_inference_ms"):
            assert r[key] > 0, (engine, key)
        assert r["peak_rss_bytes"] > 0, engine
    for key in ("ratio_p50", "ratio_p90", "ratio_peak_rss", "ratio_load_first"):
        assert row[key] > 0, key
    assert len(result["targets"]) == 5 and all(t["ok"] in (True, False, None) for t in result["targets"])
    assert "| model |" in md and row["model"] in md and "## Targets" in md
