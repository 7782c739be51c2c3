#!/usr/bin/env python3
"""The .brink package, measured: cold start (process start to first result, Brink from a
.brink package against ONNX Runtime from the .onnx, side by side, alternating runs, medians),
the size of a delta update when a model's last layer changes, and peak RSS under --max-memory.

For each model the script packs a .brink (unsigned and signed: a signed package is what a
device would load), then times fresh processes, interleaved, --runs times each:

  ort-python     python: import onnxruntime, InferenceSession(model.onnx), run        (the anchor)
  brink-python   python: import brink, InferenceSession(model.brink, signed), run
  brink-cli      `brink run model.brink --random --pubkey ...`  (the device-style C++ path)
  brink-onnx     `brink run model.onnx --random` (what the package saves over compiling .onnx)

Wall time is measured by this script around each process (start to exit, including interpreter
start and imports); the Python children also report their in-process time from before the
import to the first result. Files are in the page cache (warm), as on a device that just
received them. It also reports, from `brink bench --json` on the package, the first inference
against the steady-state p50, and the peak RSS of both engines' children.

Progressive loading: the signed package is served over a local TCP socket throttled to a fixed
rate (--stream-rate MB/s, default 100) and run with `brink run tcp://127.0.0.1:PORT --json`,
which reports when the first layer started, when the last chunk was verified and when the
result was ready (all from the process's start of the stream).

Delta: the model's last layer with a 2-D weight (the classifier) is scaled by 1.01 with the
onnx package, both versions are packed, and `brink diff --json` gives the delta's size; `brink
patch` must rebuild the new package byte for byte.

INT8 models (`--models mobilenet_v2_int8 resnet50_int8 encoder_int8`): the file bench/quant_bench.py
makes with ONNX Runtime's own quantizer and caches next to the FP32 model (quantize_static QDQ for
the CNNs, model.int8.qdq.onnx; quantize_dynamic for the encoder, model.int8.dynamic.onnx). Both
engines start from that same int8 .onnx (ORT) or its package (Brink). They get cold-start rows;
the delta, memory-bound and stream sections of --update-docs cover the FP32 models (the delta
scales a float weight, which a quantized model no longer has).

    .venv/bin/python bench/package_bench.py [--models resnet50 mobilenet_v2_int8] [--runs 7] [--threads 1]
    .venv/bin/python bench/package_bench.py --update-docs     # regenerates docs/PACKAGE.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import socket
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare_ort  # noqa: E402  (machine facts, the model set, the brink binary)
import quant_bench  # noqa: E402  (ORT-quantized INT8 models, cached next to the FP32 ones)

DOCS_PATH = os.path.join(ROOT, "docs", "PACKAGE.md")
# --models names for the INT8 models, each the FP32 bench model it is quantized from.
INT8_MODELS = {"mobilenet_v2_int8": "mobilenet_v2", "resnet50_int8": "resnet50", "encoder_int8": "encoder"}
FP32_MODELS = ["resnet50", "mobilenet_v2", "encoder"]
DEFAULT_MODELS = FP32_MODELS + list(INT8_MODELS)


def model_path(model: str) -> str:
    """The .onnx both engines start from: the generated FP32 model, or for a `*_int8` name the
    model ONNX Runtime's quantizer made from it (quant_bench.int8_model: made once, cached)."""
    models = compare_ort.load_bench_models()
    base = INT8_MODELS.get(model)
    if base is None:
        return models.ensure(model).path
    g = models.ensure(base)
    return quant_bench.int8_model(base, g.path, g.load_inputs())


def int8_mode(model: str) -> str:
    """How an INT8 row's model was quantized (empty for FP32 models)."""
    base = INT8_MODELS.get(model)
    if base is None:
        return ""
    return "dynamic" if base in quant_bench.DYNAMIC_MODELS else "static QDQ"

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
engine, path, threads, pubkey = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import numpy as np
if engine == "ort":
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    names = [(i.name, i.shape, i.type) for i in s.get_inputs()]
else:
    import brink
    s = brink.InferenceSession(path, threads=threads, pubkey=pubkey or None)
    names = [(i.name, i.shape, i.type) for i in s.get_inputs()]
