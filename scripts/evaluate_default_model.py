#!/usr/bin/env python3
"""Top-1 accuracy of the embedded default model on its held-out test split, computed from
Brink's outputs and from ONNX Runtime's on the same inputs. Exits 1 if they disagree."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--brink", default=os.path.join(ROOT, "build", "brink"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "digits_cnn.onnx"))
    ap.add_argument("--data", default=os.path.join(ROOT, "models", "digits_test.npz"))
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()

    data = np.load(args.data)
    images, labels = data["image"], data["label"]
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(inputs, image=images)
        out_dir = os.path.join(tmp, "out")
        run = subprocess.run([args.brink, "run", args.model, "--inputs", inputs, "--output-dir", out_dir, "--json"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.stderr.write(run.stderr)
            return 1
        summary = json.loads(run.stdout)
        brink_logits = np.load(summary["outputs"][0]["file"])
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {sess.get_inputs()[0].name: images})[0]

    brink_pred, ort_pred = brink_logits.argmax(axis=1), ort_logits.argmax(axis=1)
    result = {
        "samples": int(len(labels)),
        "brink_top1": float((brink_pred == labels).mean()),
        "onnxruntime_top1": float((ort_pred == labels).mean()),
        "prediction_agreement": float((brink_pred == ort_pred).mean()),
        "max_abs_logit_diff": float(np.abs(brink_logits - ort_logits).max()),
        "brink_batch_latency_ms": summary["latency_ms"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"test samples:          {result['samples']}")
        print(f"top-1 accuracy, Brink: {100 * result['brink_top1']:.2f}%")
        print(f"top-1 accuracy, ORT:   {100 * result['onnxruntime_top1']:.2f}%")
        print(f"predictions agreeing:  {100 * result['prediction_agreement']:.2f}%  "
              f"(max |logit diff| {result['max_abs_logit_diff']:.2e})")
    return 0 if result["brink_top1"] == result["onnxruntime_top1"] else 1


if __name__ == "__main__":
    sys.exit(main())
