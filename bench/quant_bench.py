#!/usr/bin/env python3
"""INT8 against FP32, Brink against ONNX Runtime, on the same quantized models.

For each model, ONNX Runtime's own quantizer makes the INT8 model (`quantize_static`, QDQ
format, per-channel symmetric int8 weights, uint8 activations, calibrated on the same
samples for every engine). Then, in one process, interleaved, batch 1, at 1 and 2 threads:

  - Brink FP32 (the .onnx) and Brink INT8 (the QDQ model, fused into Brink's integer ops),
  - ONNX Runtime FP32 and ONNX Runtime INT8 (the same QDQ model, fused into ORT's own
    integer kernels: what a user of ORT gets from its quantizer).

INT4 rows (--int4-models, default the encoder): weight-only block-wise INT4 (block 32,
symmetric): Brink FP32 against Brink running its own `brink quantize --mode int4` model, and
ONNX Runtime FP32 against ORT running the model of its own MatMul4BitsQuantizer (same block
size and symmetry; both are com.microsoft MatMulNBits).

Reported: p50 latencies, Brink's INT8 speed-up over its FP32 (the issue's target: ResNet-50
>= 3.0x, MobileNetV2 >= 2.0x at 1 thread), Brink INT8 / ORT INT8 (target: < 1 at 1 and 2
threads), file sizes, and how far Brink's INT8 outputs are from ORT's INT8 and from FP32
(cosine). These machines are noisy: medians, ratios from the same run.

    .venv/bin/python bench/quant_bench.py [--models resnet50 mobilenet_v2] [--threads 1 2]
        [--int4-models encoder] [--seconds 3] [--update-docs]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare_ort  # noqa: E402  (engines, interleaved timing, machine facts)

DOCS_PATH = os.path.join(ROOT, "docs", "INT8_PERFORMANCE.md")
DEFAULT_MODELS = ["resnet50", "mobilenet_v2", "encoder"]
# Quantized dynamically (weights int8 per channel, activations at run time), as transformers are.
DYNAMIC_MODELS = {"encoder"}
CALIBRATION_SAMPLES = 16
INT4_BLOCK_SIZE = 32


def quantize_with_ort(fp32_path: str, out_path: str, input_name: str, shape: List[int]) -> None:
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rng = np.random.default_rng(0)
    samples = [{input_name: rng.standard_normal(shape).astype(np.float32)} for _ in range(CALIBRATION_SAMPLES)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    pre = out_path + ".pre.onnx"
    quant_pre_process(fp32_path, pre, skip_symbolic_shape=True)
    quantize_static(pre, out_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.remove(pre)


def quantize_dynamic_with_ort(fp32_path: str, out_path: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(fp32_path, out_path, weight_type=QuantType.QInt8, per_channel=True)


def int8_model(name: str, fp32_path: str, inputs: Dict[str, Any]) -> str:
    """The INT8 model ONNX Runtime's quantizer makes: static QDQ for CNNs, dynamic for
    transformers (DYNAMIC_MODELS)."""
    dynamic = name in DYNAMIC_MODELS
    out = os.path.join(os.path.dirname(fp32_path), "model.int8.dynamic.onnx" if dynamic else "model.int8.qdq.onnx")
    if not os.path.isfile(out) or os.path.getmtime(out) < os.path.getmtime(fp32_path):
        how = "quantize_dynamic" if dynamic else "quantize_static"
        print(f"[quant_bench] {name}: quantizing with ONNX Runtime's {how}", file=sys.stderr)
        if dynamic:
            quantize_dynamic_with_ort(fp32_path, out)
        else:
            (input_name, x), = inputs.items()
            quantize_with_ort(fp32_path, out, input_name, list(x.shape))
    return out


def int4_models(name: str, fp32_path: str) -> Dict[str, str]:
    """Brink's `quantize --mode int4` model and ORT's MatMul4BitsQuantizer model (block 32,
    symmetric), cached next to the FP32 model."""
    d = os.path.dirname(fp32_path)
    out = {"brink": os.path.join(d, f"model.int4.b{INT4_BLOCK_SIZE}.brink.onnx"),
           "ort": os.path.join(d, f"model.int4.b{INT4_BLOCK_SIZE}.ort.onnx")}
    stale = lambda p: not os.path.isfile(p) or os.path.getmtime(p) < os.path.getmtime(fp32_path)  # noqa: E731
    # Brink's model also goes stale with the quantizer: remade when the binary is newer.
    if stale(out["brink"]) or os.path.getmtime(out["brink"]) < os.path.getmtime(compare_ort.brink_binary()):
        print(f"[quant_bench] {name}: brink quantize --mode int4", file=sys.stderr)
        subprocess.run([compare_ort.brink_binary(), "quantize", fp32_path, "-o", out["brink"], "--mode", "int4",
                        "--block-size", str(INT4_BLOCK_SIZE), "--report-samples", "1"], check=True,
                       capture_output=True, text=True)
    if stale(out["ort"]):
        print(f"[quant_bench] {name}: ORT MatMul4BitsQuantizer", file=sys.stderr)
        import logging
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        logging.getLogger().setLevel(logging.ERROR)
        q = MatMulNBitsQuantizer(onnx.load(fp32_path), bits=4, block_size=INT4_BLOCK_SIZE, is_symmetric=True)
        q.process()
        q.model.save_model_to_file(out["ort"], False)
    return out


def cosine(a, b) -> float:
    import numpy as np
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def measure(name: str, threads: int, seconds: float) -> Dict[str, Any]:
    import numpy as np
    models = compare_ort.load_bench_models()
    g = models.ensure(name)
    inputs = g.load_inputs()
    q_path = int8_model(name, g.path, inputs)
    sessions = {
        "brink_fp32": compare_ort.brink_session(g.path, threads),
        "brink_int8": compare_ort.brink_session(q_path, threads),
        "ort_fp32": compare_ort.ort_session(g.path, threads),
        "ort_int8": compare_ort.ort_session(q_path, threads),
    }
    outs = {k: s.run(None, inputs)[0] for k, s in sessions.items()}
    times = compare_ort.interleaved_latency(sessions, inputs, warmup=3, iterations=None, seconds=seconds,
                                            gap_s=0.05)
    p50 = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    info = subprocess.run([compare_ort.brink_binary(), "info", q_path, "--json"], capture_output=True, text=True,
                          check=True)
    ops = json.loads(info.stdout)["optimization"]["ops"]
    row = {
        "model": name, "threads": threads,
        **{f"{k}_p50_ms": v for k, v in p50.items()},
        "brink_int8_speedup": p50["brink_fp32"] / p50["brink_int8"],
        "ort_int8_speedup": p50["ort_fp32"] / p50["ort_int8"],
        "brink_int8_vs_ort_int8": p50["brink_int8"] / p50["ort_int8"],
        "fp32_mib": os.path.getsize(g.path) / 2**20,
        "int8_mib": os.path.getsize(q_path) / 2**20,
        "cos_brink_int8_vs_fp32": cosine(outs["brink_int8"], outs["ort_fp32"]),
        "cos_brink_int8_vs_ort_int8": cosine(outs["brink_int8"], outs["ort_int8"]),
        "mode": "int8-dynamic" if name in DYNAMIC_MODELS else "int8 static",
        "brink_int8_ops": {k: v for k, v in sorted(ops.items()) if k.startswith(("brink.Q", "com.microsoft"))},
        "float_convs_left": ops.get("brink.Conv", 0) + ops.get("Conv", 0),
        "samples": {k: len(v) for k, v in times.items()},
    }
    return row


def measure_int4(name: str, threads: int, seconds: float) -> Dict[str, Any]:
    models = compare_ort.load_bench_models()
    g = models.ensure(name)
    inputs = g.load_inputs()
    paths = int4_models(name, g.path)
    sessions = {
        "brink_fp32": compare_ort.brink_session(g.path, threads),
        "brink_int4": compare_ort.brink_session(paths["brink"], threads),
        "ort_fp32": compare_ort.ort_session(g.path, threads),
        "ort_int4": compare_ort.ort_session(paths["ort"], threads),
    }
    outs = {k: s.run(None, inputs)[0] for k, s in sessions.items()}
    times = compare_ort.interleaved_latency(sessions, inputs, warmup=3, iterations=None, seconds=seconds,
                                            gap_s=0.05)
    p50 = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {
        "model": name, "threads": threads, "mode": f"int4 b{INT4_BLOCK_SIZE} symmetric",
        **{f"{k}_p50_ms": v for k, v in p50.items()},
        "brink_int4_speedup": p50["brink_fp32"] / p50["brink_int4"],
        "ort_int4_speedup": p50["ort_fp32"] / p50["ort_int4"],
        "brink_int4_vs_ort_int4": p50["brink_int4"] / p50["ort_int4"],
        "fp32_mib": os.path.getsize(g.path) / 2**20,
        "brink_int4_mib": os.path.getsize(paths["brink"]) / 2**20,
        "ort_int4_mib": os.path.getsize(paths["ort"]) / 2**20,
        "cos_brink_int4_vs_fp32": cosine(outs["brink_int4"], outs["ort_fp32"]),
        "cos_ort_int4_vs_fp32": cosine(outs["ort_int4"], outs["ort_fp32"]),
        "samples": {k: len(v) for k, v in times.items()},
    }


def markdown_int4(rows: List[Dict[str, Any]]) -> List[str]:
    if not rows:
        return []
    lines = ["", "## INT4 weight-only", "",
             f"Brink: its own `brink quantize --mode int4` model (block {INT4_BLOCK_SIZE}, symmetric; MatMulNBits). "
             "ORT: the model of its own MatMul4BitsQuantizer (same block size and symmetry). Weights stay 4-bit; "
             "activations float.", "",
             "| model | threads | Brink FP32 ms | Brink INT4 ms | **Brink INT4 speed-up** | ORT FP32 ms | ORT INT4 ms "
             "| ORT INT4 speed-up | **Brink INT4 / ORT INT4** | FP32 MiB | Brink INT4 MiB | ORT INT4 MiB "
             "| cos(Brink INT4, FP32) | cos(ORT INT4, FP32) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['brink_fp32_p50_ms']:.2f} | {r['brink_int4_p50_ms']:.2f} "
            f"| **{r['brink_int4_speedup']:.2f}x** | {r['ort_fp32_p50_ms']:.2f} | {r['ort_int4_p50_ms']:.2f} "
            f"| {r['ort_int4_speedup']:.2f}x | **{r['brink_int4_vs_ort_int4']:.2f}** | {r['fp32_mib']:.1f} "
            f"| {r['brink_int4_mib']:.1f} | {r['ort_int4_mib']:.1f} | {r['cos_brink_int4_vs_fp32']:.4f} "
            f"| {r['cos_ort_int4_vs_fp32']:.4f} |")
    lines.append("")
    return lines


def markdown(rows: List[Dict[str, Any]], machine: Dict[str, Any], commit: str) -> str:
    lines = compare_ort.generated_doc_header(
        "INT8 performance: Brink against ONNX Runtime", "bench/quant_bench.py", compare_ort.SETUP_COMMAND,
        ".venv/bin/python bench/quant_bench.py --update-docs")
    lines += [f"Measured {datetime.date.today().isoformat()} at commit `{commit}` on {machine['cpu']} "
              f"(SIMD: {', '.join(machine['simd_flags'])}). Batch 1, p50 of interleaved runs in one process. "
              "INT8 model: ONNX Runtime's own quantizer, the same file for both engines: `quantize_static` for the "
              "CNNs (QDQ, per-channel int8 weights, uint8 activations, "
              f"{CALIBRATION_SAMPLES} calibration samples), `quantize_dynamic` (per-channel int8 weights, activations "
              "quantized at run time) for the encoder. Targets (issue 4): Brink INT8 speed-up over Brink FP32 at 1 "
              "thread >= 3.0x ResNet-50, >= 2.0x MobileNetV2 and the encoder (dynamic); Brink INT8 / ORT INT8 < 1.", "",
              "| model | mode | threads | Brink FP32 ms | Brink INT8 ms | **Brink INT8 speed-up** | ORT FP32 ms | ORT INT8 ms "
              "| ORT INT8 speed-up | **Brink INT8 / ORT INT8** | FP32 MiB | INT8 MiB | size ratio | cos(Brink INT8, FP32) "
              "| cos(Brink INT8, ORT INT8) | float convs left |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['threads']} | {r['brink_fp32_p50_ms']:.2f} | {r['brink_int8_p50_ms']:.2f} "
            f"| **{r['brink_int8_speedup']:.2f}x** | {r['ort_fp32_p50_ms']:.2f} | {r['ort_int8_p50_ms']:.2f} "
            f"| {r['ort_int8_speedup']:.2f}x | **{r['brink_int8_vs_ort_int8']:.2f}** | {r['fp32_mib']:.1f} "
            f"| {r['int8_mib']:.1f} | {r['int8_mib'] / r['fp32_mib']:.2f} | {r['cos_brink_int8_vs_fp32']:.4f} "
            f"| {r['cos_brink_int8_vs_ort_int8']:.4f} | {r['float_convs_left']} |")
    lines += ["", "Integer ops Brink ran (from `brink info`):", ""]
    for r in rows:
        if r["threads"] == rows[0]["threads"]:
            lines.append(f"- {r['model']}: " + ", ".join(f"{k} x{v}" for k, v in r["brink_int8_ops"].items()))
    lines.append("")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--int4-models", nargs="*", default=["encoder"],
                   help="models for the INT4 weight-only rows (none: skip them)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per engine and configuration")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--update-docs", action="store_true", help=f"rewrite {os.path.relpath(DOCS_PATH, ROOT)}")
    args = p.parse_args(argv)
    rows = []
    for name in args.models:
        for t in args.threads:
            row = measure(name, t, args.seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
    int4_rows = []
    for name in args.int4_models:
        for t in args.threads:
            row = measure_int4(name, t, args.seconds)
            int4_rows.append(row)
            print(json.dumps(row), flush=True)
    text = markdown(rows, compare_ort.machine_description(), compare_ort.git_commit() or "unknown") if rows else ""
    text += "\n".join(markdown_int4(int4_rows))
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows + int4_rows, f, indent=1)
    if args.update_docs:
        with open(DOCS_PATH, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
