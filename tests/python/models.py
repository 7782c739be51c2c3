#!/usr/bin/env python3
"""Models for the differential tests: exported from PyTorch at test time, cached on disk.

Every model is built with random weights from a fixed seed (no pretrained weights are
downloaded), put in eval mode and exported with torch.onnx.export at a fixed opset (13..17)
with batch 1 and static shapes. Next to each model the generator writes its inputs as .npy
files (fixed seeds) and PyTorch's outputs (for --self-check), so a test only has to run
ONNX Runtime and Brink.

The cache lives in tests/python/.generated/v<VERSION>/<name>/ (or $BRINK_TEST_MODELS_DIR);
bump VERSION whenever a model, its inputs or the export settings change. Stale versions
are deleted when a new one is generated.

    python tests/python/models.py --list
    python tests/python/models.py [NAME ...]            # generate (all when no name)
    python tests/python/models.py --self-check [NAME ...]  # generate, then compare ORT with PyTorch
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
import zlib
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

VERSION = "1"
HERE = os.path.dirname(os.path.abspath(__file__))
GEN_ROOT = os.environ.get("BRINK_TEST_MODELS_DIR", os.path.join(HERE, ".generated"))
GEN_DIR = os.path.join(GEN_ROOT, f"v{VERSION}")


# --------------------------------------------------------------------------------------------
# Specs


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    opset: int
    build: Callable[[], Tuple["object", Dict[str, np.ndarray]]]  # -> (torch module, inputs by name)
    output_names: Tuple[str, ...]
    slow: bool = False
    description: str = ""


@dataclasses.dataclass
class GeneratedModel:
    name: str
    directory: str
    opset: int
    input_names: List[str]
    output_names: List[str]
    export_seconds: float

    @property
    def path(self) -> str:
        return os.path.join(self.directory, "model.onnx")

    def input_path(self, name: str) -> str:
        return os.path.join(self.directory, "inputs", _file_name(name) + ".npy")

    def load_inputs(self) -> Dict[str, np.ndarray]:
        return {n: np.load(self.input_path(n)) for n in self.input_names}

    def torch_output_path(self, name: str) -> str:
        return os.path.join(self.directory, "torch_outputs", _file_name(name) + ".npy")


def _file_name(name: str) -> str:
    """The CLI's rule for output files: every character outside [A-Za-z0-9._-] becomes '_'."""
    s = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in name)
    return "output" if s in ("", ".", "..") else s


output_file_name = _file_name


def _seed_for(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(_seed_for(name) + 1)


# --------------------------------------------------------------------------------------------
# Model builders (torch is imported lazily: collecting the tests must not need it)


def _randomize_norms(model) -> None:
    """Non-trivial BatchNorm statistics and norm affine parameters (torch initialises them to
    the identity, which would hide mistakes in BN folding and LayerNorm)."""
    import torch
    import torch.nn as nn
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):  # ConvNeXt: 1e-6 at init would mute every block
                p.copy_(torch.rand(p.shape, generator=g) * 0.2 + 0.1)


def _torchvision(arch: str, size: int):
    def build():
        import torchvision
        model = getattr(torchvision.models, arch)(weights=None)
        _randomize_norms(model)
        x = _rng(arch).standard_normal((1, 3, size, size), dtype=np.float32)
        return model, {"input": x}
    return build


def _bert_like(layer_count=2, d=64, heads=4, seq=16, vocab=1000, ffn=128, classes=3):
    def build():
        import torch
        import torch.nn as nn

        class Layer(nn.Module):
            def __init__(self):
                super().__init__()
                self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
                self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
                self.ff1, self.ff2, self.act = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.GELU()

            def forward(self, x, keep):  # x [B,S,d]; keep bool [B,heads,S,S]
                b, s, _ = x.shape
                split = lambda t: t.view(b, s, heads, d // heads).transpose(1, 2)  # noqa: E731
                q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
                scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // heads)
                scores = torch.where(keep, scores, torch.tensor(-1e4))
                ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, d)
                x = self.ln1(x + self.o(ctx))
                return self.ln2(x + self.ff2(self.act(self.ff1(x))))

        class BertLike(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok = nn.Embedding(vocab, d)
                self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.1)
                self.ln = nn.LayerNorm(d, eps=1e-12)
                self.layers = nn.ModuleList(Layer() for _ in range(layer_count))
                self.pool = nn.Linear(d, d)
                self.cls = nn.Linear(d, classes)

            def forward(self, input_ids, attention_mask):
                b, s = input_ids.shape
                x = self.ln(self.tok(input_ids) + self.pos[:, :s])
                keep = attention_mask.to(torch.bool)[:, None, None, :].expand(b, heads, s, s)
                for layer in self.layers:
                    x = layer(x, keep)
                pooled = torch.tanh(self.pool(x[:, 0]))
                return x, self.cls(pooled)

        model = BertLike()
        _randomize_norms(model)
        rng = _rng(f"bert{layer_count}{d}{seq}")
        ids = rng.integers(0, vocab, size=(1, seq), dtype=np.int64)
        mask = np.ones((1, seq), dtype=np.int64)
        mask[:, seq - 5:] = 0  # padding at the end
        ids[mask == 0] = 0
        return model, {"input_ids": ids, "attention_mask": mask}
    return build


