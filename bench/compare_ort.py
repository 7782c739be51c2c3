#!/usr/bin/env python3
"""Brink against ONNX Runtime, side by side, on the same inputs (issue 3's benchmark).

For each model and thread count:
  - latency: both engines loaded in this process, warmed up, then timed in alternating
    blocks (Brink, ORT, ORT, Brink, ...) with a short pause between blocks, so drift on a
    shared machine and one engine's idle-spinning threads hit both alike; p50/p90 of the
    single runs, ratio Brink/ORT;
  - memory and start-up: each engine in its own fresh child process, which imports NumPy
    and the engine, notes its peak RSS (the baseline), loads the model (load time), runs
    it once (first inference) and then a few more times; peak RSS is the process's peak
    (VmHWM, i.e. ru_maxrss of this process alone) minus the baseline;
  - achieved GFLOP/s = 2 * MACs (Brink's count, InferenceSession.info()) / p50, and its
    share of this machine's FP32 peak for that thread count from `brink bench --peak
    --json` ("n/a" when that command is missing);
  - the largest output difference between the engines, scaled by the output's magnitude.

ORT runs with default session options (graph optimization ORT_ENABLE_ALL),
intra_op_num_threads = the thread count and inter_op_num_threads = 1. Brink runs through
its Python module with threads = the thread count.

It prints a markdown table and writes compare_ort.json and compare_ort.md into --out-dir;
--update-docs also regenerates docs/PERFORMANCE.md with the machine, the commit, the table
and issue 3's targets checked against it.

    .venv/bin/python bench/compare_ort.py                          # all models, 1 and 2 threads
    .venv/bin/python bench/compare_ort.py --models resnet50 --threads 1 --seconds 20
    .venv/bin/python bench/compare_ort.py --quick --out-dir /tmp/x  # smoke test (CI)
    .venv/bin/python bench/compare_ort.py --update-docs             # the PERFORMANCE.md run

Timings on a shared machine are noisy: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCHEMA_VERSION = 1
QUICK_MODEL = "mobilenet_v3_small"
DOCS_PATH = os.path.join(ROOT, "docs", "PERFORMANCE.md")
# The models issue 3 asks to be at most 0.75x ORT's latency at 2 threads.
FAST_AT_2_THREADS = ("mobilenet_v2", "efficientnet_b0", "encoder")


def load_bench_models():
    """bench/models.py, as module `bench_models` (plain `import models` would find either it or
    tests/python/models.py depending on sys.path)."""
    if "bench_models" not in sys.modules:
        import importlib.util
        spec = importlib.util.spec_from_file_location("bench_models", os.path.join(HERE, "models.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_models"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_models"]


# --------------------------------------------------------------------------------------------
# Engines


def ort_session(path: str, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()  # graph_optimization_level defaults to ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def brink_session(path: str, threads: int):
    import brink
    return brink.InferenceSession(path, threads=threads)


SESSION_MAKERS = {"brink": brink_session, "onnxruntime": ort_session}
ENGINES = ("brink", "onnxruntime")


# --------------------------------------------------------------------------------------------
# Child process: load time, first inference, peak RSS


def _maxrss_bytes() -> int:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss: after fork + exec Linux
    reports the parent's peak in ru_maxrss when that was higher, which would hide the
    child's own until it exceeds the parent's."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child_main(engine: str, model_dir: str, threads: int, runs: int) -> int:
    import numpy as np  # noqa: F401  (part of the baseline)
    if engine == "brink":
        import brink  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
    with open(os.path.join(model_dir, "meta.json")) as f:
        meta = json.load(f)
    g = load_bench_models().test_models.GeneratedModel(name=meta["name"], directory=model_dir, opset=meta["opset"], input_names=meta["inputs"],
                       output_names=meta["outputs"], export_seconds=meta["export_seconds"])
    feeds = g.load_inputs()
    baseline = _maxrss_bytes()
    t0 = time.perf_counter()
    sess = SESSION_MAKERS[engine](g.path, threads)
    t1 = time.perf_counter()
    sess.run(None, feeds)
    t2 = time.perf_counter()
    for _ in range(runs):
        sess.run(None, feeds)
    peak = _maxrss_bytes()
    print(json.dumps({"load_ms": (t1 - t0) * 1e3, "first_inference_ms": (t2 - t1) * 1e3,
                      "peak_rss_bytes": peak - baseline, "baseline_rss_bytes": baseline}))
    return 0


def run_child(engine: str, model_dir: str, threads: int, runs: int) -> Dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", engine, "--child-model", model_dir,
           "--child-threads", str(threads), "--child-runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"{engine} child failed (exit {proc.returncode}): {lines[-1] if lines else ''}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Latency, interleaved


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest rank, as `brink bench` computes it."""
    if not sorted_values:
        return float("nan")
    rank = math.ceil(p / 100.0 * len(sorted_values))
    return sorted_values[min(len(sorted_values) - 1, max(rank, 1) - 1)]


