#!/usr/bin/env python3
"""Size of the device runtime: brink-run in each of its builds (the release build; the device
build with every operator and kernel; the device build for one target; selective builds for
one package), stripped, next to ONNX Runtime's CPU library and Brink's full toolchain.

    .venv/bin/python bench/runtime_size.py [--update-docs]   # writes docs/RUNTIME.md

It configures and builds the device variants itself (scripts/build.sh device, with BRINK_OPS /
BRINK_ISAS), packs the models (bench models, ONNX Runtime's int8 MobileNetV2), lists their
operators with `brink info MODEL.brink --ops`, and checks that each selective runtime runs its
package with the outputs of the full one before its size is reported.
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS_PATH = os.path.join(ROOT, "docs", "RUNTIME.md")
sys.path.insert(0, HERE)
import compare_ort  # noqa: E402  (git commit, machine facts, the model set)

X86_64_V4 = "avx512;avx512vnni"
TARGET_KIB = {"all": 1024, "mobilenet_v2": 300}


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


def measure(path: str, label: str, what: str) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        stripped = os.path.join(d, "stripped")
        subprocess.run(["strip", "-o", stripped, path], check=True)
        size = subprocess.run(["size", stripped], capture_output=True, text=True).stdout.splitlines()[-1].split()
        return {"binary": label, "what": what, "bytes": os.path.getsize(path),
                "stripped_bytes": os.path.getsize(stripped), "text": int(size[0]), "data": int(size[1]) + int(size[2]),
                "libs": shared_libs(path)}


def build_device(ops: Optional[str], isas: Optional[str], jobs: int, streaming: bool = True) -> str:
    """scripts/build.sh device with BRINK_OPS / BRINK_ISAS (and BRINK_RUN_STREAMING=OFF without
    `streaming`); returns brink-run's path."""
    env = dict(os.environ)
    env.pop("BRINK_OPS", None)
    env.pop("BRINK_ISAS", None)
    env["BRINK_RUN_STREAMING"] = "ON" if streaming else "OFF"
    d = "build-device"
    if ops:
        env["BRINK_OPS"] = ops
        d += "-" + os.path.splitext(os.path.basename(ops))[0]
    if isas:
        env["BRINK_ISAS"] = isas
        d += "-" + isas.replace(";", "-").replace(",", "-").replace(" ", "-")
    if not streaming:
        d += "-nostream"
    print(f"[runtime_size] building {d}", file=sys.stderr)
    subprocess.run([os.path.join(ROOT, "scripts", "build.sh"), "device", f"-j{jobs}", "brink_run"], cwd=ROOT,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, d, "brink-run")


def where_bytes(path: str) -> List[Dict[str, Any]]:
    """brink-run's symbols (nm -S), grouped by the part of Brink they belong to."""
    out = subprocess.run(["nm", "-S", "-C", "--size-sort", path], capture_output=True, text=True,
                         check=True).stdout
    groups = [("kernels, portable variants", ("::portable::", "_portable")),
              ("kernels, AVX-512 / AVX2 / NEON variants (src/kernels/*_<isa>.cc, -O3)",
               ("::avx512::", "::avx2::", "::neon::", "_avx512", "_avx2", "_neon",
                "conv_internal::(anonymous namespace)::igemm<")),
              ("package reader (src/package: verify, decrypt, stream, map)", ("brink::package::", "brink::fb::",
                                                                             "flatbuffers::")),
              ("runtime (CompiledModel: shape inference, memory plan, executor)", ("CompiledModel",)),
              ("kernels, shared code (planning, packing, drivers)", ("brink::kernels::",)),
              ("operators (src/ops: registration, shape inference, reference kernels)", ("brink::ops::",)),
              ("graph IR and the rest of brink (src/ir, src/core, npy, brink-run's main)", ("brink::", "main")),
              ("C++ standard library instances and other", ("",))]
    sizes = {name: 0 for name, _ in groups}
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4 or parts[2] not in "tTwWrRdDbBvVuU":
            continue
        for name, keys in groups:
            if any(k in parts[3] for k in keys):
                sizes[name] += int(parts[1], 16)
                break
    return [{"part": name, "bytes": sizes[name]} for name, _ in groups]