def _vit_tiny(image=32, patch=4, d=64, heads=4, layer_count=2, mlp=128, classes=10):
    def build():
        import torch
        import torch.nn as nn

        class ViT(nn.Module):
            def __init__(self):
                super().__init__()
                n = (image // patch) ** 2
                self.embed = nn.Conv2d(3, d, kernel_size=patch, stride=patch)
                self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.1)
                self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.1)
                # batch_first=False keeps nn.TransformerEncoderLayer off its fused fast path,
                # which torch.onnx cannot export.
                layer = nn.TransformerEncoderLayer(d, heads, mlp, dropout=0.0, activation="gelu", norm_first=True)
                self.encoder = nn.TransformerEncoder(layer, layer_count, enable_nested_tensor=False)
                self.norm = nn.LayerNorm(d)
                self.head = nn.Linear(d, classes)

            def forward(self, x):
                x = self.embed(x).flatten(2).transpose(1, 2)  # [B, n, d]
                x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
                x = self.encoder(x.transpose(0, 1)).transpose(0, 1)
                return self.head(self.norm(x[:, 0]))

        model = ViT()
        _randomize_norms(model)
        return model, {"image": _rng("vit").standard_normal((1, 3, image, image), dtype=np.float32)}
    return build


def _lstm():
    import torch.nn as nn

    class LSTMModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = nn.Linear(64, 8)

        def forward(self, x):
            y, (h, c) = self.lstm(x)
            return self.fc(y), h

    return LSTMModel(), {"sequence": _rng("lstm").standard_normal((1, 20, 16), dtype=np.float32)}


def _gru():
    import torch.nn as nn

    class GRUModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(16, 32, num_layers=2, batch_first=True)
            self.fc = nn.Linear(32, 5)
            self.bn = nn.BatchNorm1d(5)  # not after a Conv: stays a BatchNormalization node

        def forward(self, x, h0):
            y, h = self.gru(x, h0)
            return self.bn(self.fc(y[:, -1])), h

    rng = _rng("gru")
    model = GRUModel()
    _randomize_norms(model)
    return model, {"sequence": rng.standard_normal((1, 20, 16), dtype=np.float32),
                        "h0": (rng.standard_normal((2, 1, 32)) * 0.5).astype(np.float32)}