def interleaved_latency(sessions: Dict[str, Any], feeds, warmup: int, iterations: Optional[int],
                        seconds: float, gap_s: float) -> Dict[str, List[float]]:
    """Per-run seconds for each engine. Stops when each engine has `iterations` runs, or
    (without iterations) when each has spent `seconds` in timed runs."""
    est = {}
    for name, sess in sessions.items():
        t0 = time.perf_counter()
        for _ in range(max(warmup, 1)):
            sess.run(None, feeds)
        est[name] = (time.perf_counter() - t0) / max(warmup, 1)
    # Blocks of about a quarter second (at least one run) per engine.
    block = max(1, int(0.25 / max(max(est.values()), 1e-6)))
    if iterations:
        block = min(block, iterations)
    times: Dict[str, List[float]] = {name: [] for name in sessions}
    spent = {name: 0.0 for name in sessions}
    names = list(sessions)
    b = 0
    while True:
        if iterations and all(len(times[n]) >= iterations for n in names):
            break
        if not iterations and all(spent[n] >= seconds for n in names):
            break
        for name in (names if b % 2 == 0 else names[::-1]):
            sess = sessions[name]
            n = block if not iterations else min(block, iterations - len(times[name]))
            for _ in range(n):
                t0 = time.perf_counter()
                sess.run(None, feeds)
                dt = time.perf_counter() - t0
                times[name].append(dt)
                spent[name] += dt
            time.sleep(gap_s)  # lets the other engine's pool stop spinning before it is timed
        b += 1
    return times


def max_scaled_difference(a: Sequence[Any], b: Sequence[Any]) -> float:
    import numpy as np  # noqa: F401  (part of the baseline)
    worst = 0.0
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return float("inf")
        if x.size == 0:
            continue
        scale = max(1.0, float(np.abs(y).max()))
        worst = max(worst, float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) / scale)
    return worst


# --------------------------------------------------------------------------------------------
# Machine facts


def brink_binary() -> str:
    return os.environ.get("BRINK_BIN") or os.path.join(ROOT, "build", "brink")


def measure_peak(threads: Sequence[int]) -> Dict[str, Optional[float]]:
    """FP32 peak GFLOP/s per thread count from `brink bench --peak --json`; None where the
    command is missing or fails."""
    out: Dict[str, Optional[float]] = {str(t): None for t in threads}
    exe = brink_binary()
    if not os.access(exe, os.X_OK):
        return out
    for t in threads:
        try:
            proc = subprocess.run([exe, "bench", "--peak", "--threads", str(t), "--json"], capture_output=True,
                                  text=True, timeout=300, stdin=subprocess.DEVNULL)
            j = json.loads(proc.stdout) if proc.returncode == 0 else {}
        except (OSError, ValueError, subprocess.TimeoutExpired):
            j = {}
        key = "fp32_peak_gflops_1_thread" if t == 1 else "fp32_peak_gflops"
        value = j.get(key) if t == 1 or j.get("threads") == t else None
        out[str(t)] = float(value) if isinstance(value, (int, float)) and value > 0 else None
    return out


def lscpu() -> Dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return {}
    facts = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            facts[k.strip()] = v.strip()
    return facts


def machine_description() -> Dict[str, Any]:
    facts = lscpu()
    flags = facts.get("Flags", "").split()
    simd = [f for f in flags if f.startswith(("avx512", "avx2", "fma", "avx_vnni", "amx"))]
    keep = ("Model name", "Architecture", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Socket(s)",
            "CPU max MHz", "L1d cache", "L2 cache", "L3 cache", "Hypervisor vendor")
    return {"cpu": facts.get("Model name", platform.processor()), "lscpu": {k: facts[k] for k in keep if k in facts},
            "simd_flags": simd, "os": platform.platform(), "python": platform.python_version()}


def git_commit() -> Optional[str]:
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except OSError:
        return None


# --------------------------------------------------------------------------------------------
# Measurement driver