t_loaded = time.perf_counter()
feeds = {}
for name, shape, typ in names:
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in shape]
    if "int64" in typ:
        feeds[name] = np.ones(shape, np.int64)
    else:
        feeds[name] = np.random.default_rng(0).random(shape, dtype=np.float32)
s.run(None, feeds)
t1 = time.perf_counter()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]  # not ru_maxrss: see compare_ort
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"in_process_ms": (t1 - t0) * 1e3, "load_ms": (t_loaded - t0) * 1e3, "peak_rss_mib": peak}))
"""


def run_timed(cmd: List[str]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    wall = (time.perf_counter() - t0) * 1e3
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    out: Dict[str, Any] = {"wall_ms": wall}
    if proc.stdout.strip().startswith("{"):
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def median(rows: List[Dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows if key in r)


def measure(model: str, args, work: str) -> Dict[str, Any]:
    exe = compare_ort.brink_binary()
    onnx_path = model_path(model)
    key = os.path.join(work, "key")
    if not os.path.exists(key + ".key"):
        subprocess.run([exe, "keygen", "-o", key], check=True, capture_output=True)
    pkg = os.path.join(work, f"{model}.brink")
    t0 = time.perf_counter()
    packed = subprocess.run([exe, "pack", onnx_path, "-o", pkg, "--sign", key + ".key", "--json"],
                            check=True, capture_output=True, text=True)
    pack_ms = (time.perf_counter() - t0) * 1e3
    summary = json.loads(packed.stdout)
    py = sys.executable
    t = str(args.threads)
    variants = {
        "ort-python": [py, "-c", CHILD, "ort", onnx_path, t, ""],
        "brink-python": [py, "-c", CHILD, "brink", pkg, t, key + ".pub"],
        "brink-cli": [exe, "run", pkg, "--random", "--threads", t, "--pubkey", key + ".pub"],
        "brink-onnx": [exe, "run", onnx_path, "--random", "--threads", t],
    }
    for cmd in variants.values():  # warm the page cache and the interpreters once
        run_timed(cmd)
    samples: Dict[str, List[Dict[str, Any]]] = {k: [] for k in variants}
    for _ in range(args.runs):
        for name, cmd in variants.items():
            samples[name].append(run_timed(cmd))
    bench = json.loads(subprocess.run([exe, "bench", pkg, "--threads", t, "--seconds", "3", "--json",
                                       "--pubkey", key + ".pub"],
                                      check=True, capture_output=True, text=True).stdout)
    row: Dict[str, Any] = {"model": model, "weights": ("int8 " + int8_mode(model)) if model in INT8_MODELS else "fp32",
                           "threads": args.threads, "runs": args.runs,
                           "onnx_mib": os.path.getsize(onnx_path) / 2**20,
                           "package_mib": summary["file_bytes"] / 2**20,
                           "prepacked_nodes": summary.get("prepacked_nodes"), "pack_ms": pack_ms}
    for name, rows in samples.items():
        row[f"{name}_wall_ms"] = median(rows, "wall_ms")
        if name.endswith("python"):
            row[f"{name}_in_process_ms"] = median(rows, "in_process_ms")
            row[f"{name}_peak_rss_mib"] = median(rows, "peak_rss_mib")
    row["ratio_wall"] = row["brink-cli_wall_ms"] / row["ort-python_wall_ms"]
    row["ratio_python_wall"] = row["brink-python_wall_ms"] / row["ort-python_wall_ms"]
    row["ratio_in_process"] = row["brink-python_in_process_ms"] / row["ort-python_in_process_ms"]
    row["bench_load_ms"] = bench.get("load_ms")
    row["bench_first_ms"] = bench.get("first_inference_ms")
    p50 = (bench.get("latency_ms") or {}).get("p50")
    row["bench_p50_ms"] = p50
    row["first_over_p50"] = bench["first_inference_ms"] / p50 if p50 else None
    return row


def measure_delta(model: str, work: str) -> Dict[str, Any]:
    import numpy as np
    import onnx
    from onnx import numpy_helper
    exe = compare_ort.brink_binary()
    if model in INT8_MODELS:
        raise RuntimeError(f"{model}: the delta rows scale a float weight; expected an FP32 model, "
                           f"found an INT8 one (use {INT8_MODELS[model]})")
    onnx_path = model_path(model)
    m = onnx.load(onnx_path)
    inits = {t.name: t for t in m.graph.initializer}
    changed = None
    for node in reversed(m.graph.node):
        for name in node.input:
            t = inits.get(name)
            if t is not None and len(t.dims) == 2 and t.data_type == onnx.TensorProto.FLOAT:
                changed = (node.name or node.op_type, name, list(t.dims))
                t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(1.01), name))
                break
        if changed:
            break
    if changed is None:
        raise RuntimeError(f"{model}: no 2-D float weight to change")
    tuned = os.path.join(work, f"{model}.tuned.onnx")
    onnx.save(m, tuned)
    old, new = os.path.join(work, f"{model}.v1.brink"), os.path.join(work, f"{model}.v2.brink")
    delta, rebuilt = os.path.join(work, f"{model}.delta"), os.path.join(work, f"{model}.rebuilt.brink")
    subprocess.run([exe, "pack", onnx_path, "-o", old], check=True, capture_output=True)
    subprocess.run([exe, "pack", tuned, "-o", new], check=True, capture_output=True)
    d = json.loads(subprocess.run([exe, "diff", old, new, "-o", delta, "--json"], check=True, capture_output=True,
                                  text=True).stdout)
    subprocess.run([exe, "patch", old, delta, "-o", rebuilt], check=True, capture_output=True)
    with open(new, "rb") as f1, open(rebuilt, "rb") as f2:
        identical = f1.read() == f2.read()
    layer_bytes = 4 * int(np.prod(changed[2]))
    return {"model": model, "layer": changed[0], "weight_shape": changed[2], "layer_mib": layer_bytes / 2**20,
            "package_mib": d["new_bytes"] / 2**20, "delta_mib": d["delta_bytes"] / 2**20,
            "delta_pct": 100.0 * d["delta_bytes"] / d["new_bytes"], "changed_chunks": d["changed_chunks"],
            "patched_chunks": d.get("patched_chunks", 0),
            "total_chunks": d["total_chunks"], "patch_identical": identical}


def measure_bounded(model: str, args, work: str, budget_mib: int) -> Dict[str, Any]:
    """Peak RSS and latency of the package with and without --max-memory, outputs compared."""
    import numpy as np
    exe = compare_ort.brink_binary()
    pkg = os.path.join(work, f"{model}.brink")
    if not os.path.exists(pkg):
        subprocess.run([exe, "pack", model_path(model), "-o", pkg], check=True, capture_output=True)
    t = str(args.threads)

    def bench(extra: List[str]) -> Dict[str, Any]:
        return json.loads(subprocess.run([exe, "bench", pkg, "--threads", t, "--seconds", "3", "--json", *extra],
                                         check=True, capture_output=True, text=True).stdout)

    def outputs(extra: List[str], tag: str) -> Dict[str, Any]:
        d = os.path.join(work, f"{model}.{tag}")
        subprocess.run([exe, "run", pkg, "--random", "--seed", "3", "--output-dir", d, *extra], check=True,
                       capture_output=True)
        return {f: np.load(os.path.join(d, f)) for f in sorted(os.listdir(d))}

    baseline = json.loads(subprocess.run([exe, "bench", os.path.join(ROOT, "models", "digits_cnn.onnx"),
                                          "--iterations", "1", "--warmup", "0", "--json"],
                                         check=True, capture_output=True, text=True).stdout)["peak_rss_bytes"]
    bounded_flag = ["--max-memory", str(budget_mib)]
    full, bounded = bench([]), bench(bounded_flag)
    a, b = outputs([], "full"), outputs(bounded_flag, "bounded")
    equal = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    weights = os.path.getsize(pkg)
    return {"model": model, "package_mib": weights / 2**20, "budget_mib": budget_mib,
            "baseline_mib": baseline / 2**20, "full_rss_mib": full["peak_rss_bytes"] / 2**20,
            "bounded_rss_mib": bounded["peak_rss_bytes"] / 2**20,
            "full_p50_ms": full["latency_ms"]["p50"], "bounded_p50_ms": bounded["latency_ms"]["p50"],
            "outputs_equal": equal,
            "within_budget": bounded["peak_rss_bytes"] <= (budget_mib * 2**20 + baseline)}


def serve_throttled(data: bytes, rate_mb_s: float) -> tuple:
    """A one-connection TCP server sending `data` at `rate_mb_s` (10^6 bytes/s) in 64 KiB writes.
    Returns (url, thread)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    url = f"tcp://127.0.0.1:{sock.getsockname()[1]}"

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
            start, step = time.perf_counter(), 1 << 16
            for at in range(0, len(data), step):
                due = start + at / (rate_mb_s * 1e6)
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                conn.sendall(data[at:at + step])
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass
        sock.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return url, t


