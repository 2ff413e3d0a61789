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
# the loss after STEPS steps: the mean of the last five logged 10-step means (metrics.jsonl) of each run
python3 - "$OUT" <<'PYEOF'
import json, sys
def last(p):
    r = [d for d in map(json.loads, open(p)) if "loss" in d and "step" in d][-5:]
    return sum(d["loss"] for d in r) / len(r), r[0]["step"], r[-1]["step"]
(a, s0, s1), (b, _, _) = last(sys.argv[1] + "/fp32/metrics.jsonl"), last(sys.argv[1] + "/bf16/metrics.jsonl")
print(f"loss, mean of the 10-step means logged at steps {s0}-{s1}: fp32 {a:.4f}, bf16 {b:.4f} ({(b - a) / a * 100:+.2f} %)")
PYEOF
