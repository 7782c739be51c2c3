#!/usr/bin/env python3
"""FP32 against its quantized version, side by side: file size, latency (`brink bench`, p50,
one thread) and accuracy on labelled data (`brink eval`), as the demo prints them.

    scripts/compare_quantized.py --fp32 models/digits_cnn.onnx --int8 build/digits_cnn.int8.onnx \\
        --data models/digits_test.npz [--brink build/brink]

--data is an .npz holding the model's input arrays and a "label" array (int, one per sample).
Exits 1 when a brink command fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def brink_json(brink: str, *args: str) -> dict:
    proc = subprocess.run([brink, *args, "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"error: brink {args[0]} failed (exit {proc.returncode})")
    return json.loads(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brink", default=os.path.join(ROOT, "build", "brink"))
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8", required=True)
    ap.add_argument("--data", required=True, help=".npz with the inputs and a 'label' array")
    ap.add_argument("--seconds", default="1", help="timed seconds per model for brink bench")
    args = ap.parse_args()

    data = np.load(args.data)
    if "label" not in data.files:
        raise SystemExit(f"error: {args.data} has no 'label' array (found: {', '.join(data.files)})")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(inputs, **{k: data[k] for k in data.files if k != "label"})
        labels = os.path.join(tmp, "labels.npy")
        np.save(labels, data["label"])
        ev = brink_json(args.brink, "eval", args.fp32, args.int8, "--data", inputs, "--labels", labels)
    bench = {name: brink_json(args.brink, "bench", path, "--threads", "1", "--seconds", args.seconds)
             for name, path in (("fp32", args.fp32), ("int8", args.int8))}

    cls = ev.get("classification") or {}
    top1 = {"fp32": cls.get("reference_top1"), "int8": cls.get("candidate_top1")}  # percent
    size = {"fp32": os.path.getsize(args.fp32), "int8": os.path.getsize(args.int8)}
    p50 = {k: v["latency_ms"]["p50"] for k, v in bench.items()}

    def pct(v):
        return "n/a" if v is None else f"{v:.2f}%"

    print(f"{'':14}{'FP32':>12}{'INT8':>12}{'INT8 / FP32':>14}")
    print(f"{'file size':14}{size['fp32'] / 1024:>10.1f} K{size['int8'] / 1024:>10.1f} K"
          f"{size['int8'] / size['fp32']:>13.2f}x")
    print(f"{'latency p50':14}{p50['fp32'] * 1e3:>9.1f} us{p50['int8'] * 1e3:>9.1f} us"
          f"{p50['int8'] / p50['fp32']:>13.2f}x")
    print(f"{'test top-1':14}{pct(top1['fp32']):>12}{pct(top1['int8']):>12}")
    outputs = ev.get("outputs") or []
    if outputs:
        o = outputs[0]
        print(f"INT8 vs FP32 logits: cosine {o.get('cosine_mean', float('nan')):.5f}, "
              f"SQNR {o.get('sqnr_db'):.1f} dB, top-1 agreement {pct(cls.get('top1_agreement'))} "
              f"({ev.get('samples', '?')} test images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