def _yolo_tiny(size=64, classes=4):
    def build():
        import torch
        import torch.nn as nn

        def cbs(cin, cout, k=3, s=1):
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())

        na, no = 3, 5 + classes

        class SPPF(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.cv1, self.cv2 = cbs(c, c // 2, 1), cbs(c * 2, c, 1)
                self.m = nn.MaxPool2d(5, 1, 2)

            def forward(self, x):
                x = self.cv1(x)
                y1 = self.m(x)
                y2 = self.m(y1)
                return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))

        class YoloTiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Sequential(cbs(3, 16, 3, 2), cbs(16, 32, 3, 2), cbs(32, 64, 3, 2))  # /8
                self.down = nn.Sequential(cbs(64, 128, 3, 2), SPPF(128))  # /16
                self.lateral = cbs(128, 64, 1)
                self.up = nn.Upsample(scale_factor=2, mode="nearest")
                self.fuse = cbs(128, 64, 3)
                self.head3 = nn.Conv2d(64, na * no, 1)
                self.head4 = nn.Conv2d(128, na * no, 1)
                self.strides = (8, 16)
                anchors = torch.tensor([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]]],
                                       dtype=torch.float32)
                self.register_buffer("anchor_grid", anchors.view(2, 1, na, 1, 1, 2))
                grids = []
                for s in self.strides:
                    n = size // s
                    yv, xv = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
                    grids.append(torch.stack((xv, yv), 2).view(1, 1, n, n, 2).float())
                self.register_buffer("grid3", grids[0])
                self.register_buffer("grid4", grids[1])

            def decode(self, p, level):
                b, _, h, w = p.shape
                y = p.view(b, na, no, h, w).permute(0, 1, 3, 4, 2).sigmoid()
                grid = self.grid3 if level == 0 else self.grid4
                if level == 0:  # Split
                    xy, wh, conf = y.split((2, 2, no - 4), dim=4)
                else:  # Slice
                    xy, wh, conf = y[..., 0:2], y[..., 2:4], y[..., 4:]
                xy = (xy * 2 - 0.5 + grid) * self.strides[level]
                wh = (wh * 2) ** 2 * self.anchor_grid[level]
                return torch.cat((xy, wh, conf), 4).reshape(b, -1, no)

            def forward(self, x):
                p3 = self.stem(x)
                p4 = self.down(p3)
                n3 = self.fuse(torch.cat([self.up(self.lateral(p4)), p3], 1))
                raw3, raw4 = self.head3(n3), self.head4(p4)
                return torch.cat([self.decode(raw3, 0), self.decode(raw4, 1)], 1), raw3

        model = YoloTiny()
        _randomize_norms(model)
        return model, {"images": _rng("yolo").random((1, 3, size, size), dtype=np.float32)}
    return build


SPECS: List[ModelSpec] = [
    ModelSpec("squeezenet1_1", 13, _torchvision("squeezenet1_1", 224), ("logits",)),
    ModelSpec("mobilenet_v2", 13, _torchvision("mobilenet_v2", 224), ("logits",)),
    ModelSpec("mobilenet_v3_small", 14, _torchvision("mobilenet_v3_small", 224), ("logits",)),
    ModelSpec("shufflenet_v2_x0_5", 16, _torchvision("shufflenet_v2_x0_5", 224), ("logits",)),
    ModelSpec("resnet18", 17, _torchvision("resnet18", 224), ("logits",)),
    # The slow ones run at a reduced resolution (they are fully convolutional up to a global
    # pool): same operators and weights, a fraction of the MACs for a reference runtime.
    ModelSpec("efficientnet_b0", 15, _torchvision("efficientnet_b0", 160), ("logits",), slow=True),
    ModelSpec("regnet_y_400mf", 16, _torchvision("regnet_y_400mf", 160), ("logits",), slow=True),
    ModelSpec("resnet50", 13, _torchvision("resnet50", 128), ("logits",), slow=True),
    ModelSpec("convnext_tiny", 17, _torchvision("convnext_tiny", 96), ("logits",), slow=True),
    ModelSpec("bert_tiny", 13, _bert_like(), ("last_hidden_state", "logits"),
              description="LayerNorm decomposed (opset 13)"),
    ModelSpec("bert_tiny_opset17", 17, _bert_like(), ("last_hidden_state", "logits"),
              description="LayerNormalization (opset 17)"),
    ModelSpec("vit_tiny", 14, _vit_tiny(), ("logits",)),
    ModelSpec("lstm_bidir", 14, _lstm, ("output", "h_n")),
    ModelSpec("gru", 13, _gru, ("logits", "h_n")),
    ModelSpec("yolo_tiny", 16, _yolo_tiny(), ("detections", "head/p3:raw")),
]
SPEC_BY_NAME: Dict[str, ModelSpec] = {s.name: s for s in SPECS}


# --------------------------------------------------------------------------------------------
# Generation and cache