def measure_stream(model: str, work: str, rate_mb_s: float, runs: int = 3) -> Dict[str, Any]:
    """Time to the first layer against time to the full load, the package streamed at a fixed rate."""
    exe = compare_ort.brink_binary()
    pkg = os.path.join(work, f"{model}.stream.brink")
    subprocess.run([exe, "pack", model_path(model), "-o", pkg], check=True, capture_output=True)
    with open(pkg, "rb") as f:
        data = f.read()
    old = os.path.join(work, f"{model}.format1.brink")
    subprocess.run([exe, "pack", model_path(model), "-o", old, "--format", "1"], check=True, capture_output=True)
    with open(old, "rb") as f:
        old_data = f.read()

    def streamed(payload: bytes) -> Dict[str, Any]:
        url, t = serve_throttled(payload, rate_mb_s)
        out = subprocess.run([exe, "run", url, "--random", "--json"], check=True, capture_output=True, text=True)
        t.join()
        return json.loads(out.stdout)["stream"]

    rows, whole = [], []
    for _ in range(runs):
        rows.append(streamed(data))
        whole.append(streamed(old_data))
    file_run = json.loads(subprocess.run([exe, "run", pkg, "--random", "--json"], check=True, capture_output=True,
                                         text=True).stdout)
    med = {k: statistics.median(r[k] for r in rows) for k in ("first_layer_ms", "all_verified_ms", "result_ms")}
    return {"model": model, "package_mib": len(data) / 2**20, "rate_mb_s": rate_mb_s,
            "transfer_ms": len(data) / (rate_mb_s * 1e6) * 1e3, **med,
            "run_ms": file_run["latency_ms"], "runs": runs,
            "whole_result_ms": statistics.median(r["result_ms"] for r in whole)}


