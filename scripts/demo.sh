#!/usr/bin/env bash
# The main job on the embedded default model: install what is missing, build Release, then
# describe, run and benchmark the digits classifier (models/digits_cnn.onnx, trained by
# scripts/train_default_model.py on scikit-learn's digits) and report its test accuracy as
# computed by Brink, next to ONNX Runtime's on the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release brink_cli >/dev/null
MODEL=models/digits_cnn.onnx
echo "== brink info $MODEL"
build/brink info "$MODEL"
echo
echo "== accuracy on the held-out test split (Brink vs ONNX Runtime)"
.venv/bin/python scripts/evaluate_default_model.py --brink build/brink
echo
echo "== brink bench $MODEL"
build/brink bench "$MODEL" --seconds 1
