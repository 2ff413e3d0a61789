#!/usr/bin/env bash
# The training input pipeline alone (issue 19): images/s and images per CPU second of RandomResizedCrop(S, 0.2–1,
# bicubic) + flip + normalise, from (a) a folder and (b) tar shards made from it, each with exact and fast decode,
# against the official pipeline (torchvision ImageFolder + PIL + DataLoader with the same number of workers), cold
# and warm page cache, on a synthetic ImageNet-like set (tools/make_imagenet_like.py: skimage photos as ~500×375
# JPEGs, quality 90).
#
#   bench/loader.sh [--save]          env: MAE_BIN (build/mae), DATA (/tmp/mae_loader_bench), N (4000 images),
#                                     WORKERS (2), SIZES ("224 112"), PY (/usr/bin/python3)
#
# "img per CPU s" = images / (user + system CPU seconds of every thread and worker process): the per-core rate,
# which a shared machine disturbs far less than the wall rate. Cores per GPU = 7000 / that rate. Cold = every file
# of the set dropped from the page cache first (bench/evict_cache.py, posix_fadvise); warm = read just before.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
MAE=${MAE_BIN:-$SRC/build/mae}
PY=${PY:-/usr/bin/python3}
DATA=${DATA:-/tmp/mae_loader_bench}
N=${N:-4000}
WORKERS=${WORKERS:-2}
SIZES=${SIZES:-224 112}
SAVE=0
[ "${1:-}" = --save ] && SAVE=1
[ -x "$MAE" ] || { echo "no $MAE: build it (ninja -C build mae) or set MAE_BIN" >&2; exit 2; }

if [ ! -d "$DATA/train" ]; then
  $PY "$SRC/tools/make_imagenet_like.py" "$DATA" --n "$N" >&2
fi
if ! ls "$DATA"/shards/train-*.tar >/dev/null 2>&1; then
  "$MAE" shard --data_path "$DATA" --output_dir "$DATA/shards" --overwrite >&2
fi
torch_ok=1
$PY -c "import torchvision" 2>/dev/null || { torch_ok=0; echo "no torchvision for $PY: its rows are skipped (apt-get install python3-torchvision)" >&2; }

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
ext=$(grep -o -w -E 'avx2|avx512f|avx512bw|avx512_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')
host="$cpu; $(nproc) CPUs; flags: ${ext}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(uname -r)"
load() { cut -d' ' -f1 /proc/loadavg; }

rows=()
mae_row() {  # mae_row SOURCE_LABEL PATH DECODE CACHE SIZE
  [ "$4" = cold ] && $PY "$SRC/bench/evict_cache.py" "$2" 2>/dev/null
  local l0 j
  l0=$(load)
  j=$("$MAE" bench --loader --json --data_path "$2" --decode "$3" --num_workers "$WORKERS" --input_size "$5")
  rows+=("$($PY -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"| mae | {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} | {j['img_s']:.0f} | {j['img_per_cpu_s']:.0f} | {7000 / j['img_per_cpu_s']:.1f} | {sys.argv[6]} → {open('/proc/loadavg').read().split()[0]} |\")" "$j" "$1" "$3" "$4" "$5" "$l0")")
  echo "${rows[-1]}" >&2
}
torch_row() {  # torch_row CACHE SIZE
  [ "$1" = cold ] && $PY "$SRC/bench/evict_cache.py" "$DATA/train" 2>/dev/null
  local l0 j
  l0=$(load)
  j=$($PY "$SRC/bench/torchvision_loader.py" "$DATA/train" --workers "$WORKERS" --size "$2")
  rows+=("$($PY -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"| torchvision {j['torch']} | folder | PIL | {sys.argv[2]} | {sys.argv[3]} | {j['img_s']:.0f} | {j['img_per_cpu_s']:.0f} | {7000 / j['img_per_cpu_s']:.1f} | {sys.argv[4]} → {open('/proc/loadavg').read().split()[0]} |\")" "$j" "$1" "$2" "$l0")")
  echo "${rows[-1]}" >&2
}

echo "host: $host" >&2
for S in $SIZES; do
  for cache in cold warm; do
    [ "$cache" = warm ] && cat "$DATA"/shards/*.tar "$DATA"/train/*/* >/dev/null  # warm: just read
    [ $torch_ok = 1 ] && torch_row $cache "$S"
    for d in exact fast; do
      mae_row folder "$DATA" $d $cache "$S"
      mae_row shards "$DATA/shards" $d $cache "$S"
    done
  done
done

stamp=$(date -u +%Y%m%d-%H%M%S)
{
  echo "Loader benchmark $stamp UTC: $(ls "$DATA"/train/*/* | wc -l) JPEGs ($(du -sh "$DATA/train" | cut -f1), tools/make_imagenet_like.py), $WORKERS workers, batch 64, one epoch"
  echo "host: $host"
  echo
  echo "| pipeline | source | decode | cache | size | img/s | img per CPU s | cores per GPU at 7000 img/s | load avg (start → end) |"
  echo "|---|---|---|---|---:|---:|---:|---:|---|"
  printf '%s\n' "${rows[@]}"
} | tee "${TMPDIR:-/tmp}/loader-$stamp.md"
if [ $SAVE = 1 ]; then
  mkdir -p "$SRC/bench/results"
  cp "${TMPDIR:-/tmp}/loader-$stamp.md" "$SRC/bench/results/loader-$stamp.md"
  echo "saved bench/results/loader-$stamp.md" >&2
fi
