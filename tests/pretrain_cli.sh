#!/usr/bin/env bash
# mae pretrain on a tiny generated IDX set: exact resume (N steps + N more == 2N straight, bit for bit, across an
# epoch boundary and with gradient accumulation), the loss falls, logs/curve/checkpoints appear, and bad input
# gives a clear error with nothing already written lost.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # 1 under ThreadSanitizer (tests/CMakeLists.txt)

$PY "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 160 --n_test 40
common=(--data_path "$tmp/data" --model mae_vit_fmnist_small --batch_size 16 --epochs 3 --warmup_epochs 1
        --norm_pix_loss --seed 3 --num_workers 2 --print_every_s 100)

# --- exact resume: 10 batches per epoch; 14 steps cross the epoch boundary ---
"$MAE" pretrain "${common[@]}" --output_dir "$tmp/straight" --max_steps 14 2>"$tmp/log1" || bad "straight run: $(tail -3 "$tmp/log1")"
"$MAE" pretrain "${common[@]}" --output_dir "$tmp/split" --max_steps 7 2>"$tmp/log2" || bad "first half: $(tail -3 "$tmp/log2")"
"$MAE" pretrain "${common[@]}" --output_dir "$tmp/split" --max_steps 14 --resume auto 2>"$tmp/log3" || bad "resumed half: $(tail -3 "$tmp/log3")"
grep -q "resumed .*step 7" "$tmp/log3" && ok "resume auto found the step-7 checkpoint" || bad "resume auto did not resume: $(head -3 "$tmp/log3")"
if $PY "$SRC/tools/st_equal.py" "$tmp/straight/checkpoint-last.safetensors" "$tmp/split/checkpoint-last.safetensors"; then
  ok "7 + 7 steps == 14 steps straight (params and AdamW moments bit-identical)"
else bad "resume is not exact"; fi

# --- with gradient accumulation (3 micro-batches per update) and 1 loader worker on one side ---
"$MAE" pretrain "${common[@]}" --accum_iter 3 --output_dir "$tmp/acc1" --max_steps 5 2>"$tmp/log4" || bad "accum straight"
"$MAE" pretrain "${common[@]}" --accum_iter 3 --output_dir "$tmp/acc2" --max_steps 2 --num_workers 1 2>"$tmp/log5" || bad "accum first"
"$MAE" pretrain "${common[@]}" --accum_iter 3 --output_dir "$tmp/acc2" --max_steps 5 --resume "$tmp/acc2/checkpoint-last.safetensors" 2>"$tmp/log6" || bad "accum resumed"
$PY "$SRC/tools/st_equal.py" "$tmp/acc1/checkpoint-last.safetensors" "$tmp/acc2/checkpoint-last.safetensors" \
  && ok "accum_iter 3: 2 + 3 steps == 5 straight, whatever the worker count" || bad "accum resume is not exact"

# --- a full run: loss falls, log.txt has one JSON per epoch, curve and per-epoch checkpoints exist ---
"$MAE" pretrain "${common[@]}" --output_dir "$tmp/full" --save_every 1 2>"$tmp/log7" || bad "full run: $(tail -3 "$tmp/log7")"
[ "$(wc -l <"$tmp/full/log.txt")" = 3 ] && ok "log.txt has 3 epoch lines" || bad "log.txt: $(cat "$tmp/full/log.txt")"
$PY - "$tmp/full/log.txt" <<'PYEOF' && ok "epoch loss falls" || bad "epoch loss did not fall"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("   epoch losses:", [round(r["train_loss"], 4) for r in rows])
assert all(k in rows[0] for k in ("train_loss", "train_lr", "epoch"))
assert rows[-1]["train_loss"] < rows[0]["train_loss"]
PYEOF
for f in loss_curve.svg metrics.jsonl checkpoint-0.safetensors checkpoint-2.safetensors checkpoint-last.safetensors; do
  [ -s "$tmp/full/$f" ] && ok "wrote $f" || bad "missing $f"
done
grep -q "<svg" "$tmp/full/loss_curve.svg" && grep -q polyline "$tmp/full/loss_curve.svg" && ok "curve is an SVG plot" || bad "curve"
"$MAE" info "$tmp/full/checkpoint-last.safetensors" >"$tmp/info.txt"; grep -q "optim.m.blocks.0.attn.qkv.weight" "$tmp/info.txt" && ok "checkpoint carries AdamW moments" || bad "no moments"
"$MAE" forward --checkpoint "$tmp/full/checkpoint-last.safetensors" --input "$SRC/tests/fixtures/cfgA.input.safetensors" \
  --output "$tmp/fwd.safetensors" >/dev/null 2>&1 && ok "a training checkpoint serves mae forward" || bad "forward on training checkpoint"