@contextlib.contextmanager
def _lock(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_stale_versions() -> None:
    if not os.path.isdir(GEN_ROOT):
        return
    for entry in os.listdir(GEN_ROOT):
        full = os.path.join(GEN_ROOT, entry)
        if entry.startswith("v") and entry != f"v{VERSION}" and os.path.isdir(full):
            shutil.rmtree(full, ignore_errors=True)


def _read_meta(directory: str):
    try:
        with open(os.path.join(directory, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if meta.get("version") != VERSION or not os.path.isfile(os.path.join(directory, "model.onnx")):
        return None
    return meta


def _export(spec: ModelSpec, directory: str) -> dict:
    import onnx
    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(_seed_for(spec.name))
        model, inputs = spec.build()
        model.eval()
        names = list(inputs)
        args = tuple(torch.from_numpy(inputs[n]) for n in names)
        with torch.no_grad():
            outs = model(*args)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        assert len(outs) == len(spec.output_names), spec.name
        path = os.path.join(directory, "model.onnx")
        t0 = time.time()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, path, opset_version=spec.opset, input_names=names,
                              output_names=list(spec.output_names), do_constant_folding=True)
        seconds = time.time() - t0
    finally:
        torch.set_num_threads(old_threads)

    onnx.checker.check_model(path)
    m = onnx.load(path, load_external_data=False)
    os.makedirs(os.path.join(directory, "inputs"))
    os.makedirs(os.path.join(directory, "torch_outputs"))
    for n in names:
        np.save(os.path.join(directory, "inputs", _file_name(n) + ".npy"), inputs[n])
    for n, o in zip(spec.output_names, outs):
        np.save(os.path.join(directory, "torch_outputs", _file_name(n) + ".npy"), o.numpy())
    ops: Dict[str, int] = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"version": VERSION, "name": spec.name, "opset": spec.opset, "inputs": names,
            "outputs": list(spec.output_names), "export_seconds": round(seconds, 2),
            "torch": torch.__version__, "ops": dict(sorted(ops.items())),
            "bytes": os.path.getsize(path)}


def ensure(name: str) -> GeneratedModel:
    """The generated model `name`, exporting it first if it is not cached."""
    spec = SPEC_BY_NAME[name]
    directory = os.path.join(GEN_DIR, name)
    meta = _read_meta(directory)
    if meta is None:
        with _lock(os.path.join(GEN_ROOT, f".lock-{name}")):
            meta = _read_meta(directory)
            if meta is None:
                _remove_stale_versions()
                os.makedirs(GEN_DIR, exist_ok=True)
                tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=GEN_DIR)
                try:
                    meta = _export(spec, tmp)
                    with open(os.path.join(tmp, "meta.json"), "w") as f:
                        json.dump(meta, f, indent=1)
                    shutil.rmtree(directory, ignore_errors=True)
                    os.rename(tmp, directory)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    return GeneratedModel(name=name, directory=directory, opset=meta["opset"], input_names=meta["inputs"],
                          output_names=meta["outputs"], export_seconds=meta["export_seconds"])


# --------------------------------------------------------------------------------------------
# ONNX Runtime reference


def ort_session(path: str):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_run(path: str, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    sess = ort_session(path)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def _self_check(names: Sequence[str]) -> int:
    failures = 0
    for name in names:
        t0 = time.time()
        try:
            g = ensure(name)
        except Exception as e:  # noqa: BLE001
            print(f"{name:22s} EXPORT FAILED: {type(e).__name__}: {e}")
            failures += 1
            continue
        t_gen = time.time() - t0
        t0 = time.time()
        try:
            outs = ort_run(g.path, g.load_inputs())
        except Exception as e:  # noqa: BLE001
            print(f"{name:22s} ORT FAILED: {type(e).__name__}: {str(e).splitlines()[0]}")
            failures += 1
            continue
        t_ort = time.time() - t0
        worst = 0.0
        for o in g.output_names:
            ref = np.load(g.torch_output_path(o))
            scale = max(1.0, float(np.abs(ref).max()))
            worst = max(worst, float(np.abs(outs[o] - ref).max()) / scale)
        with open(os.path.join(g.directory, "meta.json")) as f:
            meta = json.load(f)
        ok = worst < 1e-3
        failures += not ok
        print(f"{name:22s} opset {g.opset}  {meta['bytes'] / 1e6:7.2f} MB  gen {t_gen:5.1f}s  ort {t_ort:5.2f}s  "
              f"max|ort-torch|/scale {worst:.1e}  {'ok' if ok else 'MISMATCH'}  "
              f"ops: {' '.join(sorted(meta['ops']))}")
    return 1 if failures else 0


def main(argv: Sequence[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="models (default: all)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--self-check", action="store_true", help="also run ONNX Runtime and compare with PyTorch")
    args = ap.parse_args(argv)
    if args.list:
        for s in SPECS:
            print(f"{s.name:22s} opset {s.opset}{'  (slow)' if s.slow else ''}  {s.description}")
        return 0
    names = args.names or [s.name for s in SPECS]
    unknown = [n for n in names if n not in SPEC_BY_NAME]
    if unknown:
        print(f"error: unknown model(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.self_check:
        return _self_check(names)
    for n in names:
        t0 = time.time()
        g = ensure(n)
        print(f"{n:22s} {time.time() - t0:6.1f}s  {g.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
