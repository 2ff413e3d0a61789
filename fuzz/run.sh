#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/targets/ (one per reader of untrusted bytes) with clang (libFuzzer +
# AddressSanitizer + UBSan) into build-fuzz/ and runs them, each for SECONDS (default 60) on its own corpus, seeded
# from fuzz/seeds/<target>/.
#   fuzz/run.sh [TARGET|all] [SECONDS] [extra libFuzzer flags...]
#   targets: safetensors pth png jpeg tar idx cifar config forward_input
# Per target, build-fuzz/<target>/: corpus/, crashes/ (reproduce: build-fuzz/bin/<target> <file>), last_run.log;
# each run appends a line (date, seconds it ran, executions, edges covered, features, corpus, findings, exit status,
# CPU seconds) to build-fuzz/runs.tsv.
# Exit status: 0 when no target found anything, 1 otherwise (2: cannot build).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
ALL=(safetensors pth png jpeg tar idx cifar config forward_input)
WHICH=${1:-all}
SECS=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
OUT=${MAE_FUZZ_DIR:-$SRC/build-fuzz}
CXX=${CXX_FUZZ:-clang++}
if [ "$WHICH" = all ]; then TARGETS=("${ALL[@]}"); else TARGETS=("$WHICH"); fi
for t in "${TARGETS[@]}"; do
  [ -f "$SRC/fuzz/targets/$t.cpp" ] || { echo "fuzz/run.sh: no target '$t' (have: ${ALL[*]})"; exit 2; }
done

# The readers under test, compiled once into one archive (the linker takes what each target needs).
LIB_SOURCES=(core/host_alloc io/file_bytes io/safetensors io/atomic_file io/zip_reader io/pickle io/pth io/name_map
             data/decode data/replace_file data/tar data/shard_index data/shard_dataset data/shard_paths data/dataset
             model/config model/hf_config model/checkpoint_load model/params model/pos_embed model/forward_input)
# clang does not define __SANITIZE_ADDRESS__ (GCC does); the readers use it to read files into exact-size heap
# buffers instead of mmap, so that ASan sees reads past the end.
FLAGS=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -D__SANITIZE_ADDRESS__=1 -I "$SRC/src")
mkdir -p "$OUT/obj" "$OUT/bin"
newest_header=$(ls -t "$SRC"/src/*/*.h "$SRC"/fuzz/fuzz_common.h | head -1)
objs=()
jobs=$(nproc)
for s in "${LIB_SOURCES[@]}"; do
  o="$OUT/obj/${s//\//_}.o"
  objs+=("$o")
  if [ ! -f "$o" ] || [ "$SRC/src/$s.cpp" -nt "$o" ] || [ "$newest_header" -nt "$o" ]; then
    echo "compiling src/$s.cpp"
    rm -f "$o"
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link -c "$SRC/src/$s.cpp" -o "$o.tmp" && mv "$o.tmp" "$o" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fi
done
wait
for o in "${objs[@]}"; do [ -f "$o" ] || { echo "fuzz/run.sh: build failed ($o)"; exit 2; }; done
lib="$OUT/obj/libreaders.a"
stale=0
for o in "${objs[@]}"; do [ "$o" -nt "$lib" ] && stale=1; done
[ -f "$lib" ] || stale=1
[ $stale = 1 ] && { rm -f "$lib"; ar rcs "$lib" "${objs[@]}"; }
for t in "${TARGETS[@]}"; do
  bin="$OUT/bin/$t"
  if [ ! -x "$bin" ] || [ "$SRC/fuzz/targets/$t.cpp" -nt "$bin" ] || [ "$lib" -nt "$bin" ] ||
     [ "$SRC/fuzz/fuzz_common.h" -nt "$bin" ]; then
    echo "building $bin"
    "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$SRC/fuzz/targets/$t.cpp" "$lib" -lpng -ljpeg -lz -o "$bin.tmp" ||
      { echo "fuzz/run.sh: build of $t failed"; exit 2; }
    mv "$bin.tmp" "$bin"
  fi
done

status=0
for t in "${TARGETS[@]}"; do
  dir="$OUT/$t"
  mkdir -p "$dir/corpus" "$dir/crashes"
  # Seeds: small valid files (large ones only slow every execution).
  for f in "$SRC/fuzz/seeds/$t"/*; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 65536 ] && cp -n "$f" "$dir/corpus/" 2>/dev/null || true
  done
  cd "$dir"
  set +e
  start=$(date +%s)
  # In a subshell whose `times` then gives the fuzzer's CPU seconds: on a busy machine a run gets less CPU than
  # wall time, and both are recorded. Log and times per run ($$): two runs of one target at once (sharing the
  # corpus) must not write into each other's log.
  log="$dir/run.$$.log"
  ( "$OUT/bin/$t" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -timeout=30 -report_slow_units=20 \
      -print_final_stats=1 -dict="$SRC/fuzz/readers.dict" -artifact_prefix="$dir/crashes/" "$@" corpus \
      >"$log" 2>&1
    r=$?
    times >"$dir/times.$$.txt"
    exit $r )
  rc=$?
  secs=$(( $(date +%s) - start ))  # what it ran, which is less than SECS when it stopped on a finding
  # children's "user sys" line, e.g. "3m2.100s 0m1.000s" → whole seconds
  cpu=$(sed -n 2p "$dir/times.$$.txt" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t }')
  rm -f "$dir/times.$$.txt"
  mv "$log" "$dir/last_run.log"
  set -e
  # grep -a: a unit's bytes echoed into the log (a crash report) make grep call the file binary and print nothing
  execs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' last_run.log | grep -oE '[0-9]+$' || echo 0)
  cov=$(grep -aoE 'cov: [0-9]+' last_run.log | tail -1 | grep -oE '[0-9]+' || echo 0)
  ft=$(grep -aoE 'ft: [0-9]+' last_run.log | tail -1 | grep -oE '[0-9]+' || echo 0)
  bad=$(ls crashes | grep -cE '^(crash|leak|oom|timeout)-' || true)
  # (|| true: under pipefail a log without such lines — an interrupted run — would end the script unrecorded)
  [ "$rc" != 0 ] && { status=1; grep -aE "ERROR|SUMMARY|FUZZ_CHECK|Test unit written" last_run.log | head -5 || true; }
  [ "$bad" != 0 ] && status=1
  line="$(date -u +%FT%TZ)	$t	$secs	$execs	$cov	$ft	$(ls corpus | wc -l)	$bad	rc=$rc	cpu=$cpu"
  echo "$line" >>"$OUT/runs.tsv"
  printf '%-14s %6ss (CPU %6ss)  %10s execs  cov %5s edges  ft %6s  corpus %5s  findings %s  (rc %s)\n' \
    "$t" "$secs" "$cpu" "$execs" "$cov" "$ft" "$(ls corpus | wc -l)" "$bad" "$rc"
done
exit $status
