#!/usr/bin/env bash
# The main job on the embedded default (the 28×28 Fashion-MNIST preset): official init, one forward + backward
# checked end to end, and the training/forward throughput. Results land in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/demo
mkdir -p "$out"
./build/mae init --model mae_vit_fmnist --norm_pix_loss --seed 0 --output "$out/init.safetensors"
./build/mae forward --checkpoint "$out/init.safetensors" --input tests/fixtures/cfgA.input.safetensors \
  --output "$out/forward.safetensors" --backward --mask_ratio 0.75
./build/mae info "$out/forward.safetensors" | head -8
./build/mae bench --model mae_vit_fmnist --batch_size 256 --threads "$(nproc)" --steps 3
