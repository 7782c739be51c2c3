#!/usr/bin/env bash
# Every test, as CI runs it: install, build, then
#   1. unit tests (GoogleTest) and the ONNX backend node tests, via ctest, Release build;
#      then the kernel tests cross-built for aarch64 under qemu-user;
#   2. the Python suites: differential tests against ONNX Runtime, the default model, bad input;
#   3. unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. each libFuzzer target for a bounded time (BRINK_FUZZ_SECONDS, default 60);
#   5. clang-format check of the sources.
# Set BRINK_TEST_QUICK=1 to skip 3 and 4 while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== build (Release)"
scripts/build.sh release -j"$jobs"

echo "== unit and ONNX node tests"
mkdir -p build/reports
ctest --test-dir build --output-on-failure -j"$jobs"

# The kernel tests (tests/kernels) cross-compiled for aarch64 and run under qemu-user:
# how the NEON kernels are checked without ARM hardware (cmake/aarch64-linux-gnu.cmake).
echo "== aarch64 kernel tests (cross build, qemu-user)"
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  scripts/build.sh aarch64 -j"$jobs" brink_kernel_tests
  qemu-aarch64 -L /usr/aarch64-linux-gnu build-aarch64/brink_kernel_tests --gtest_brief=1
else
  echo "skipped: aarch64-linux-gnu-g++ or qemu-aarch64 is missing (scripts/setup.sh installs them)"
fi

# `pip install .` into .venv, as a user would (build-pip/ keeps it incremental);
# the module tests (tests/python/test_module.py) then fail instead of skip without it.
echo "== Python module (pip install .)"
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
  --config-settings=build-dir=build-pip --config-settings=cmake.define.BRINK_WERROR=ON ./

# A selective device runtime (docs/RUNTIME.md): the default model's operators and this CPU's
# kernel variants only; tests/python/test_selective_runtime.py checks it against the full one.
echo "== selective device runtime (default model)"
mkdir -p build-selective
build/brink pack models/digits_cnn.onnx -o build-selective/digits_cnn.brink >/dev/null
build/brink info build-selective/digits_cnn.brink --ops >build-selective/digits_cnn.ops
# Plus the general depthwise row, so that the tests can run depthwise layers whose fast rows
# this build left out (and see one that needs the partial-block row refused).
echo "brink.depthwise:general" >>build-selective/digits_cnn.ops
isas=avx2
grep -qw avx512f /proc/cpuinfo && isas="avx512"
grep -qw avx512_vnni /proc/cpuinfo && isas="avx512;avx512vnni"
[ "$(uname -m)" = aarch64 ] && isas=neon
# Without the streaming loader too (-DBRINK_RUN_STREAMING=OFF), which it must then refuse.
BRINK_OPS=build-selective/digits_cnn.ops BRINK_ISAS="$isas" BRINK_RUN_STREAMING=OFF \
  scripts/build.sh device -j"$jobs" brink_run
selective_run="build-device-digits_cnn-$(echo "$isas" | tr ';, ' '---')-nostream/brink-run"

echo "== Python tests"
BRINK_SELECTIVE_RUN="$PWD/$selective_run" BRINK_SELECTIVE_PACKAGE="$PWD/build-selective/digits_cnn.brink" \
  BRINK_SELECTIVE_OPS="$PWD/build-selective/digits_cnn.ops" \
  BRINK_REQUIRE_PYTHON_MODULE=1 BRINK_BIN="$PWD/build/brink" .venv/bin/python -m pytest -q tests/python

if [ "${BRINK_TEST_QUICK:-0}" != 1 ]; then
  echo "== unit tests under ASan/UBSan"
  scripts/build.sh asan -j"$jobs" brink_unit_tests brink_kernel_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build-asan/brink_unit_tests --gtest_brief=1
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build-asan/brink_kernel_tests --gtest_brief=1

  echo "== fuzzing"
  fuzz_targets=(fuzz_onnx_loader fuzz_npy_loader fuzz_package_loader fuzz_image_loader)
  scripts/build.sh fuzz -j"$jobs" "${fuzz_targets[@]}"
  for name in "${fuzz_targets[@]}"; do
    target="build-fuzz/$name"
    corpus="tests/fuzz/corpus_${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    "$target" "$work" -max_total_time="${BRINK_FUZZ_SECONDS:-60}" -rss_limit_mb=2048 -print_final_stats=0 \
      -timeout=10 2>build-fuzz/"$name".log || { tail -40 build-fuzz/"$name".log; echo "error: $name found a crash"; exit 1; }
    rm -rf "$work"
    echo "$name: $(grep -c '' build-fuzz/"$name".log) log lines, no crash"
  done
fi

echo "== format"
scripts/check_format.sh
echo "all tests passed"
