#!/usr/bin/env bash
# Configures (once) and builds one flavour of Brink into its own folder.
#   scripts/build.sh release   -> build/        (Release)
#   scripts/build.sh asan      -> build-asan/   (Debug + AddressSanitizer + UBSan, unit tests only)
#   scripts/build.sh fuzz      -> build-fuzz/   (clang, libFuzzer targets)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-release}"
shift || true
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DBRINK_SANITIZE=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRINK_FUZZ=ON -DBRINK_TESTS=OFF
                             -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang) ;;
  *) echo "error: unknown build flavour '$flavour' (expected release, asan or fuzz)" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
fi
ninja -C "$dir" "$@"
