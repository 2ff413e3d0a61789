#!/usr/bin/env bash
# Installs what mae needs from Debian 12 packages (apt) — and with --test what the tests need too — then builds.
#   tools/setup.sh          build dependencies + Fashion-MNIST, then builds build/mae
#   tools/setup.sh --test   also GoogleTest, Google Benchmark (bench/gemm_shapes, which CI builds), python3-torch/numpy
#                           (the PyTorch parity reference), python3-protobuf (decodes TensorBoard event files),
#                           python3-onnx (the ONNX checker) and ONNX Runtime for node (npm onnxruntime-node into
#                           the git-ignored test-tools/, when node and npm are there; offline it is skipped and the
#                           ONNX Runtime test skips), chromium and npm puppeteer-core (the browser test of mae
#                           serve's page), builds tests
set -euo pipefail
cd "$(dirname "$0")/.."
test_deps=0
[ "${1:-}" = "--test" ] && test_deps=1

pkgs=(cmake ninja-build g++ pkg-config libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev
      libpng-dev libjpeg62-turbo-dev zlib1g-dev dataset-fashion-mnist
      libcpp-httplib-dev  # mae serve
      libopenmpi-dev openmpi-bin   # MPI: data-parallel training (the build works without it, single-process)
      libdnnl-dev)  # oneDNN: --precision bf16 on CPUs with avx512_bf16/AMX (optional: the build works without it)
[ $test_deps = 1 ] && pkgs+=(libgtest-dev libbenchmark-dev python3-torch python3-numpy python3-protobuf python3-onnx
                             python3-pil chromium)  # chromium: the page of mae serve in tests/serve_browser.sh

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ONNX Runtime for tests/onnx_export.sh: the npm package's install script only fetches optional GPU parts (it fails
# offline); the CPU runtime is inside the package, hence --ignore-scripts.
# puppeteer-core for tests/serve_browser.sh: it drives Debian's chromium and never downloads a browser.
for mod in onnxruntime-node puppeteer-core; do
  if [ $test_deps = 1 ] && [ ! -d test-tools/node_modules/$mod ]; then
    if command -v node >/dev/null && command -v npm >/dev/null; then
      timeout 300 npm install --prefix test-tools --ignore-scripts --no-audit --no-fund $mod >/dev/null 2>&1 ||
        echo "setup: npm install $mod failed (offline?): the test that needs it will skip"
    else
      echo "setup: node/npm not found: tests/onnx_export.sh and tests/serve_browser.sh will skip (apt-get install nodejs npm to run them)"
    fi
  fi
done

cmake -S . -B build -G Ninja -DMAE_TESTS=$([ $test_deps = 1 ] && echo ON || echo OFF) >/dev/null
ninja -C build