def measure(model: str, threads: int, args, peak: Dict[str, Optional[float]]) -> Dict[str, Any]:
    import bench_models
    row: Dict[str, Any] = {"model": model, "threads": threads, "error": None}
    g = bench_models.ensure(model)
    row["file"] = os.path.relpath(g.path, ROOT)
    feeds = g.load_inputs()
    sessions = {}
    try:
        for e in ENGINES:
            sessions[e] = SESSION_MAKERS[e](g.path, threads)
    except Exception as ex:  # noqa: BLE001  (an engine that cannot load the model is a result)
        row["error"] = f"{e}: {type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}"
        return row
    macs = sessions["brink"].info().get("macs") or 0
    row["macs"] = macs
    row["gflop"] = 2 * macs / 1e9
    row["max_scaled_difference"] = max_scaled_difference(sessions["brink"].run(None, feeds),
                                                         sessions["onnxruntime"].run(None, feeds))
    times = interleaved_latency(sessions, feeds, args.warmup, args.iterations, args.seconds, args.gap_ms / 1e3)
    del sessions
    p = peak.get(str(threads))
    for e in ENGINES:
        s = sorted(times[e])
        p50 = percentile(s, 50) * 1e3
        r = {"runs": len(s), "p50_ms": p50, "p90_ms": percentile(s, 90) * 1e3, "mean_ms": sum(s) / len(s) * 1e3,
             "min_ms": s[0] * 1e3}
        r["gflops"] = row["gflop"] / (p50 / 1e3) if p50 > 0 and macs else None
        r["percent_of_peak"] = 100.0 * r["gflops"] / p if (p and r["gflops"]) else None
        try:
            r.update(run_child(e, g.directory, threads, args.child_runs))
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as ex:
            r["child_error"] = str(ex)
        row[e] = r
    b, o = row["brink"], row["onnxruntime"]
    row["ratio_p50"] = b["p50_ms"] / o["p50_ms"]
    row["ratio_p90"] = b["p90_ms"] / o["p90_ms"]
    if "peak_rss_bytes" in b and "peak_rss_bytes" in o and o["peak_rss_bytes"] > 0:
        row["ratio_peak_rss"] = b["peak_rss_bytes"] / o["peak_rss_bytes"]
    if "load_ms" in b and "load_ms" in o:
        row["ratio_load_first"] = (b["load_ms"] + b["first_inference_ms"]) / (o["load_ms"] + o["first_inference_ms"])
    return row


# --------------------------------------------------------------------------------------------
# Targets (issue 3) and reports


