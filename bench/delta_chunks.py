#!/usr/bin/env python3
"""Which chunks of a .brink package change when only a model's last layer changes.

Takes an ONNX model, scales the last 2-D float weight (the classifier) by 1.01 as
bench/package_bench.py does, packs both versions with the same options, and lists every
chunk of the new package: its kind, size and whether the old package holds the same bytes
(same SHA-256 and size: `brink diff` copies those). It ends with the delta's size from
`brink diff --json`, the changed layer's own bytes (the floor of any chunk-level delta: its
bytes all change) and both as a share of the package.

    .venv/bin/python bench/delta_chunks.py tests/python/.generated/v1/mobilenet_v2/model.onnx
    BRINK_BIN=build/brink .venv/bin/python bench/delta_chunks.py MODEL.onnx --chunk-size 1MiB
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def brink_exe() -> str:
    exe = os.environ.get("BRINK_BIN")
    if exe:
        return exe
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "build", "brink")


def change_last_layer(onnx_path: str, out_path: str, scale: float = 1.01):
    """Scales the last 2-D float initializer read by a node; returns (node, weight, bytes)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    m = onnx.load(onnx_path)
    inits = {t.name: t for t in m.graph.initializer}
    for node in reversed(m.graph.node):
        for name in node.input:
            t = inits.get(name)
            if t is not None and len(t.dims) == 2 and t.data_type == onnx.TensorProto.FLOAT:
                a = numpy_helper.to_array(t)
                t.CopyFrom(numpy_helper.from_array(a * np.float32(scale), name))
                onnx.save(m, out_path)
                return node.name or node.op_type, name, int(a.nbytes)
    raise RuntimeError(f"{onnx_path}: no 2-D float weight to change")


def info(exe: str, path: str):
    return json.loads(subprocess.run([exe, "info", path, "--json"], check=True, capture_output=True,
                                     text=True).stdout)


def compare(exe: str, onnx_path: str, pack_args, work: str):
    tuned = os.path.join(work, "tuned.onnx")
    layer, weight, layer_bytes = change_last_layer(onnx_path, tuned)
    old, new, delta = (os.path.join(work, n) for n in ("old.brink", "new.brink", "update.delta"))
    subprocess.run([exe, "pack", onnx_path, "-o", old] + pack_args, check=True, capture_output=True)
    subprocess.run([exe, "pack", tuned, "-o", new] + pack_args, check=True, capture_output=True)
    a, b = info(exe, old), info(exe, new)
    old_chunks = {(c["sha256"], c["size"]) for c in a["chunks"]}
    rows = []
    for i, c in enumerate(b["chunks"]):
        same = (c["sha256"], c["size"]) in old_chunks
        at_index = a["chunks"][i] if i < len(a["chunks"]) else None
        rows.append({"index": i, "kind": c["kind"], "size": c["size"], "copied": same,
                     "old_size_at_index": at_index["size"] if at_index else None})
    d = json.loads(subprocess.run([exe, "diff", old, new, "-o", delta, "--json"], check=True,
                                  capture_output=True, text=True).stdout)
    return {"layer": layer, "weight": weight, "layer_bytes": layer_bytes, "chunks": rows,
            "package_bytes": d["new_bytes"], "delta_bytes": d["delta_bytes"],
            "changed_chunks": d["changed_chunks"], "total_chunks": d["total_chunks"]}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--chunk-size", help="passed to brink pack")
    ap.add_argument("--all", action="store_true", help="list unchanged chunks too")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    pack_args = ["--chunk-size", args.chunk_size] if args.chunk_size else []
    with tempfile.TemporaryDirectory() as work:
        r = compare(brink_exe(), args.model, pack_args, work)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"changed: {r['layer']} ({r['weight']}, {r['layer_bytes'] / 2**20:.2f} MiB)")
    for c in r["chunks"]:
        if args.all or not c["copied"]:
            state = "copied" if c["copied"] else "CHANGED"
            print(f"  chunk {c['index']:3d} {c['kind']:8s} {c['size']:>10d} B  {state}"
                  f"  (old chunk {c['index']} had {c['old_size_at_index']} B)")
    pkg = r["package_bytes"]
    print(f"{r['changed_chunks']} of {r['total_chunks']} chunks changed; delta {r['delta_bytes']} B = "
          f"{100.0 * r['delta_bytes'] / pkg:.2f}% of {pkg} B; the layer alone is "
          f"{100.0 * r['layer_bytes'] / pkg:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
