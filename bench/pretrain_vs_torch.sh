#!/usr/bin/env bash
# Pretrains the same config with the same recipe for the same steps in mae and in the PyTorch reference, then
# overlays the loss curves (bench/results/pretrain_vs_torch.svg) and prints both final losses and images/s.
#   bench/pretrain_vs_torch.sh [STEPS=468] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-468} threads=${2:-2}
out=runs/pretrain_vs_torch
mkdir -p "$out" bench/results
recipe=(--batch_size 256 --epochs 10 --warmup_epochs 1 --blr 1e-3 --norm_pix_loss --max_steps "$steps")
rm -rf "$out/mae" "$out/torch"
"${MAE:-./build/mae}" pretrain --model mae_vit_fmnist_small "${recipe[@]}" --threads "$threads" \
  --output_dir "$out/mae" --print_every_s 30 2>&1 | grep -E "^epoch [0-9]+:|done|wall"
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=$threads \
  /usr/bin/python3 tools/torch_pretrain.py --model mae_vit_fmnist_small "${recipe[@]}" --threads "$threads" \
  --out "$out/torch" 2>&1 | grep -E "^torch|done|wall"
python3 tools/plot_curves.py bench/results/pretrain_vs_torch.svg "mae=$out/mae/metrics.jsonl" \
  "PyTorch reference=$out/torch/metrics.jsonl"
python3 - "$out" <<'PYEOF'
import json, sys
d = sys.argv[1]
def last(p, n=5):
    rows = [json.loads(l) for l in open(p)]
    return sum(r["loss"] for r in rows[-n:]) / len(rows[-n:]), rows[-1]["step"]
m, ms = last(f"{d}/mae/metrics.jsonl"); t, ts = last(f"{d}/torch/metrics.jsonl")
print(f"final loss (mean of the last 5 logged intervals): mae {m:.4f} @ step {ms}, torch {t:.4f} @ step {ts}, "
      f"difference {100 * (m - t) / t:+.2f}%")
PYEOF