def check_targets(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    ok_rows = [r for r in rows if not r.get("error")]

    def verdict(name, checked, failures, detail=""):
        if not checked:
            return {"target": name, "ok": None, "detail": ""}
        return {"target": name, "ok": not failures, "detail": "; ".join(failures) if failures else detail}

    def fmt(r, key, unit="x"):
        return f"{r['model']} @{r['threads']}t {r[key]:.2f}{unit}"

    out = []
    lat = [r for r in ok_rows if r["threads"] in (1, 2) and "ratio_p50" in r]
    out.append(verdict("Brink/ORT p50 latency <= 1.0 for every model at 1 and 2 threads", lat,
                       [fmt(r, "ratio_p50") for r in lat if r["ratio_p50"] > 1.0],
                       f"worst {max((r['ratio_p50'] for r in lat), default=0):.2f}x"))
    fast = [r for r in ok_rows if r["threads"] == 2 and r["model"] in FAST_AT_2_THREADS and "ratio_p50" in r]
    out.append(verdict("<= 0.75 at 2 threads for mobilenet_v2, efficientnet_b0 and the encoder", fast,
                       [fmt(r, "ratio_p50") for r in fast if r["ratio_p50"] > 0.75],
                       f"worst {max((r['ratio_p50'] for r in fast), default=0):.2f}x"))
    r50 = [r for r in ok_rows if r["model"] == "resnet50" and r["threads"] == 1]
    have_peak = [r for r in r50 if r["brink"].get("percent_of_peak") is not None]
    t = verdict("ResNet-50 at 1 thread >= 75% of measured FP32 peak", have_peak,
                [f"{r['brink']['percent_of_peak']:.1f}%" for r in have_peak if r["brink"]["percent_of_peak"] < 75],
                ", ".join(f"{r['brink']['percent_of_peak']:.1f}%" for r in have_peak))
    if r50 and not have_peak:
        t["detail"] = "FP32 peak not available (`brink bench --peak --json` missing or failed)"
    out.append(t)
    rss = [r for r in ok_rows if "ratio_peak_rss" in r]
    out.append(verdict("Peak RSS <= 0.6x ORT's", rss, [fmt(r, "ratio_peak_rss") for r in rss if r["ratio_peak_rss"] > 0.6],
                       f"worst {max((r['ratio_peak_rss'] for r in rss), default=0):.2f}x"))
    lf = [r for r in ok_rows if "ratio_load_first" in r]
    out.append(verdict("Load + first inference <= ORT's", lf,
                       [fmt(r, "ratio_load_first") for r in lf if r["ratio_load_first"] > 1.0],
                       f"worst {max((r['ratio_load_first'] for r in lf), default=0):.2f}x"))
    return out


def _json_safe(v):
    """NaN and infinity (JSON has neither) become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _f(v, digits=2, suffix=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}{suffix}"


def _mib(v):
    return "n/a" if v is None else f"{v / 2**20:.1f}"


def markdown_table(rows: List[Dict[str, Any]]) -> str:
    head = ("| model | threads | Brink p50 ms | ORT p50 ms | **ratio p50** | Brink p90 ms | ORT p90 ms | "
            "Brink GFLOP/s (% peak) | ORT GFLOP/s (% peak) | Brink peak RSS MiB | ORT peak RSS MiB | RSS ratio | "
            "Brink load+first ms | ORT load+first ms | max diff |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['model']} | {r['threads']} | error: {r['error']} |" + " |" * 12)
            continue
        b, o = r["brink"], r["onnxruntime"]

        def gf(x):
            return f"{_f(x.get('gflops'), 1)} ({_f(x.get('percent_of_peak'), 0, '%')})"

        def lf(x):
            return _f(x["load_ms"] + x["first_inference_ms"], 1) if "load_ms" in x else "n/a"
        lines.append(
            f"| {r['model']} | {r['threads']} | {_f(b['p50_ms'])} | {_f(o['p50_ms'])} | **{_f(r['ratio_p50'])}** | "
            f"{_f(b['p90_ms'])} | {_f(o['p90_ms'])} | {gf(b)} | {gf(o)} | {_mib(b.get('peak_rss_bytes'))} | "
            f"{_mib(o.get('peak_rss_bytes'))} | {_f(r.get('ratio_peak_rss'))} | {lf(b)} | {lf(o)} | "
            f"{r['max_scaled_difference']:.1e} |")
    return "\n".join(lines)


def targets_markdown(targets: List[Dict[str, Any]]) -> str:
    lines = []
    for t in targets:
        mark = {True: "[x]", False: "[ ]", None: "[-]"}[t["ok"]]
        status = {True: "met", False: "MISSED", None: "not measured"}[t["ok"]]
        lines.append(f"- {mark} {t['target']}: **{status}**" + (f" ({t['detail']})" if t["detail"] else ""))
    return "\n".join(lines)


def generated_doc_header(title: str, script: str, setup: str, command: str) -> List[str]:
    """The opening lines of a docs/ page a bench script generates: title, the do-not-edit
    marker and the commands that reproduce it."""
    return [f"# {title}", "",
            f"<!-- Generated by {script} --update-docs; do not edit by hand. -->", "",
            f"Generated by `{script}`; never edited by hand. Reproduce with:", "",
            "```sh", setup, command.strip(), "```", ""]


SETUP_COMMAND = "scripts/setup.sh && scripts/build.sh release && .venv/bin/pip install --no-build-isolation ./"


def report_markdown(result: Dict[str, Any], for_docs: bool) -> str:
    m = result["machine"]
    peak = ", ".join(f"{t} thread{'s' if t != '1' else ''}: {_f(v, 1)} GFLOP/s" for t, v in result["peak_gflops"].items())
    lines = []
    if for_docs:
        lines += generated_doc_header("Performance: Brink against ONNX Runtime", "bench/compare_ort.py",
                                      SETUP_COMMAND, result["command"])
    lines += [f"- date: {result['date']}",
              f"- machine: {m['cpu']}; " + ", ".join(f"{k}: {v}" for k, v in m["lscpu"].items() if k != "Model name"),
              f"- SIMD: {' '.join(m['simd_flags']) or 'n/a'}",
              f"- brink {result['brink']['version']} at commit {result['brink']['git_commit'] or 'unknown'} "
              f"(kernels: {result['brink']['isa']}); ONNX Runtime {result['onnxruntime']['version']}",
              f"- FP32 peak (`brink bench --peak`): {peak}",
              f"- settings: batch 1; {result['settings']['describe']}",
              "",
              "Latency is measured with both engines in one process, in alternating blocks; ratio = Brink/ORT "
              "(below 1: Brink is faster). GFLOP/s = 2 x MACs / p50. Peak RSS, load and first inference are "
              "measured in a fresh child process per engine (peak RSS above the process's RSS after importing "
              "NumPy and the engine). max diff: largest |Brink - ORT| over the outputs, scaled by max(1, max|ORT|).",
              "", markdown_table(result["results"]), ""]
    lines += ["## Targets (issue 3)", "", targets_markdown(result["targets"]), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    import bench_models
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(bench_models.DEFAULT_MODELS),
                    help=f"comma-separated (default: all of {', '.join(bench_models.DEFAULT_MODELS)}); "
                         f"also: {', '.join(m for m in bench_models.AVAILABLE if m not in bench_models.DEFAULT_MODELS)}")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--iterations", type=int, default=None, help="timed runs per engine (default: by --seconds)")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per engine and case (default 5)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per engine first (default 5)")
    ap.add_argument("--child-runs", type=int, default=10,
                    help="runs after the first in each memory/start-up child process (default 10)")
    ap.add_argument("--gap-ms", type=float, default=20.0, help="pause between timing blocks (default 20)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: {QUICK_MODEL}, 1 thread, 5 iterations, no peak measurement")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"), help="where compare_ort.{json,md} go")
    ap.add_argument("--update-docs", action="store_true", help=f"also regenerate {os.path.relpath(DOCS_PATH, ROOT)}")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--child-model", help=argparse.SUPPRESS)
    ap.add_argument("--child-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        if args.update_docs:
            ap.error("--update-docs needs a full run, not --quick")
        args.models, args.threads, args.iterations, args.warmup, args.child_runs = QUICK_MODEL, "1", 5, 1, 2
    try:
        args.thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads {args.threads!r}: expected comma-separated integers")
    if not args.thread_list or any(t < 1 for t in args.thread_list):
        ap.error("--threads needs counts >= 1")
    args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.model_list if m not in bench_models.AVAILABLE]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(bench_models.AVAILABLE)}")
    if args.iterations is not None and args.iterations < 1:
        ap.error("--iterations must be >= 1")
    return args


def main(argv: List[str]) -> int:
    load_bench_models()
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.child_model, args.child_threads, args.child_runs)

    import brink
    import onnxruntime as ort

    command = "bench/compare_ort.py " + " ".join(shlex.quote(a) for a in argv)
    peak = {str(t): None for t in args.thread_list} if args.quick else measure_peak(args.thread_list)
    timing = f"{args.iterations} timed runs" if args.iterations else f"{args.seconds:g} s of timed runs"
    result: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": "bench/compare_ort.py",
        "command": ".venv/bin/python " + command.strip(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "brink": {"version": brink.__version__, "git_commit": git_commit(), "isa": brink.cpu_info()["best_isa"],
                  "module": os.path.dirname(brink.__file__)},
        "onnxruntime": {"version": ort.__version__},
        "peak_gflops": peak,
        "settings": {"models": args.model_list, "threads": args.thread_list, "iterations": args.iterations,
                     "seconds": None if args.iterations else args.seconds, "warmup": args.warmup,
                     "child_runs": args.child_runs, "gap_ms": args.gap_ms, "quick": args.quick,
                     "describe": f"{args.warmup} warm-up runs, then {timing} per engine; "
                                 f"{args.child_runs + 1} runs in each child process"},
        "results": [],
    }
    for model in args.model_list:
        for t in args.thread_list:
            print(f"measuring {model} at {t} thread{'s' if t > 1 else ''} ...", file=sys.stderr, flush=True)
            row = measure(model, t, args, peak)
            result["results"].append(row)
            if row.get("error"):
                print(f"  {row['error']}", file=sys.stderr)
            else:
                print(f"  p50 brink {row['brink']['p50_ms']:.2f} ms, ORT {row['onnxruntime']['p50_ms']:.2f} ms, "
                      f"ratio {row['ratio_p50']:.2f}", file=sys.stderr)
    result["targets"] = check_targets(result["results"])

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "compare_ort.json"), "w") as f:
        json.dump(_json_safe(result), f, indent=1, allow_nan=False)
    text = report_markdown(result, for_docs=False)
    with open(os.path.join(args.out_dir, "compare_ort.md"), "w") as f:
        f.write(text)
    print(text)
    if args.update_docs:
        with open(DOCS_PATH, "w") as f:
            f.write(report_markdown(result, for_docs=True))
        print(f"wrote {os.path.relpath(DOCS_PATH, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
