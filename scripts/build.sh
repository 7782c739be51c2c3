#!/usr/bin/env bash
# Configures (once) and builds one flavour of Brink into its own folder.
#   scripts/build.sh release   -> build/        (Release)
#   scripts/build.sh asan      -> build-asan/   (Debug + AddressSanitizer + UBSan, unit tests only)
#   scripts/build.sh fuzz      -> build-fuzz/   (clang, libFuzzer targets)
#   scripts/build.sh aarch64   -> build-aarch64/ (cross build, brink_rt + kernel tests, -O2;
#                                 see cmake/aarch64-linux-gnu.cmake)
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
  *) echo "error: unknown build flavour '$flavour' (expected release, asan, fuzz or aarch64)" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
fi
ninja -C "$dir" "$@"
