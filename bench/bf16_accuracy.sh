#!/usr/bin/env bash
# The bf16 accuracy check on the Fashion-MNIST recipe (issue 20): the same pretraining run (mae_vit_fmnist_small,
# norm-pix, batch 256, blr 1e-3, 1 warmup epoch of a 3-epoch cosine schedule, seed 0) stopped after STEPS
# optimizer steps, once with --precision fp32 and once with --precision bf16, then k-NN (k 20, T 0.07) of each
# checkpoint's features in fp32. Prints the loss of the last logged steps and the k-NN top-1 of both. The two runs
# go side by side (THREADS each), so that on a shared machine both have reached the same step whenever you look
# (their logs print the loss every 30 s).
#
#   bench/bf16_accuracy.sh [OUT_DIR]        env: MAE_BIN (build/mae), STEPS (500), THREADS (1 per run)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAE_BIN=${MAE_BIN:-$ROOT/build/mae}
STEPS=${STEPS:-500}
THREADS=${THREADS:-1}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
run() {
  local p=$1 t0
  t0=$(date +%s)
  "$MAE_BIN" pretrain --model mae_vit_fmnist_small --norm_pix_loss --batch_size 256 --epochs 3 --warmup_epochs 1 \
    --blr 1e-3 --seed 0 --max_steps "$STEPS" --threads "$THREADS" --precision "$p" --output_dir "$OUT/$p" \
    --overwrite --print_every_s 30 >"$OUT/$p.log" 2>&1
  echo "$p: pretrain $(($(date +%s) - t0)) s (load $(cut -d' ' -f1 /proc/loadavg))"
  "$MAE_BIN" knn --checkpoint "$OUT/$p/checkpoint-last.safetensors" --threads "$THREADS" >"$OUT/$p.knn" 2>&1
}
run fp32 &
run bf16 &
wait
for p in fp32 bf16; do
  echo "== $p: last log lines, k-NN"
  grep -iE "loss" "$OUT/$p.log" | tail -2
  grep -iE "top-1|acc" "$OUT/$p.knn" | tail -1
done
