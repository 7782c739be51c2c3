#!/usr/bin/env python3
"""Trains the accuracy-test CNN for INT8 quantization: a small residual CNN on real data.

The data is scikit-learn's bundled handwritten digits (`sklearn.datasets.load_digits`: 1797
real 8x8 grey images, 10 classes; it ships inside the package, nothing is downloaded). The
model is kept 8x8 (no upsampling) and is made of what INT8 has to handle in real CNNs:

    stem   Conv3x3(1->16) + BN + ReLU                          8x8
    block  Conv3x3(16->16)+BN+ReLU, Conv3x3(16->16)+BN, Add(skip), ReLU
    down   Conv3x3(16->32, stride 2) + BN + ReLU               4x4
    block  Conv3x3(32->32)+BN+ReLU, Conv3x3(32->32)+BN, Add(skip), ReLU
    head   GlobalAveragePool, Flatten, Linear(32->10)

Split (fixed, deterministic): sklearn's train_test_split(test_size=0.25, random_state=0,
stratified) gives 1347 training and 450 test images; the calibration set is 200 images of
the training split (a fixed permutation of it, seed 0), never test images.

--arch depthwise trains a depthwise-separable variant instead (MobileNet-style blocks, for
the cross-layer equalization and bias correction tests; default OUT_DIR
tests/python/.generated/real/digits_dwcnn):

    stem   Conv3x3(1->16) + BN + ReLU                                      8x8
    sep    DW3x3(16) + BN + ReLU, PW1x1(16->32) + BN + ReLU                8x8
    sep    DW3x3(32, stride 2) + BN + ReLU, PW1x1(32->64) + BN + ReLU      4x4
    block  DW3x3(64) + BN + ReLU, PW1x1(64->64) + BN, Add(skip), ReLU
    head   GlobalAveragePool, Flatten, Linear(64->10)

Folding each BatchNorm into its depthwise conv is what gives the depthwise weights per-channel
ranges far apart (the reason per-tensor int8 hurts MobileNets).

Writes into OUT_DIR (default tests/python/.generated/real/digits_cnn):
  model.onnx        opset 17; input "image" float32 [batch,1,8,8] (pixels in [0,1]), output
                    "logits" float32 [batch,10]. "batch" is symbolic so ONNX Runtime's
                    calibration and evaluation can run whole arrays at once; Brink runs
                    sample by sample with batch 1 (brink eval / brink quantize split [N,...]
                    arrays into N samples).
  calib.npz         {"image": float32 [200,1,8,8]} from the training split
  test.npz          {"image": float32 [450,1,8,8]} the held-out test split
  test_labels.npy   int64 [450]
  meta.json         version, split sizes, FP32 test top-1 (PyTorch and ONNX Runtime), seconds

Idempotent: when OUT_DIR/meta.json has this script's VERSION, nothing is retrained (pass
--force to retrain). Training is deterministic (fixed seeds, one torch thread) and takes a few
seconds on one core.

    python scripts/models/train_digits_cnn.py [OUT_DIR] [--force] [--arch residual|depthwise]
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

VERSION = "1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(ROOT, "tests", "python", ".generated", "real", "digits_cnn")
DEFAULT_OUT_DEPTHWISE = os.path.join(ROOT, "tests", "python", ".generated", "real", "digits_dwcnn")
ARCHS = ("residual", "depthwise")
SEED = 0
TEST_FRACTION = 0.25
CALIB_SAMPLES = 200
EPOCHS = 30
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
OPSET = 17


def build_model():
    import torch
    import torch.nn as nn

    def cbr(cin, cout, stride=1, relu=True):
        layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = cbr(c, c)
            self.b = cbr(c, c, relu=False)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(x + self.b(self.a(x)))

    class DigitsResCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(cbr(1, 16), Residual(16), cbr(16, 32, stride=2), Residual(32))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(32, 10)

        def forward(self, x):
            x = self.pool(self.features(x))
            return self.classifier(torch.flatten(x, 1))

    return DigitsResCNN()


def build_depthwise_model():
    import torch
    import torch.nn as nn

    def cbr(cin, cout, k=3, stride=1, groups=1, relu=True):
        layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def separable(cin, cout, stride=1, relu=True):
        return nn.Sequential(cbr(cin, cin, stride=stride, groups=cin), cbr(cin, cout, k=1, relu=relu))

    class ResidualSeparable(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = separable(c, c, relu=False)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(x + self.body(x))

    class DigitsDepthwiseCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(cbr(1, 16), separable(16, 32), separable(32, 64, stride=2),
                                          ResidualSeparable(64))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(64, 10)

        def forward(self, x):
            x = self.pool(self.features(x))
            return self.classifier(torch.flatten(x, 1))

    return DigitsDepthwiseCNN()


def load_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # raw pixels are 0..16
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SEED, stratify=labels)
    calib_idx = np.random.default_rng(SEED).permutation(len(x_train))[:CALIB_SAMPLES]
    x_calib = x_train[np.sort(calib_idx)]
    return (np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_calib),
            np.ascontiguousarray(x_test), y_test)


def train(x_train, y_train, arch="residual"):
    import torch
    import torch.nn as nn
    torch.manual_seed(SEED)
    model = build_model() if arch == "residual" else build_depthwise_model()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH_SIZE):
            idx = perm[i:i + BATCH_SIZE]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def export(model, path: str) -> None:
    import onnx
    import torch
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 1, 8, 8), path, opset_version=OPSET, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                          do_constant_folding=True)
    m = onnx.load(path)
    m.producer_name = "brink/scripts/models/train_digits_cnn.py"
    m.doc_string = "residual CNN trained on scikit-learn digits (8x8, 10 classes), for INT8 accuracy tests"
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def ort_top1(path: str, images: np.ndarray, labels: np.ndarray) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"image": images})[0]
    return float((logits.argmax(axis=1) == labels).mean())


def read_meta(out_dir: str, arch: str = "residual"):
    try:
        with open(os.path.join(out_dir, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    needed = ("model.onnx", "calib.npz", "test.npz", "test_labels.npy")
    if meta.get("version") != VERSION or meta.get("arch", "residual") != arch:
        return None
    if not all(os.path.isfile(os.path.join(out_dir, n)) for n in needed):
        return None
    return meta


def generate(out_dir: str, arch: str = "residual") -> dict:
    """Trains and exports into a fresh directory `out_dir`; returns the metadata."""
    import torch
    t0 = time.time()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x_train, y_train, x_calib, x_test, y_test = load_split()
        model = train(x_train, y_train, arch)
        with torch.no_grad():
            torch_top1 = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
        train_seconds = time.time() - t0
        export(model, os.path.join(out_dir, "model.onnx"))
    finally:
        torch.set_num_threads(old_threads)
    np.savez(os.path.join(out_dir, "calib.npz"), image=x_calib)
    np.savez(os.path.join(out_dir, "test.npz"), image=x_test)
    np.save(os.path.join(out_dir, "test_labels.npy"), y_test)
    ort_acc = ort_top1(os.path.join(out_dir, "model.onnx"), x_test, y_test)
    meta = {"version": VERSION, "train": int(len(y_train)), "calib": int(len(x_calib)), "test": int(len(y_test)),
            "torch_top1": round(100 * torch_top1, 3), "fp32_top1": round(100 * ort_acc, 3),
            "train_seconds": round(train_seconds, 2), "seconds": round(time.time() - t0, 2),
            "torch": torch.__version__}
    if arch != "residual":
        meta["arch"] = arch
    return meta


def ensure(out_dir: str = DEFAULT_OUT, force: bool = False, arch: str = "residual") -> dict:
    """The trained model's metadata, training it first unless OUT_DIR already holds this
    VERSION. Safe to call from several processes at once (a lock file next to OUT_DIR)."""
    out_dir = os.path.abspath(out_dir)
    meta = None if force else read_meta(out_dir, arch)
    if meta is not None:
        return meta
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, f".lock-{os.path.basename(out_dir)}"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta = None if force else read_meta(out_dir, arch)
        if meta is None:
            tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(out_dir)}-", dir=parent)
            try:
                meta = generate(tmp, arch)
                with open(os.path.join(tmp, "meta.json"), "w") as f:
                    json.dump(meta, f, indent=1)
                shutil.rmtree(out_dir, ignore_errors=True)
                os.rename(tmp, out_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", default=None)
    ap.add_argument("--force", action="store_true", help="retrain even when OUT_DIR is up to date")
    ap.add_argument("--arch", choices=ARCHS, default="residual",
                    help="residual (default) or depthwise (depthwise-separable blocks)")
    args = ap.parse_args()
    if args.out_dir is None:
        args.out_dir = DEFAULT_OUT if args.arch == "residual" else DEFAULT_OUT_DEPTHWISE
    t0 = time.time()
    meta = ensure(args.out_dir, args.force, args.arch)
    print(f"{os.path.abspath(args.out_dir)}: train {meta['train']} / calib {meta['calib']} / test {meta['test']}; "
          f"FP32 test top-1: torch {meta['torch_top1']:.2f}%, onnxruntime {meta['fp32_top1']:.2f}% "
          f"(generated in {meta['seconds']:.1f} s; this call {time.time() - t0:.1f} s)")
    if meta["fp32_top1"] < 95.0:
        print("error: FP32 test top-1 below 95%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
