"""The selective device runtime: a brink-run built with only one package's operators and this
CPU's kernel variants (cmake -DBRINK_DEVICE_ONLY=ON -DBRINK_SELECTED_OPS=... -DBRINK_KERNEL_ISAS=...,
see docs/RUNTIME.md) runs that package exactly as the full runtime does, registers nothing
else, and refuses a package that needs an operator it left out -- or, built without the
portable kernels, a package for the portable target.

scripts/test.sh builds it (`BRINK_OPS=... BRINK_ISAS=... scripts/build.sh device`) and points
$BRINK_SELECTIVE_RUN at it, with the package it was built for in $BRINK_SELECTIVE_PACKAGE and
the operator list in $BRINK_SELECTIVE_OPS. Without them these tests are skipped.
"""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from conftest import check_clean_failure

RUNNER = os.environ.get("BRINK_SELECTIVE_RUN", "")
PACKAGE = os.environ.get("BRINK_SELECTIVE_PACKAGE", "")
OPS = os.environ.get("BRINK_SELECTIVE_OPS", "")
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

pytestmark = pytest.mark.skipif(
    not (RUNNER and PACKAGE and OPS and os.path.isfile(RUNNER)),
    reason="no selective runtime built (scripts/test.sh builds one; set BRINK_SELECTIVE_RUN, "
    "BRINK_SELECTIVE_PACKAGE and BRINK_SELECTIVE_OPS)")


