#!/usr/bin/env bash
# Load check of `mae serve` (a benchmark, not a test): N concurrent clients on loopback for T seconds against
# /embed and /reconstruct, printing requests/s, p50/p99 latency and errors for each, and the server's RSS at start
# (after a warm-up that builds the networks), between the phases and at the end (flat memory: no growth per
# request). The clients (Python threads, bench/serve_load.py) share the machine with the server: on a small host
# they take part of the CPU the server would have.
#
#   bench/serve_load.sh [MAE_BIN] [CHECKPOINT]
#   env: CLIENTS (8), DURATION (seconds per phase, 20), THREADS (compute threads, 2), WORKERS (HTTP workers, 8), MAX_BATCH (8),
#        MODEL (mae_vit_fmnist_small: the checkpoint made by `mae init` when none is given), IMAGE (a PNG/JPEG;
#        default: a 28-px picture drawn here), ROUNDS (2: the phases run twice, so the second round's RSS shows
#        the steady state)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAE=${1:-$ROOT/build/mae}
CK=${2:-}
CLIENTS=${CLIENTS:-8} DURATION=${DURATION:-20} THREADS=${THREADS:-2} WORKERS=${WORKERS:-8}
MAX_BATCH=${MAX_BATCH:-8} MODEL=${MODEL:-mae_vit_fmnist_small} ROUNDS=${ROUNDS:-2}
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
if [ -z "$CK" ]; then
  "$MAE" init --model "$MODEL" --output "$tmp/model.safetensors" >/dev/null
  CK=$tmp/model.safetensors
fi
IMG=${IMAGE:-}
if [ -z "$IMG" ]; then
  IMG=$tmp/image.png
  $PY -c "
import struct, sys, zlib
w = h = 28
raw = b''.join(b'\0' + bytes((x * 9 + y * 5) % 256 for x in range(w)) for y in range(h))
chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
open(sys.argv[1], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
                              + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))" "$IMG"
fi
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' /proc/$pid/status; }

"$MAE" serve --checkpoint "$CK" --port 0 --threads "$THREADS" --workers "$WORKERS" --max_batch "$MAX_BATCH" \
  --max_queue 256 >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 600); do
  URL=$(sed -n 's/^mae serve: listening on \(http:[^ ]*\)$/\1/p' "$tmp/out")
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { cat "$tmp/err"; exit 1; }
echo "host: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores ($(grep -ow 'avx512f\|avx2' /proc/cpuinfo |
  sort -u | tr '\n' ' ')); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $CK ($(
  $PY -c 'import json, sys, urllib.request as u
c = json.load(u.urlopen(sys.argv[1] + "info"))["model"]["config"]
print("%d px, patch %d, width %d, depth %d" % (c["img_size"], c["patch_size"], c["embed_dim"], c["depth"]))' "$URL"
)); image $IMG"
echo "server: --threads $THREADS --workers $WORKERS --max_batch $MAX_BATCH; $CLIENTS clients, $DURATION s per phase"
echo "RSS at start: $(rss)"
# warm-up: the networks are built on first use, for a lone image and for a batch, per endpoint (and mask ratio)
for c in 1 "$CLIENTS"; do
  $PY "$ROOT/bench/serve_load.py" "$URL" /embed "$IMG" --clients "$c" --seconds 2 >/dev/null
  $PY "$ROOT/bench/serve_load.py" "$URL" /reconstruct "$IMG" --clients "$c" --seconds 2 --field mask_ratio=0.75 >/dev/null
done
echo "RSS after warm-up: $(rss)"
for round in $(seq "$ROUNDS"); do
  $PY "$ROOT/bench/serve_load.py" "$URL" /embed "$IMG" --clients "$CLIENTS" --seconds "$DURATION"
  $PY "$ROOT/bench/serve_load.py" "$URL" /reconstruct "$IMG" --clients "$CLIENTS" --seconds "$DURATION" \
    --field mask_ratio=0.75
  echo "RSS after round $round: $(rss)"
done