def stream_table(rows: List[Dict[str, Any]]) -> str:
    head = ("| model | package MiB | rate MB/s | transfer ms | **first layer started ms** | all chunks verified ms "
            "| result ms | result − last chunk ms | one run from the file ms | result, format 1 (read whole, then run) ms |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['package_mib']:.1f} | {r['rate_mb_s']:.0f} | {r['transfer_ms']:.0f} "
                     f"| **{r['first_layer_ms']:.0f}** | {r['all_verified_ms']:.0f} | {r['result_ms']:.0f} "
                     f"| {r['result_ms'] - r['all_verified_ms']:.1f} | {r['run_ms']:.1f} | {r['whole_result_ms']:.0f} |")
    return "\n".join(lines)


def bounded_table(rows: List[Dict[str, Any]]) -> str:
    head = ("| model | package MiB | --max-memory MiB | runtime baseline MiB | peak RSS unbounded MiB "
            "| **peak RSS bounded MiB** | under budget + baseline | p50 unbounded ms | p50 bounded ms | outputs equal |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['package_mib']:.1f} | {r['budget_mib']} | {r['baseline_mib']:.1f} "
                     f"| {r['full_rss_mib']:.1f} | **{r['bounded_rss_mib']:.1f}** "
                     f"| {'yes' if r['within_budget'] else 'NO'} | {r['full_p50_ms']:.1f} | {r['bounded_p50_ms']:.1f} "
                     f"| {'yes' if r['outputs_equal'] else 'NO'} |")
    return "\n".join(lines)


