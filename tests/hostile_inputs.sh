#!/usr/bin/env bash
# Hostile data, files and flags (issue 21 groups 4, 5, 8, 9): special files in image folders are skipped with a
# warning, symlink cycles are not followed, sizes from headers and flags are checked against core/limits.h before
# anything is allocated, and what cannot be used is refused with a message naming the file or flag.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
source "$SRC/tests/lib/expect.sh"
W=$SRC/tests/fixtures/cfgA.weights.safetensors  # 1×28×28 model
OUT=$tmp/out.safetensors

# Grey 28×28 PNGs written with zlib alone (no imaging library needed).
png() {  # png PATH...
  $PY - "$@" <<'PYEOF'
import struct, sys, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
for i, path in enumerate(sys.argv[1:]):
    raw = b''.join(b'\0' + bytes((x * 9 + y * 3 + i * 17) % 256 for x in range(28)) for y in range(28))
    ihdr = struct.pack('>IIBBBBB', 28, 28, 8, 0, 0, 0, 0)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
PYEOF
}
rows() { $PY -c "import json,struct,sys; b=open(sys.argv[1],'rb').read(); n=struct.unpack('<Q',b[:8])[0]; print(json.loads(b[8:8+n])['features']['shape'][0])" "$1"; }
embed() { timeout 120 "$MAE" embed --checkpoint "$W" --data_path "$1" --output "$OUT" --batch_size 4 "${@:2}"; }

# group 8: a FIFO and a link to /dev/zero named .png are skipped (they used to hang / fill memory)
mkdir -p "$tmp/special"
png "$tmp/special/a.png" "$tmp/special/b.png"
mkfifo "$tmp/special/fifo.png"
ln -s /dev/zero "$tmp/special/zero.png"
if embed "$tmp/special" >"$tmp/log" 2>&1 && [ "$(rows "$OUT")" = 2 ] &&
  grep -q "2 image names that are not regular files skipped" "$tmp/log"; then
  ok "special files skipped with a warning"
else
  bad "special files: $(tail -c 400 "$tmp/log")"
fi
# a folder link back to its ancestor is not followed (it used to repeat the folder's images 41 times)
mkdir -p "$tmp/loop/cls/sub"
png "$tmp/loop/cls/a.png" "$tmp/loop/cls/sub/b.png"
mkdir -p "$tmp/loop/other" && png "$tmp/loop/other/c.png"
ln -s .. "$tmp/loop/cls/sub/up"
if embed "$tmp/loop" >"$tmp/log" 2>&1 && [ "$(rows "$OUT")" = 3 ] && grep -q "1 folder links back" "$tmp/log"; then
  ok "symlink cycle not followed"
else
  bad "symlink cycle: $(tail -c 400 "$tmp/log")"
fi
# group 9: a name with a newline would put embed's names out of step with its rows
mkdir -p "$tmp/nl"
png "$tmp/nl/a.png" "$tmp/nl/b
c.png"
expect_error newline-name "its name holds a line break" -- embed "$tmp/nl"
# group 9: non-finite weights are refused (reconstruct used to draw black panels and exit 0)
rewrite "$W" "$tmp/nan.safetensors" "o = h['norm.bias']['data_offsets'][0]; data = data[:o] + struct.pack('<f', float('nan')) + data[o + 4:]"
$PY "$SRC/tools/make_tiny_idx.py" "$tmp/idx" --n 8 --n_test 8 >/dev/null
expect_error nonfinite-weights "nan.safetensors: tensor 'norm.bias' holds a non-finite value" -- \
  "$MAE" reconstruct --checkpoint "$tmp/nan.safetensors" --data_path "$tmp/idx" --num 2 --output "$tmp/r.png"
# group 4: an IDX header whose dimensions wrap 64 bits (16 × 2^30 × 2^30 = 0) or claim 64 GiB in 16 bytes
mkdir -p "$tmp/idxbomb" "$tmp/idxbig"
idx() {  # idx PATH DIMS...
  $PY -c "import struct,sys; d=[int(x) for x in sys.argv[2:]]; open(sys.argv[1],'wb').write(bytes([0,0,8,len(d)])+b''.join(struct.pack('>I',x) for x in d))" "$@"
}
idx "$tmp/idxbomb/train-images-idx3-ubyte" 16 1073741824 1073741824
idx "$tmp/idxbomb/train-labels-idx1-ubyte" 16
expect_error idx-wraps "dimensions ask for more than the limit of 68719476736 bytes" -- \
  "$MAE" pretrain --data_path "$tmp/idxbomb" --epochs 1 --output_dir "$tmp/run1"
idx "$tmp/idxbig/train-images-idx3-ubyte" 67108864 32 32
idx "$tmp/idxbig/train-labels-idx1-ubyte" 67108864
# under a 4 GB address-space limit: the claim is not allocated up front (it used to take 1.7 GB RSS, or 64 GiB);
# not under AddressSanitizer, whose shadow memory needs terabytes of address space
vlimit="ulimit -v 4000000;"
[ -n "${ASAN_OPTIONS:-}" ] && vlimit=""
expect_error idx-claims-64GiB "truncated: 0 of 68719476736 data bytes present" -- \
  bash -c "$vlimit exec \"$MAE\" pretrain --data_path \"$tmp/idxbig\" --epochs 1 --output_dir \"$tmp/run2\""
# group 8: a checkpoint that is a device
expect_error checkpoint-device "/dev/zero: not a regular file or a pipe" -- "$MAE" info /dev/zero
# group 5: thread counts bounded before anything starts
expect_error num-workers "--num_workers must be in \[0, 256\], got 600" -- \
  "$MAE" pretrain --data_path "$tmp/idx" --epochs 1 --num_workers 600 --output_dir "$tmp/run3"
expect_error threads "--threads must be in \[0, 1024\]" -- "$MAE" pretrain --threads 100000 --epochs 1 \
  --output_dir "$tmp/run4"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
