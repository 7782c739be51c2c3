#!/usr/bin/env python3
"""Per-call overhead of `run` from Python: Brink's module against ONNX Runtime, side by side.

The model is one Add of two small float32 tensors, so a run is almost all binding cost:
converting the feeds, entering the runtime, checking the inputs and handing the output back
as a NumPy array. Both engines get the same arrays; calls are timed in blocks that alternate
between the engines (so drift on a shared machine hits both alike), and the median of the
per-call block means is reported.

    .venv/bin/python bench/python_overhead.py [--shape 1,16] [--blocks 40] [--calls 500] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def make_add_model(path: str, shape) -> None:
    import onnx
    from onnx import TensorProto, helper
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n in ("x", "y", "z")]
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "one_add", vi[:2], vi[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="brink-bench")
    model.ir_version = 8
    onnx.save(model, path)


def block_time(run, feeds, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        run(None, feeds)
    return (time.perf_counter() - t0) / calls


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="1,16", help="shape of both Add inputs (default 1,16)")
    ap.add_argument("--blocks", type=int, default=40, help="timed blocks per engine (default 40)")
    ap.add_argument("--calls", type=int, default=500, help="calls per block (default 500)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args(argv)
    shape = [int(s) for s in args.shape.split(",")]

    import brink
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "one_add.onnx")
        make_add_model(path, shape)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        engines = {
            "brink": brink.InferenceSession(path, threads=1).run,
            "onnxruntime": ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run,
        }
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal(shape, dtype=np.float32), "y": rng.standard_normal(shape, dtype=np.float32)}
    ref = engines["onnxruntime"](None, feeds)[0]
    np.testing.assert_allclose(engines["brink"](None, feeds)[0], ref, rtol=1e-6)

    for run in engines.values():  # warm up
        block_time(run, feeds, args.calls)
    samples = {name: [] for name in engines}
    for b in range(args.blocks):
        order = list(engines) if b % 2 == 0 else list(engines)[::-1]
        for name in order:
            samples[name].append(block_time(engines[name], feeds, args.calls))
    med = {name: statistics.median(s) * 1e6 for name, s in samples.items()}
    ratio = med["brink"] / med["onnxruntime"]
    result = {"model": f"one Add, float32 {shape}", "blocks": args.blocks, "calls_per_block": args.calls,
              "median_us": {k: round(v, 3) for k, v in med.items()}, "ratio_brink_over_ort": round(ratio, 3),
              "onnxruntime_version": ort.__version__, "brink_version": brink.__version__}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"run() overhead, one Add of float32 {shape}, median of {args.blocks} blocks x {args.calls} calls:")
        print(f"  brink        {med['brink']:8.2f} us/call")
        print(f"  onnxruntime  {med['onnxruntime']:8.2f} us/call  (ORT {ort.__version__})")
        print(f"  ratio brink/ORT = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