def median_latency_ms(runners: Dict[str, str], pkg: str, trials: int = 5, repeat: int = 50) -> Dict[str, float]:
    """Each runner's steady-state latency on `pkg` (1 thread): brink-run's median of `repeat`
    runs, its median over `trials` processes, the runners interleaved."""
    import re
    import statistics
    seen: Dict[str, List[float]] = {name: [] for name in runners}
    for _ in range(trials):
        for name, runner in runners.items():
            out = subprocess.run([runner, pkg, "--threads", "1", "--repeat", str(repeat)], check=True,
                                 capture_output=True, text=True).stdout
            m = re.search(r"median of \d+ more ([0-9.]+) ms", out)
            if not m:
                raise RuntimeError(f"{runner}: no latency in its output: {out!r}")
            seen[name].append(float(m.group(1)))
    return {name: statistics.median(v) for name, v in seen.items()}


def run_outputs(runner: str, pkg: str, out_dir: str) -> Dict[str, bytes]:
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([runner, pkg, "--output-dir", out_dir, "--repeat", "1"], check=True, capture_output=True)
    return {f: open(os.path.join(out_dir, f), "rb").read() for f in sorted(os.listdir(out_dir))}


def ort_library() -> Optional[Dict[str, Any]]:
    try:
        import onnxruntime
    except ImportError:
        return None
    capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
    libs = sorted(f for f in os.listdir(capi) if f.startswith("libonnxruntime.so"))
    if not libs:
        return None
    row = measure(os.path.join(capi, libs[0]), f"ONNX Runtime {onnxruntime.__version__} libonnxruntime.so",
                  "the anchor: ORT's CPU library from its PyPI wheel (every operator and kernel; "
                  "the C API, without the Python binding)")
    return row


