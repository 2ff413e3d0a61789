#!/usr/bin/env bash
# Tar shards through the CLI (issue 19): `mae shard` a folder, pretrain from the shards and from the folder with the
# same seed — bit-identical checkpoints and losses (exact decode) —, shards written by Python's tarfile (pax/GNU
# names) read back, the index cache in a read-only folder, and each bad input of the issue refused with a message
# naming the shard and the member. Needs Pillow to write JPEGs (Debian's python3 has it); skipped otherwise.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
source "$SRC/tests/lib/expect.sh"
export OMP_NUM_THREADS=2
$PY -c "import PIL" 2>/dev/null || { echo "skip: no Pillow for $PY"; exit 77; }

# 3 classes x 12 JPEGs of varied sizes, quality 90.
$PY - "$tmp/img/train" <<'PYEOF'
import os, sys, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
for c in range(3):
    os.makedirs(f"{root}/c{c}", exist_ok=True)
    for k in range(12):
        w, h = int(rng.integers(36, 90)), int(rng.integers(30, 80))
        y, x = np.mgrid[0:h, 0:w]
        a = np.stack([(x * (3 + c) + y * 2 + k * 9 + 40 * ch) % 256 for ch in range(3)], -1).astype(np.uint8)
        Image.fromarray(a).save(f"{root}/c{c}/img_{k}.JPEG", quality=90)
PYEOF

# --- mae shard, then pretraining from shards == from the folder, bit for bit ---
if "$MAE" shard --data_path "$tmp/img" --output_dir "$tmp/sh" --max_count 10 --seed 5 >"$tmp/shard.out" 2>&1 &&
  [ "$(ls "$tmp"/sh/train-*.tar | wc -l)" = 4 ] && grep -q "train-{000000..000003}.tar" "$tmp/shard.out"; then
  ok "mae shard: 36 images in 4 shards of ≤ 10, the pattern printed"
else bad "mae shard: $(cat "$tmp/shard.out")"; fi
common=(--model mae_vit_fmnist_small --input_size 28 --batch_size 6 --epochs 2 --max_steps 10 --warmup_epochs 1
        --norm_pix_loss --seed 4 --num_workers 2 --print_every_s 100)
"$MAE" pretrain "${common[@]}" --data_path "$tmp/img" --output_dir "$tmp/run_folder" 2>"$tmp/log1" || bad "folder run: $(tail -3 "$tmp/log1")"
"$MAE" pretrain "${common[@]}" --data_path "$tmp/sh/train-{000000..000003}.tar" --output_dir "$tmp/run_shards" 2>"$tmp/log2" ||
  bad "shard run: $(tail -3 "$tmp/log2")"
grep -q "tar shards .*36 samples in 4 shards, 3 classes; index: 4 cached, 0 built" "$tmp/log2" &&
  ok "the shards' indexes written by mae shard are used" || bad "index: $(grep data: "$tmp/log2")"
losses() {  # the log's and the metrics' loss, lr and grad norm columns (not the timings)
  $PY -c "import json,sys; [print([json.loads(l).get(k) for k in ('epoch','step','train_loss','train_lr','loss','lr','grad_norm')]) for f in sys.argv[1:] for l in open(f)]" "$@"
}
if $PY "$SRC/tools/st_equal.py" "$tmp/run_folder/checkpoint-last.safetensors" "$tmp/run_shards/checkpoint-last.safetensors" &&
  [ "$(losses "$tmp"/run_folder/{log.txt,metrics.jsonl})" = "$(losses "$tmp"/run_shards/{log.txt,metrics.jsonl})" ]; then
  ok "pretraining from shards == from the folder (checkpoint tensors, losses, lr and grad norms bit-identical)"
else bad "shards and folder runs differ: $(cat "$tmp/run_folder/log.txt" "$tmp/run_shards/log.txt")"; fi
"$MAE" pretrain "${common[@]}" --data_path "$tmp/sh" --decode fast --output_dir "$tmp/run_fast" 2>"$tmp/log3" &&
  [ -s "$tmp/run_fast/checkpoint-last.safetensors" ] && ok "--decode fast pretrains from shards" || bad "fast: $(tail -3 "$tmp/log3")"