# --- bad input: clear message, non-zero exit, nothing already written lost ---
expect_error() {  # NAME PATTERN -- command...
  local name=$1 pattern=$2; shift 3
  "$@" >"$tmp/out" 2>&1; local rc=$?
  if [ $rc -eq 0 ] || [ $rc -gt 128 ]; then bad "$name: exit $rc"
  elif ! grep -qiE -- "$pattern" "$tmp/out"; then bad "$name: message does not match /$pattern/: $(head -c 300 "$tmp/out")"
  else ok "$name: $(grep -m1 -iE -- "$pattern" "$tmp/out" | head -c 150)"; fi
}
sum_before=$(md5sum "$tmp/full/checkpoint-last.safetensors" | cut -d' ' -f1)
expect_error missing-data "no/such/dir" -- "$MAE" pretrain --data_path "$tmp/no/such/dir" --output_dir "$tmp/x1"
mkdir -p "$tmp/empty"
expect_error empty-data "empty" -- "$MAE" pretrain --data_path "$tmp/empty" --output_dir "$tmp/x2"
mkdir -p "$tmp/corrupt/cls"
head -c 300 "$SRC/tests/fixtures/cfgA.input.safetensors" >"$tmp/corrupt/cls/broken.png"
for i in $(seq 1 20); do cp "$tmp/corrupt/cls/broken.png" "$tmp/corrupt/cls/b$i.png"; done
expect_error corrupt-image "broken.png|b[0-9]+.png" -- "$MAE" pretrain --data_path "$tmp/corrupt" --batch_size 4 --input_size 32 --model mae_vit_fmnist_small --output_dir "$tmp/x3" --max_steps 2
expect_error other-config "another model" -- "$MAE" pretrain "${common[@]}" --model mae_vit_fmnist --output_dir "$tmp/full" --resume auto
expect_error unwritable-output "/proc/mae_cannot" -- "$MAE" pretrain "${common[@]}" --output_dir /proc/mae_cannot/out
expect_error mask-ratio "mask_ratio" -- "$MAE" pretrain "${common[@]}" --output_dir "$tmp/x4" --mask_ratio 1.2
expect_error input-size "divisible" -- "$MAE" pretrain "${common[@]}" --output_dir "$tmp/x5" --input_size 30
expect_error unknown-flag "--bogus" -- "$MAE" pretrain --bogus
expect_error non-finite-loss "loss is (nan|inf|-nan)" -- "$MAE" pretrain "${common[@]}" --output_dir "$tmp/full" --resume auto --epochs 30 --lr 1e30 --warmup_epochs 0
[ "$(md5sum "$tmp/full/checkpoint-last.safetensors" | cut -d' ' -f1)" = "$sum_before" ] \
  && ok "failed runs left the existing checkpoint untouched" || bad "checkpoint-last changed by a failed run"

# --- mae bench --profile on the CPU: the per-op table ---
"$MAE" bench --model mae_vit_fmnist_small --batch_size 8 --steps 1 --warmup 0 --threads "$OMP_NUM_THREADS" --profile >"$tmp/prof" 2>&1 \
  && grep -q "^| linear_backward | " "$tmp/prof" && ok "bench --profile prints the per-op table" \
  || bad "bench --profile: $(tail -3 "$tmp/prof")"
# --- mae bench --row_tiles ab: tiled and untiled steps alternating, both rates in the JSON line ---
"$MAE" bench --model mae_vit_fmnist_small --batch_size 160 --steps 1 --warmup 0 --threads "$OMP_NUM_THREADS" --row_tiles ab --json \
  >"$tmp/ab" 2>&1 && python3 -c "
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r['row_tiles'] == 'ab' and r['train_img_s_untiled'] > 0 and r['fwd_img_s_untiled'] > 0 and r['train_img_s'] > 0, r
" "$tmp/ab" && ok "bench --row_tiles ab reports tiled and untiled rates" || bad "bench --row_tiles ab: $(tail -3 "$tmp/ab")"
# --- mae bench --gemm_limit: the step's linear-layer GEMMs timed alone, their FLOPs those of the model's layers ---
"$MAE" bench --model mae_vit_fmnist_small --batch_size 160 --steps 1 --warmup 0 --threads "$OMP_NUM_THREADS" --gemm_limit --json \
  >"$tmp/limit" 2>&1 && python3 -c "
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
# mae_vit_fmnist_small: 28 px, patch 4 (49 patches, 12 kept, 16 values a patch), D 128 x 6 blocks, E 64 x 2 blocks
B, L, K, P, D, E = 160, 49, 12, 16, 128, 64
lin = lambda rows, i, o: 2 * rows * i * o  # forward FLOPs of one layer
blocks = lambda rows, w, depth: depth * (lin(rows, w, 3 * w) + lin(rows, w, w) + 2 * lin(rows, w, 4 * w))
fwd = lin(B * L, P, D) + blocks(B * (1 + K), D, 6) + lin(B * (1 + K), D, E) + blocks(B * (1 + L), E, 2) + lin(B * (1 + L), E, P)
want = 3 * fwd - lin(B * L, P, D)  # forward, input and weight gradients; no input gradient for the patch embedding
assert r['gemm_limit_flops'] == want, (r['gemm_limit_flops'], want)
assert r['gemm_limit_s'] > 0 and 0 < r['gemm_share'] and abs(r['gemm_limit_gflops'] - want / r['gemm_limit_s'] * 1e-9) < 1e-6 * r['gemm_limit_gflops'], r
" "$tmp/limit" && ok "bench --gemm_limit reports the step's GEMM time and share" || bad "bench --gemm_limit: $(tail -3 "$tmp/limit")"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