def read_ops(text: str) -> set:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def built_loading() -> list:
    """How the selective runtime loads packages ("# loading: file stream")."""
    out = subprocess.run([RUNNER, "--ops"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("# loading:"))
    return line[len("# loading:"):].split()


def built_kernels() -> list:
    """The kernel variants the selective runtime holds ("# kernels: avx512 avx512vnni")."""
    out = subprocess.run([RUNNER, "--ops"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    assert first.startswith("# kernels:"), first
    return first[len("# kernels:"):].split()


def full_runner(brink) -> str:
    path = os.path.join(os.path.dirname(brink.path), "brink-run")
    if not os.path.isfile(path):
        pytest.skip(f"full brink-run not found next to {brink.path}")
    return path


def test_registers_exactly_the_selected_operators():
    """Every registration is guarded: the build has the listed operators and no other (fused
    activations, "brink.activation:X", depthwise rows, "brink.depthwise:k3s1", and brink:Conv's
    reference fallback, "brink.conv:reference", select kernel variants, not operators)."""
    listed = {o for o in read_ops(open(OPS).read())
              if not o.startswith(("brink.activation:", "brink.depthwise:", "brink.conv:"))}
    out = subprocess.run([RUNNER, "--ops"], capture_output=True, text=True, check=True).stdout
    assert read_ops(out) == listed
    assert built_kernels()


def test_outputs_equal_the_full_runtime(brink, tmp_path):
    """Same package, same inputs: the selective runtime's outputs are the full runtime's."""
    outs = {}
    for name, runner in (("selective", RUNNER), ("full", full_runner(brink))):
        d = tmp_path / name
        d.mkdir()
        proc = subprocess.run([runner, PACKAGE, "--output-dir", str(d), "--repeat", "1"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        outs[name] = {f: np.load(d / f) for f in sorted(os.listdir(d))}
    assert outs["selective"].keys() == outs["full"].keys() and outs["full"]
    for f, full in outs["full"].items():
        # Same kernels when this CPU's best variant is built (the test builds those).
        np.testing.assert_array_equal(outs["selective"][f], full)


def test_smaller_than_the_full_runtime(brink):
    assert os.path.getsize(RUNNER) < os.path.getsize(full_runner(brink))


def test_refuses_a_package_with_an_operator_left_out(brink, tmp_path):
    """A model whose operators the build left out fails at load, one line naming the operator."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph([helper.make_node("Softsign", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert "Softsign" not in read_ops(open(OPS).read())
    onnx.save(model, tmp_path / "softsign.onnx")
    pkg = tmp_path / "softsign.brink"
    proc = brink("pack", tmp_path / "softsign.onnx", "-o", pkg)
    assert proc.returncode == 0, brink.describe(proc)
    proc = subprocess.run([RUNNER, str(pkg)], capture_output=True, text=True)
    check_clean_failure(proc)
    assert "Softsign" in proc.stderr


def test_without_portable_kernels_refuses_a_portable_package(brink, tmp_path):
    """A one-target build (BRINK_KERNEL_ISAS without portable, as scripts/test.sh builds it) has
    no fallback: a package for the portable target is refused in one line saying why."""
    if "portable" in built_kernels():
        pytest.skip("this selective runtime holds the portable kernels")
    pkg = tmp_path / "portable.brink"
    proc = brink("pack", os.path.join(REPO, "models", "digits_cnn.onnx"),
                 "-o", pkg, "--target", "portable")
    assert proc.returncode == 0, brink.describe(proc)
    proc = subprocess.run([RUNNER, str(pkg)], capture_output=True, text=True)
    check_clean_failure(proc)
    assert "portable" in proc.stderr and "built without" in proc.stderr, proc.stderr


def depthwise_model(path, channels: int, kernel: int, stride: int) -> None:
    """Depthwise conv + Relu: in a package, a brink:Conv with the Relu fused, between
    Transposes (the operators the default model's list has)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(kernel * 10 + stride)
    w = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 19, 23])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    pad = kernel // 2
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=channels, strides=[stride, stride],
                              pads=[pad] * 4),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "dw", [x], [y],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def run_both(brink, pkg, tmp_path) -> dict:
    """The package's output y under the selective and the full runtime."""
    outs = {}
    for name, runner in (("selective", RUNNER), ("full", full_runner(brink))):
        d = tmp_path / name
        d.mkdir()
        proc = subprocess.run([runner, str(pkg), "--output-dir", str(d), "--repeat", "1"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        outs[name] = np.load(d / "y.npy")
    return outs


def needs_depthwise_list():
    listed = read_ops(open(OPS).read())
    if not {"brink:Conv", "Transpose", "brink.activation:Relu", "brink.depthwise:general"} <= listed:
        pytest.skip("the selective runtime's list lacks brink:Conv with Relu and the general "
                    "depthwise row (scripts/test.sh adds it)")
    return listed


@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 2), (7, 1)])
def test_depthwise_rows_left_out_give_the_same_results(brink, tmp_path, kernel, stride):
    """A package whose depthwise fast rows ("brink.depthwise:k3s1", ...) the build's list
    lacks runs them on the general row: the full runtime's results (48 channels: three full
    blocks on AVX-512, six on AVX2)."""
    listed = needs_depthwise_list()
    model, pkg = tmp_path / "dw.onnx", tmp_path / "dw.brink"
    depthwise_model(model, 48, kernel, stride)
    proc = brink("pack", model, "-o", pkg)
    assert proc.returncode == 0, brink.describe(proc)
    ops = read_ops(brink("info", pkg, "--ops").stdout)
    assert ops - listed == ({f"brink.depthwise:k{kernel}s{stride}"} if kernel != 7 else set())
    outs = run_both(brink, pkg, tmp_path)
    if kernel == 7:  # the general row in both
        np.testing.assert_array_equal(outs["selective"], outs["full"])
    else:  # another row of the same taps: the sums may round differently
        np.testing.assert_allclose(outs["selective"], outs["full"], rtol=1e-5, atol=1e-5)


def test_refuses_a_depthwise_layer_needing_the_partial_row(brink, tmp_path):
    """40 channels leave a partial vector block, which only the partial-block row computes: a
    build whose list lacks "brink.depthwise:partial" refuses the package at load, in one line
    naming that line (the list `brink info --ops` prints for it has it)."""
    listed = needs_depthwise_list()
    assert "brink.depthwise:partial" not in listed
    model, pkg = tmp_path / "dw.onnx", tmp_path / "dw.brink"
    depthwise_model(model, 40, 3, 1)
    proc = brink("pack", model, "-o", pkg)
    assert proc.returncode == 0, brink.describe(proc)
    assert "brink.depthwise:partial" in read_ops(brink("info", pkg, "--ops").stdout)
    proc = subprocess.run([RUNNER, str(pkg)], capture_output=True, text=True)
    check_clean_failure(proc)
    assert "brink.depthwise:partial" in proc.stderr, proc.stderr


def test_refuses_a_convolution_needing_the_reference_kernel(brink, tmp_path):
    """A convolution whose weights are an input, not a constant, takes brink:Conv's reference
    fallback: `brink info --ops` lists "brink.conv:reference", and a build without it refuses
    the package at load in one line naming it, rather than running something else."""
    import onnx
    from onnx import TensorProto, helper

    listed = read_ops(open(OPS).read())
    if not {"brink:Conv", "Transpose", "brink.activation:Relu"} <= listed:
        pytest.skip("the selective runtime's list lacks brink:Conv with Relu")
    assert "brink.conv:reference" not in listed
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 8, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "conv_w_input", [x, w], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "conv.onnx")
    pkg = tmp_path / "conv.brink"
    proc = brink("pack", tmp_path / "conv.onnx", "-o", pkg)
    assert proc.returncode == 0, brink.describe(proc)
    ops = read_ops(brink("info", pkg, "--ops").stdout)
    assert ops - listed == {"brink.conv:reference"}, ops - listed
    proc = subprocess.run([RUNNER, str(pkg)], capture_output=True, text=True)
    check_clean_failure(proc)
    assert "brink.conv:reference" in proc.stderr, proc.stderr
    # The full runtime runs it.
    proc = subprocess.run([full_runner(brink), str(pkg), "--repeat", "1"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_without_streaming_refuses_stream_and_socket_models(tmp_path):
    """Built with -DBRINK_RUN_STREAMING=OFF (as scripts/test.sh builds it), brink-run loads
    packages from files and refuses --stream and tcp:// in one line saying why."""
    if "stream" in built_loading():
        pytest.skip("this selective runtime can stream")
    assert built_loading() == ["file"]
    for args in ([PACKAGE, "--stream"], ["tcp://127.0.0.1:9"]):
        proc = subprocess.run([RUNNER, *args], capture_output=True, text=True)
        check_clean_failure(proc)
        assert "without streaming" in proc.stderr, proc.stderr
