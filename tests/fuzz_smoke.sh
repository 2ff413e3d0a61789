#!/usr/bin/env bash
# A short run (3 s each) of every fuzz target (fuzz/run.sh) when clang and its libFuzzer runtime are installed;
# skipped (77) otherwise. Builds into <build dir>/fuzz, so build trees do not share a fuzzer binary.
set -euo pipefail
MAE=$1 SRC=$2
command -v clang++ >/dev/null || { echo "clang++ not installed: skipped"; exit 77; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cpp"
clang++ -fsanitize=fuzzer,address "$probe/p.cpp" -o "$probe/p" 2>/dev/null ||
  { echo "no libFuzzer runtime (apt-get install libclang-rt-14-dev): skipped"; exit 77; }
MAE_FUZZ_DIR="$(cd "$(dirname "$MAE")" && pwd)/fuzz" bash "$SRC/fuzz/run.sh" all "${MAE_FUZZ_SECONDS:-3}"
