#!/usr/bin/env python3
"""Size of the device runtime: brink-run (tools/brink-run, linked on brink_package + brink_rt
only) next to the full toolchain CLI, stripped, with the shared libraries each needs.

    .venv/bin/python bench/runtime_size.py [--build-dir build] [--update-docs]   # docs/RUNTIME.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS_PATH = os.path.join(ROOT, "docs", "RUNTIME.md")
sys.path.insert(0, HERE)
import compare_ort  # noqa: E402  (git commit, machine facts)


def shared_libs(path: str) -> List[Dict[str, Any]]:
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and "(" in parts[1]:
            name = parts[0].strip()
            target = parts[1].split("(")[0].strip()
            if target and os.path.exists(target):
                libs.append({"name": name, "bytes": os.path.getsize(os.path.realpath(target))})
    return libs


def measure(path: str) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        stripped = os.path.join(d, "stripped")
        subprocess.run(["strip", "-o", stripped, path], check=True)
        size = subprocess.run(["size", stripped], capture_output=True, text=True).stdout.splitlines()[-1].split()
        return {"binary": os.path.basename(path), "bytes": os.path.getsize(path),
                "stripped_bytes": os.path.getsize(stripped), "text": int(size[0]), "data": int(size[1]) + int(size[2]),
                "libs": shared_libs(path)}


def table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| binary | stripped KiB | text KiB | data+bss KiB | shared libraries it needs (KiB) | protobuf / ONNX |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        libs = ", ".join(f"{l['name']} ({l['bytes'] / 1024:.0f})" for l in r["libs"]
                         if not l["name"].startswith(("linux-vdso", "ld-linux")))
        heavy = any(k in l["name"] for l in r["libs"] for k in ("protobuf", "onnx"))
        lines.append(f"| {r['binary']} | **{r['stripped_bytes'] / 1024:.0f}** | {r['text'] / 1024:.0f} "
                     f"| {r['data'] / 1024:.0f} | {libs} | {'yes' if heavy else 'no'} |")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name in ("brink-run", "brink"):
        path = os.path.join(args.build_dir, name)
        if not os.access(path, os.X_OK):
            print(f"error: {path} not found (build it: scripts/build.sh release)", file=sys.stderr)
            return 1
        rows.append(measure(path))
    md = table(rows)
    print(md)
    if args.update_docs:
        text = "\n".join(compare_ort.generated_doc_header(
            "The device runtime: size", "bench/runtime_size.py", "scripts/build.sh release",
            ".venv/bin/python bench/runtime_size.py --update-docs") + [
            f"- date: {datetime.date.today().isoformat()}; commit {compare_ort.git_commit() or 'unknown'}; "
            f"x86-64, GCC, Release (-O3), every CPU kernel (portable, AVX2, AVX-512) and every operator linked in",
            "",
            "`brink-run` (tools/brink-run) is what a device ships: it verifies, maps and runs `.brink` packages "
            "(`brink pack`), linked on `brink_package` (the reader, SHA-256 via libcrypto, Ed25519 and "
            "XChaCha20-Poly1305 via libsodium) and `brink_rt` (runtime, kernels, operators), without protobuf, "
            "ONNX or the CLI framework. `brink` is the full toolchain for comparison.", "",
            md, ""])
        with open(DOCS_PATH, "w") as f:
            f.write(text)
        print(f"wrote {DOCS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