def table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| binary | what it holds | stripped KiB | text KiB | data+bss KiB | target KiB | / ORT | "
             "shared libraries it needs (KiB) | protobuf / ONNX |",
             "|---|---|---|---|---|---|---|---|---|"]
    ort = next((r for r in rows if r["binary"].startswith("ONNX Runtime")), None)
    for r in rows:
        libs = ", ".join(f"{lib['name']} ({lib['bytes'] / 1024:.0f})" for lib in r["libs"]
                         if not lib["name"].startswith(("linux-vdso", "ld-linux")))
        heavy = any(k in lib["name"] for lib in r["libs"] for k in ("protobuf", "onnx"))
        target = r.get("target_kib")
        target_s = "" if target is None else (f"<= {target} ({'met' if r['stripped_bytes'] <= target * 1024 else 'missed'})")
        ratio = f"{r['stripped_bytes'] / ort['stripped_bytes']:.3f}" if ort else ""
        lines.append(f"| {r['binary']} | {r['what']} | **{r['stripped_bytes'] / 1024:.0f}** | {r['text'] / 1024:.0f} "
                     f"| {r['data'] / 1024:.0f} | {target_s} | {ratio} | {libs} | {'yes' if heavy else 'no'} |")
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"), help="the release build (brink, brink-run)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args(argv)
    brink = os.path.join(args.build_dir, "brink")
    release_run = os.path.join(args.build_dir, "brink-run")
    for path in (brink, release_run):
        if not os.access(path, os.X_OK):
            print(f"error: {path} not found (build it: scripts/build.sh release)", file=sys.stderr)
            return 1
    work = os.path.join(ROOT, "build-selective")
    os.makedirs(work, exist_ok=True)

    # The packages the selective builds are for, and their operator lists.
    models = compare_ort.load_bench_models()
    mnv2 = models.ensure("mobilenet_v2").path
    packages = {"mobilenet_v2": mnv2}
    int8 = os.path.join(os.path.dirname(mnv2), "model.int8.qdq.onnx")
    if not os.path.isfile(int8):  # ONNX Runtime's quantize_static, as bench/quant_bench.py makes it
        import quant_bench
        int8 = quant_bench.int8_model("mobilenet_v2", mnv2, models.ensure("mobilenet_v2").load_inputs())
    packages["mobilenet_v2_int8"] = int8
    packages["digits_cnn"] = os.path.join(ROOT, "models", "digits_cnn.onnx")
    ops_files = {}
    for name, onnx_path in packages.items():
        pkg = os.path.join(work, f"{name}.brink")
        subprocess.run([brink, "pack", onnx_path, "-o", pkg, "--target", "x86-64-v4"], check=True,
                       capture_output=True)
        ops = subprocess.run([brink, "info", pkg, "--ops"], check=True, capture_output=True, text=True).stdout
        ops_files[name] = os.path.join(work, f"{name}.ops")
        with open(ops_files[name], "w") as f:
            f.write(ops)

    rows = []
    ort = ort_library()
    if ort:
        rows.append(ort)
    rows.append(measure(brink, "brink", "the toolchain CLI (ONNX import, passes, quantizer, packer), for comparison"))
    rows.append(measure(release_run, "brink-run (release build)",
                        "every operator, every kernel variant, -O3 throughout"))
    full_device = build_device(None, None, args.jobs)
    rows.append(measure(full_device, "brink-run (device build)",
                        "every operator and every x86-64 kernel (portable, AVX2, AVX-512, VNNI); -Os outside the "
                        "ISA kernel files, no graph passes"))
    rows[-1]["target_kib"] = TARGET_KIB["all"]
    one_target = build_device(None, X86_64_V4, args.jobs)
    rows.append(measure(one_target, "brink-run (device build, x86-64-v4)",
                        "every operator; the AVX-512 (+VNNI) kernels, no portable fallback; outputs checked "
                        "equal to the full runtime's"))
    breakdown = []
    latency: Dict[str, float] = {}
    for name in packages:
        runner = build_device(ops_files[name], X86_64_V4, args.jobs)
        # MobileNetV2's also without the streaming loader: a device that loads its package from a file.
        file_only = build_device(ops_files[name], X86_64_V4, args.jobs, streaming=False) \
            if name == "mobilenet_v2" else None
        pkg = os.path.join(work, f"{name}.brink")
        with tempfile.TemporaryDirectory() as d:
            full = run_outputs(full_device, pkg, os.path.join(d, "full"))
            others = [("selective", runner), ("x86-64-v4", one_target)]
            if file_only:
                others.append(("selective without streaming", file_only))
            for label, other in others:
                if run_outputs(other, pkg, os.path.join(d, label.replace(" ", "_"))) != full:
                    print(f"error: the {label} runtime does not give the full runtime's outputs for {name}",
                          file=sys.stderr)
                    return 1
        n_ops = sum(1 for line in open(ops_files[name]) if line.strip() and not line.startswith("#"))
        holds = (f"the {n_ops} lines of its package's list (operators, fused activations, depthwise rows); "
                 "AVX-512 (+VNNI) kernels; outputs checked equal to the full runtime's")
        rows.append(measure(runner, f"brink-run (selective: {name}, x86-64-v4)", holds))
        if file_only:
            rows.append(measure(file_only, f"brink-run (selective: {name}, x86-64-v4, no streaming)",
                                holds + "; built with -DBRINK_RUN_STREAMING=OFF: loads packages from files "
                                "(mapped, verified, paged), not progressively from a stream or socket"))
            rows[-1]["target_kib"] = TARGET_KIB["mobilenet_v2"]
            breakdown = where_bytes(file_only)
            latency = median_latency_ms({"release": release_run, "device": full_device, "selective": file_only},
                                        pkg)
    md = table(rows)
    total = sum(b["bytes"] for b in breakdown) or 1
    parts_md = "\n".join(["| part | KiB | share |", "|---|---|---|"] + [
        f"| {b['part']} | {b['bytes'] / 1024:.0f} | {b['bytes'] / total:.0%} |" for b in breakdown])
    lat_md = "\n".join(["| brink-run build | MobileNetV2 p50 ms (1 thread) | / release |", "|---|---|---|"] + [
        f"| {name} | {ms:.2f} | {ms / latency['release']:.2f} |" for name, ms in latency.items()])
    print(md)
    print(parts_md)
    print(lat_md)
    if args.update_docs:
        commit = compare_ort.git_commit() or "unknown"
        text = "\n".join(compare_ort.generated_doc_header(
            "The device runtime: size", "bench/runtime_size.py", "scripts/setup.sh && scripts/build.sh release",
            ".venv/bin/python bench/runtime_size.py --update-docs") + [
            f"- date: {datetime.date.today().isoformat()}; commit {commit}; x86-64, GCC, "
            f"{compare_ort.machine_description()['cpu']}",
            "",
            "`brink-run` (tools/brink-run) is what a device ships: it verifies, maps and runs `.brink` packages "
            "(`brink pack`), linked on `brink_package` (the reader, SHA-256 via libcrypto, Ed25519 and "
            "XChaCha20-Poly1305 via libsodium) and `brink_rt` (runtime, kernels, operators), without protobuf, "
            "ONNX or the CLI framework.",
            "",
            "Builds (CMakeLists.txt, scripts/build.sh):",
            "",
            "- **release**: `scripts/build.sh release`, what the tests run; -O3 throughout.",
            "- **device**: `scripts/build.sh device` (`-DBRINK_DEVICE_ONLY=ON`): brink_rt without the graph passes "
            "(a package holds the optimized graph), the package reader and brink-run; everything but the ISA "
            "kernel files (src/kernels/*_avx2.cc, *_avx512.cc, *_neon.cc: -O3) compiled with -Os; no exceptions, "
            "RTTI or unwind tables (the runtime reports errors as Status values; out of memory ends the process "
            "with one line); every function in its own section, unreferenced ones dropped at link "
            "(`--gc-sections`) and identical ones folded (LLVM's lld, `--icf=all`).",
            "- **one target**: `BRINK_ISAS=\"avx512;avx512vnni\" scripts/build.sh device` "
            "(`-DBRINK_KERNEL_ISAS`): only those kernel variants, without the portable fallback unless the list "
            "says `portable`; `isa_supported()` says no for the others, and a package or CPU those variants cannot "
            "serve is refused in one line.",
            "- **selective**: `BRINK_OPS=ops.txt scripts/build.sh device` (`-DBRINK_SELECTED_OPS`), where ops.txt is "
            "what `brink info MODEL.brink --ops` prints: every operator registration is guarded by "
            "`if constexpr (op_selected(domain, type))` (src/ops/op_selection.h), so the kernels of operators left "
            "out are never referenced and never linked. The list also names the fused activations "
            "(`brink.activation:Clip`), the float depthwise rows (`brink.depthwise:k3s2`; `partial` for channel "
            "counts that leave a partial vector block) and whether brink:Conv needs its reference fallback "
            "(`brink.conv:reference`): the kernels keep only those specializations, and the fast unary functions "
            "only those its operators and activations need; a package needing one the build left out is refused "
            "at load, naming the line to add. `brink-run --ops` prints what a build holds. "
            "tests/python/test_selective_runtime.py (run by scripts/test.sh) builds one for the default model and "
            "checks it registers exactly its list, gives the full runtime's outputs bit for bit and refuses a "
            "package needing an operator it left out (and, built without portable kernels, a portable package).",
            "- **without streaming**: `BRINK_RUN_STREAMING=OFF scripts/build.sh device` (`-DBRINK_RUN_STREAMING=OFF`): "
            "brink-run without the progressive loader (`--stream`, `tcp://`), which it then refuses in one line; "
            "packages load from files as before (mapped, verified chunk by chunk, weights paged with "
            "`--max-memory`).",
            "",
            md,
            "",
            "Where the bytes of the selective MobileNetV2 runtime without streaming go (`nm -S -C --size-sort`, symbols grouped "
            "by the part of Brink they belong to; sections without symbols, such as the dynamic-linking tables "
            "and read-only data, are not counted):",
            "",
            parts_md,
            "",
            "What the size costs in speed: the MobileNetV2 package's steady-state latency under each build "
            "(brink-run's median of 50 runs, the median over 5 processes, the builds interleaved; 1 thread). "
            "The device builds compile the ISA kernel files with -O3 like the release build and the rest with -Os:",
            "",
            lat_md,
            ""])
        with open(DOCS_PATH, "w") as f:
            f.write(text)
        print(f"wrote {DOCS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
