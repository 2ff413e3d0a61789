#!/usr/bin/env bash
# Runs every test (unit, finite differences, PyTorch parity, CLI errors). Assumes tools/setup.sh --test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DMAE_TESTS=ON >/dev/null
ninja -C build
ctest --test-dir build --output-on-failure -j2 --timeout 600