def delta_table(rows: List[Dict[str, Any]]) -> str:
    head = ("| model | changed layer | its weight | layer % of package | package MiB | delta MiB "
            "| **delta % of package** | chunks changed (patched) | patch rebuilds it byte for byte |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['layer']} | {'x'.join(map(str, r['weight_shape']))} "
                     f"({r['layer_mib']:.2f} MiB) | {100.0 * r['layer_mib'] / r['package_mib']:.1f}% "
                     f"| {r['package_mib']:.1f} | {r['delta_mib']:.2f} "
                     f"| **{r['delta_pct']:.1f}%** | {r['changed_chunks']} of {r['total_chunks']} "
                     f"({r.get('patched_chunks', 0)}) "
                     f"| {'yes' if r['patch_identical'] else 'NO'} |")
    return "\n".join(lines)


def table(rows: List[Dict[str, Any]]) -> str:
    head = ("| model | weights | threads | .onnx MiB | .brink MiB | pre-packed layers | ORT python wall ms | Brink python wall ms "
            "| Brink CLI wall ms | Brink CLI from .onnx ms | **CLI / ORT** | python / ORT | in-process Brink / ORT "
            "| first / p50 | Brink load ms | pack ms |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r.get('weights', 'fp32')} | {r['threads']} | {r['onnx_mib']:.1f} | {r['package_mib']:.1f} | {r['prepacked_nodes']} "
            f"| {r['ort-python_wall_ms']:.0f} | {r['brink-python_wall_ms']:.0f} | {r['brink-cli_wall_ms']:.0f} "
            f"| {r['brink-onnx_wall_ms']:.0f} | **{r['ratio_wall']:.2f}** | {r['ratio_python_wall']:.2f} "
            f"| {r['ratio_in_process']:.2f} | {r['first_over_p50']:.2f} | {r['bench_load_ms']:.0f} | {r['pack_ms']:.0f} |")
    return "\n".join(lines)


