#!/usr/bin/env bash
# Configures (once) and builds one flavour of Brink into its own folder.
#   scripts/build.sh release   -> build/        (Release)
#   scripts/build.sh asan      -> build-asan/   (Debug + AddressSanitizer + UBSan, unit tests only)
#   scripts/build.sh fuzz      -> build-fuzz/   (clang, libFuzzer targets)
#   scripts/build.sh aarch64   -> build-aarch64/ (cross build, brink_rt + kernel tests, -O2;
#                                 see cmake/aarch64-linux-gnu.cmake)
#   scripts/build.sh device    -> build-device/ (the device runtime alone: brink-run without
#                                 protobuf/ONNX or graph passes; docs/RUNTIME.md). Selective:
#     BRINK_OPS=ops.txt BRINK_ISAS="avx512;avx512vnni" scripts/build.sh device
#                                 -> build-device-ops-avx512-avx512vnni/ with only the operators
#                                 ops.txt lists (brink info MODEL.brink --ops) and those kernels
#                                 (no portable fallback unless BRINK_ISAS lists "portable")
#     BRINK_RUN_STREAMING=OFF scripts/build.sh device  -> build-device[-...]-nostream/ without
#                                 brink-run's streaming loader (--stream, tcp://)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-release}"
shift || true
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DBRINK_SANITIZE=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRINK_FUZZ=ON -DBRINK_TESTS=OFF
                             -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang) ;;
  # aarch64 cross build: -O2 keeps its compile (CI, 2 cores) to a few minutes.
  aarch64) dir=build-aarch64; args=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
                                   -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
                                   -DBRINK_RUNTIME_ONLY=ON) ;;
  device)
    dir=build-device; args=(-DCMAKE_BUILD_TYPE=Release -DBRINK_DEVICE_ONLY=ON -DBRINK_TESTS=OFF)
    if [ -n "${BRINK_OPS:-}" ]; then
      [ -f "$BRINK_OPS" ] || { echo "error: BRINK_OPS=$BRINK_OPS: no such file" >&2; exit 2; }
      dir="$dir-$(basename "${BRINK_OPS%.*}")"
      args+=("-DBRINK_SELECTED_OPS=$(realpath "$BRINK_OPS")")
    fi
    if [ -n "${BRINK_ISAS:-}" ]; then
      dir="$dir-$(echo "$BRINK_ISAS" | tr ';, ' '---')"
      args+=("-DBRINK_KERNEL_ISAS=$BRINK_ISAS")
    else
      args+=("-UBRINK_KERNEL_ISAS")  # every variant, whatever an earlier configure cached
    fi
    case "${BRINK_RUN_STREAMING:-ON}" in
      ON) args+=(-DBRINK_RUN_STREAMING=ON) ;;
      OFF) dir="$dir-nostream"; args+=(-DBRINK_RUN_STREAMING=OFF) ;;
      *) echo "error: BRINK_RUN_STREAMING=$BRINK_RUN_STREAMING (expected ON or OFF)" >&2; exit 2 ;;
    esac ;;
  *) echo "error: unknown build flavour '$flavour' (expected release, asan, fuzz, aarch64 or device)" >&2; exit 2 ;;
esac
# Device builds are configured every time: their operator list may be a new file.
if [ ! -f "$dir/build.ninja" ] || [ "$flavour" = device ]; then
  cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
fi
ninja -C "$dir" "$@"
