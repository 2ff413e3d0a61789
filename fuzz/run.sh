#!/usr/bin/env bash
# Builds fuzz/fuzz_readers.cpp with clang (libFuzzer + AddressSanitizer + UBSan) into build-fuzz/ and runs it for
# N seconds (default 60) on a corpus seeded from fuzz/seeds/ and the small files of tests/fixtures/.
#   fuzz/run.sh [seconds] [extra libFuzzer flags...]
# Crashes are written to build-fuzz/crashes/ (reproduce: build-fuzz/fuzz_readers build-fuzz/crashes/<file>).
# Exit status: 0 when no crash was found, 1 otherwise (2: cannot build).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
shift || true
OUT=${MAE_FUZZ_DIR:-$SRC/build-fuzz}
CXX=${CXX_FUZZ:-clang++}
mkdir -p "$OUT/corpus" "$OUT/crashes"

SOURCES=(fuzz/fuzz_readers.cpp src/io/file_bytes.cpp src/io/safetensors.cpp src/io/atomic_file.cpp src/io/zip_reader.cpp src/io/pickle.cpp
         src/io/pth.cpp src/data/decode.cpp src/data/replace_file.cpp src/data/tar.cpp src/data/shard_index.cpp)
BIN="$OUT/fuzz_readers"
cd "$SRC"
stale=0
[ -x "$BIN" ] || stale=1
for s in "${SOURCES[@]}" src/io/*.h src/data/*.h src/core/*.h; do
  if [ "$s" -nt "$BIN" ]; then stale=1; fi
done
if [ $stale = 1 ]; then
  echo "building $BIN"
  # clang does not define __SANITIZE_ADDRESS__ (GCC does); the readers use it to read files into exact-size heap
  # buffers instead of mmap, so that ASan sees reads past the end.
  ("$CXX" -std=c++20 -g -O1 -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D__SANITIZE_ADDRESS__=1 \
      -I src "${SOURCES[@]}" -lpng -ljpeg -lz -o "$BIN.tmp") ||
    { echo "fuzz/run.sh: build failed"; exit 2; }
  mv "$BIN.tmp" "$BIN"
fi

# Seeds: small valid files (large ones only slow every execution).
for f in "$SRC"/fuzz/seeds/* "$SRC"/tests/fixtures/*; do
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 20000 ] && cp -n "$f" "$OUT/corpus/" 2>/dev/null || true
done

cd "$OUT"
set +e
"$BIN" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -timeout=30 -report_slow_units=20 -print_final_stats=1 \
  -dict="$SRC/fuzz/readers.dict" -artifact_prefix="$OUT/crashes/" "$@" corpus 2>&1 | tee "$OUT/last_run.log" |
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE|pulse)|ERROR|SUMMARY|stat::|Test unit written|==[0-9]+==" 
rc=${PIPESTATUS[0]}
set -e
bad=$(ls crashes | grep -cE '^(crash|leak|oom|timeout)-' || true)
slow=$(ls crashes | grep -c '^slow-unit-' || true)
echo "corpus: $(ls corpus | wc -l) files; in $OUT/crashes: $bad crash/leak/oom/timeout, $slow slow unit(s); log: $OUT/last_run.log"
exit $((rc != 0))