# --- shards from another writer: Python's tarfile, GNU and pax formats, long names, json labels ---
$PY - "$tmp/img/train/c1/img_0.JPEG" "$tmp/py" <<'PYEOF'
import io, os, sys, tarfile
img = open(sys.argv[1], "rb").read()
os.makedirs(sys.argv[2])
for fmt, name in ((tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax")):
    with tarfile.open(f"{sys.argv[2]}/{name}-0.tar", "w", format=fmt) as t:
        for k in range(3):
            key = f"dir/{'long' * 40}_{k}"
            for ext, data in (("jpg", img), ("json", b'{"label": %d}' % (k + 1))):
                ti = tarfile.TarInfo(f"{key}.{ext}"); ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
PYEOF
for f in gnu pax; do
  "$MAE" bench --loader --data_path "$tmp/py/$f-0.tar" --batch_size 3 --input_size 16 --num_workers 1 >"$tmp/b.out" 2>&1 &&
    grep -q "3 samples in 1 shard, 4 classes" "$tmp/b.out" && ok "reads Python tarfile's $f format (long names, .json labels)" ||
    bad "$f tar: $(cat "$tmp/b.out")"
done

# --- the index cache in a read-only shard folder: under the run's --output_dir ---
# (root ignores permissions: the folder is made immutable with chattr instead, when the filesystem allows)
cp -r "$tmp/sh" "$tmp/ro" && rm "$tmp"/ro/*.mae-index
if [ "$(id -u)" != 0 ]; then chmod a-w "$tmp/ro"; readonly_ok=1
elif chattr +i "$tmp/ro" 2>/dev/null; then readonly_ok=1; trap 'chattr -i "$tmp/ro"; rm -rf "$tmp"' EXIT
else readonly_ok=0; echo "skip read-only folder check: root without chattr"; fi
if [ $readonly_ok = 1 ]; then
  "$MAE" pretrain "${common[@]}" --max_steps 2 --data_path "$tmp/ro" --output_dir "$tmp/run_ro" 2>"$tmp/log4" &&
    grep -q "4 built (4 saved under $tmp/run_ro/shard-index)" "$tmp/log4" && ls "$tmp"/run_ro/shard-index/*.mae-index >/dev/null &&
    ! ls "$tmp"/ro/*.mae-index >/dev/null 2>&1 &&
    ok "read-only shard folder: indexes saved under --output_dir/shard-index" || bad "read-only: $(grep -E 'data:|error' "$tmp/log4")"
  "$MAE" pretrain "${common[@]}" --max_steps 2 --data_path "$tmp/ro" --output_dir "$tmp/run_ro" --overwrite 2>"$tmp/log4b" &&
    grep -q "index: 4 cached, 0 built" "$tmp/log4b" && ok "… and found there by the next run" || bad "read-only rerun: $(grep data: "$tmp/log4b")"
  [ "$(id -u)" = 0 ] && chattr -i "$tmp/ro"; chmod u+w "$tmp/ro"
fi

# --- bad input: each refused naming the shard and member, nothing written ---
mkshard() {  # mkshard DIR SPEC: a shard DIR/train-0.tar from members "name=content" (content "@jpg" = a JPEG)
  $PY - "$@" "$tmp/img/train/c0/img_1.JPEG" <<'PYEOF'
import io, os, sys, tarfile
d, spec, jpg = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
os.makedirs(d, exist_ok=True)
with tarfile.open(f"{d}/train-0.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    for m in spec.split(";"):
        name, content = m.split("=")
        data = jpg if content == "@jpg" else content.encode()
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
PYEOF
}
pre() { "$MAE" pretrain "${common[@]}" --batch_size 1 --max_steps 1 --output_dir "$tmp/bad_run" --overwrite --data_path "$@"; }
cp "$tmp/sh/train-000000.tar" "$tmp/cut.tar" && truncate -s 20000 "$tmp/cut.tar"
expect_error truncated-tar "shard $tmp/cut.tar: truncated: member 0000[0-9]+_img_[0-9]+\.jpg needs" -- pre "$tmp/cut.tar"
mkshard "$tmp/noimg" "a.jpg=@jpg;a.cls=0;b.cls=1"
expect_error member-without-image "shard $tmp/noimg/train-0.tar: sample b has no image member .* b.cls" -- pre "$tmp/noimg"
mkshard "$tmp/nan" "a.jpg=@jpg;a.cls=zero"
expect_error label-not-integer "shard $tmp/nan/train-0.tar: member a.cls: label 'zero' is not an integer" -- pre "$tmp/nan"
mkshard "$tmp/range" "a.jpg=@jpg;a.cls=-1"
expect_error label-out-of-range "shard $tmp/range/train-0.tar: member a.cls: label -1 is out of range" -- pre "$tmp/range"
expect_error pattern-matches-nothing "shard pattern $tmp/sh/val-\{000000..000003\}.tar matches no file" -- \
  pre "$tmp/sh/val-{000000..000003}.tar"
expect_error folder-without-split "holds shards of other splits but none for the val/test split" -- \
  "$MAE" knn --checkpoint "$tmp/run_shards/checkpoint-last.safetensors" --data_path "$tmp/sh"
# a shard changed after its index was built: noticed (size/mtime) and the index rebuilt
cp -a "$tmp/sh" "$tmp/changed"  # -a: same mtimes, so the other indexes still match
sleep 0.05
cp "$tmp/sh/train-000001.tar" "$tmp/changed/train-000000.tar"
"$MAE" pretrain "${common[@]}" --max_steps 1 --data_path "$tmp/changed" --output_dir "$tmp/run_changed" 2>"$tmp/log5" &&
  grep -q "36 samples in 4 shards.*index: 3 cached, 1 built" "$tmp/log5" && ok "a changed shard's index is rebuilt" ||
  bad "changed shard: $(grep -E 'data:|error' "$tmp/log5")"
# a JPEG whose header lies about its size (SOF height × 8), on both decode paths
$PY - "$tmp/img/train/c2/img_3.JPEG" "$tmp/liar.jpg" <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); i = b.find(b"\xff\xc0")
h = int.from_bytes(b[i + 5:i + 7], "big"); b[i + 5:i + 7] = (h * 8).to_bytes(2, "big")
open(sys.argv[2], "wb").write(b)
PYEOF
mkdir -p "$tmp/liar" && $PY - "$tmp/liar.jpg" "$tmp/liar/train-0.tar" <<'PYEOF'
import sys, tarfile
with tarfile.open(sys.argv[2], "w", format=tarfile.USTAR_FORMAT) as t:
    t.add(sys.argv[1], "liar.jpg")
PYEOF
for d in exact fast; do
  expect_error "header-lies-$d" "image $tmp/liar/train-0.tar:liar.jpg: corrupt JPEG: the image data ends before the [0-9]+×[0-9]+ pixels its header announces" -- \
    pre "$tmp/liar" --decode "$d"
done
expect_error decode-flag "--decode must be exact or fast, got 'quick'" -- pre "$tmp/sh" --decode quick

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