def docs_text(argv: List[str], args, rows: List[Dict[str, Any]], deltas: List[Dict[str, Any]],
              bounded: List[Dict[str, Any]], streams: List[Dict[str, Any]]) -> str:
    """docs/PACKAGE.md: the generated header, then the cold-start, delta, memory-bound and
    progressive-loading tables, each with the line that says what it measures."""
    machine = compare_ort.machine_description()
    command = ".venv/bin/python bench/package_bench.py " + " ".join(argv)
    return "\n".join(compare_ort.generated_doc_header(
        "Packages: cold start against ONNX Runtime, delta updates, memory-bounded runs, progressive loading",
        "bench/package_bench.py", compare_ort.SETUP_COMMAND, command) + [
        f"- date: {datetime.date.today().isoformat()}; commit {compare_ort.git_commit() or 'unknown'}",
        f"- machine: {machine['cpu']}; " + ", ".join(f"{k}: {v}" for k, v in machine['lscpu'].items()
                                                     if k != 'Model name'),
        "",
        "Each column is the median of fresh processes run in alternation, files in the page cache. "
        "*wall*: process start to exit after the first result, measured around the process. "
        "ORT python: `import onnxruntime`, `InferenceSession(model.onnx)`, one run (ORT has no command line "
        "in its wheel). Brink python: the same with `brink.InferenceSession(model.brink)`, signature checked "
        "against a trusted key. Brink CLI: `brink run model.brink --random --pubkey K` (the C++ path a device "
        "uses). **CLI / ORT** is the issue's cold-start ratio; in-process compares the Python children from "
        "before the import to the first result. first / p50: the package's first inference over its "
        "steady-state median (`brink bench`). The package is signed, every chunk's SHA-256 and the signature "
        "are checked on each load. *pre-packed layers*: the layers whose weights the package stores already "
        "in the kernels' layout (`brink pack --json`), so a load maps them instead of repacking. "
        "INT8 rows (`*_int8`): the model bench/quant_bench.py makes with ONNX Runtime's own quantizer "
        "(`quantize_static`, QDQ, per-channel int8 weights, for the CNNs; `quantize_dynamic` for the encoder); "
        "ORT runs that same int8 .onnx, Brink its package. The sections below cover the FP32 models.", "",
        table(rows), "",
        "## Delta updates", "",
        "The last layer with a 2-D weight (the classifier) scaled by 1.01, both versions packed "
        "(default 4 MiB chunks, pre-packed weights), `brink diff` between them: the delta carries the "
        "changed chunks (a retrained layer's chunk as its deflated differences from the old one, a patch), "
        "the header and the manifest; every other chunk is copied from the package the device already has. "
        "`brink patch` must rebuild the new package byte for byte. The changed layer's own share of the "
        "package is the floor of any delta that sends it whole.", "",
        delta_table(deltas), "",
        "## Memory-bounded execution", "",
        f"`brink bench model.brink --max-memory {args.max_memory}` against the same without a bound: the package "
        "is hashed chunk by chunk without holding it, and when weights plus arena exceed the budget each layer's "
        "mapped weights are dropped after it runs (they fault back from the page cache on the next run). "
        "Peak RSS is the process's (`getrusage`); the runtime baseline is the peak RSS of the same binary "
        "running the tiny default model. Outputs are compared bit for bit (`brink run --seed 3`).", "",
        bounded_table(bounded), "",
        "## Progressive loading", "",
        f"The FP32 package (unsigned) served over a local TCP socket at {args.stream_rate:.0f} MB/s and run with "
        "`brink run tcp://127.0.0.1:PORT --random --json` (median of 3): the header, manifest and signature "
        "are verified first, each chunk as it arrives, and the layers run as their weights are verified. "
        "*first layer started*: when the first step passed its gate; *all chunks verified*: when the last "
        "chunk's SHA-256 matched; *result*: when the output was ready. Times are from the start of the "
        "connection; *transfer* is the package's size over the rate. The last column streams the same model "
        "packed as format 1 (manifest last), which can only be verified, compiled and run once it is all in.", "",
        stream_table(streams), ""])


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                    help="bench model names; *_int8 for the ORT-quantized INT8 models: " + " ".join(INT8_MODELS))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-memory", type=int, default=64, help="MiB for the memory-bounded runs (default 64)")
    ap.add_argument("--update-docs", action="store_true", help="write docs/PACKAGE.md")
    ap.add_argument("--out", help="also write the rows as JSON here")
    ap.add_argument("--stream-rate", type=float, default=100.0, help="MB/s for the progressive-loading rows")
    ap.add_argument("--stream-only", action="store_true", help="only the progressive-loading rows (no docs)")
    ap.add_argument("--delta-only", action="store_true", help="only the delta-update rows (no docs)")
    args = ap.parse_args(argv)
    if args.delta_only and any(m in INT8_MODELS for m in args.models):
        ap.error("--delta-only scales a float weight: expected FP32 models, found "
                 + " ".join(m for m in args.models if m in INT8_MODELS))
    if args.delta_only:
        with tempfile.TemporaryDirectory() as work:
            deltas = [measure_delta(m, work) for m in args.models]
        print(delta_table(deltas))
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"delta": deltas}, f, indent=2)
        return 0
    if args.stream_only:
        with tempfile.TemporaryDirectory() as work:
            streams = [measure_stream(m, work, args.stream_rate) for m in args.models]
        print(stream_table(streams))
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"stream": streams}, f, indent=2)
        return 0
    rows, deltas, bounded, streams = [], [], [], []
    # The delta, memory-bound and stream sections run on the FP32 models (see the file-top comment).
    fp32 = [m for m in args.models if m not in INT8_MODELS]
    with tempfile.TemporaryDirectory() as work:
        for m in args.models:
            print(f"cold start: {m} ...", file=sys.stderr, flush=True)
            rows.append(measure(m, args, work))
        for m in fp32:
            print(f"delta: {m} ...", file=sys.stderr, flush=True)
            deltas.append(measure_delta(m, work))
        for m in fp32:
            print(f"memory bound: {m} ...", file=sys.stderr, flush=True)
            bounded.append(measure_bounded(m, args, work, args.max_memory))
        for m in fp32:
            print(f"stream: {m} ...", file=sys.stderr, flush=True)
            streams.append(measure_stream(m, work, args.stream_rate))
    print("\n\n".join([table(rows)] + [t(r) for t, r in ((delta_table, deltas), (bounded_table, bounded),
                                                            (stream_table, streams)) if r]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"cold_start": rows, "delta": deltas, "memory_bound": bounded, "stream": streams}, f,
                      indent=2)
    if args.update_docs:
        with open(DOCS_PATH, "w") as f:
            f.write(docs_text(argv, args, rows, deltas, bounded, streams))
        print(f"wrote {DOCS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
