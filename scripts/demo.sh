#!/usr/bin/env bash
# The main job on the embedded default model: install what is missing, build Release, then
# describe, run and benchmark the digits classifier (models/digits_cnn.onnx, trained by
# scripts/train_default_model.py on scikit-learn's digits) and report its test accuracy as
# computed by Brink, next to ONNX Runtime's on the same data; then quantize it to INT8
# (brink quantize) and print size, speed and accuracy before and after.
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
echo
echo "== brink quantize $MODEL --mode int8 (calibrated on 256 training images, never the test split)"
build/brink quantize "$MODEL" -o build/digits_cnn.int8.onnx --mode int8 --calib models/digits_calib.npz \
  --report build/digits_cnn.int8.report.json
echo
echo "== FP32 vs INT8: size, speed (brink bench) and accuracy on the test split (brink eval)"
.venv/bin/python scripts/compare_quantized.py --brink build/brink --fp32 "$MODEL" \
  --int8 build/digits_cnn.int8.onnx --data models/digits_test.npz
