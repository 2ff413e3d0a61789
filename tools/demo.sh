#!/usr/bin/env bash
# The main job on the embedded default: MAE-pretrain the 28×28 Fashion-MNIST preset (mae_vit_fmnist_small) on all
# cores, draw reconstructions of test images, and measure the encoder by weighted k-NN and a (cached-feature)
# linear probe on the 10k test images. About 10 minutes on 2 cores. Everything lands in runs/demo/.
#   EPOCHS=3 tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/demo
epochs=${EPOCHS:-3}
mkdir -p "$out"
./build/mae pretrain --model mae_vit_fmnist_small --norm_pix_loss --batch_size 256 --epochs "$epochs" \
  --warmup_epochs 1 --blr 1e-3 --output_dir "$out" --resume auto --print_every_s 15
ck=$out/checkpoint-last.safetensors
./build/mae reconstruct --checkpoint "$ck" --data_path /usr/share/datasets/fashion-mnist --num 6 --seed 0 \
  --output "$out/reconstructions.png"
./build/mae knn --checkpoint "$ck" | tee "$out/knn.txt"
./build/mae linprobe --finetune "$ck" --cache_features --blr 1.0 --output_dir "$out/linprobe" --overwrite | tee "$out/linprobe.txt"
echo
echo "demo: checkpoint $ck, log $out/log.txt, curve $out/loss_curve.svg, reconstructions $out/reconstructions.png"
grep -hiE "top-1|acc" "$out/knn.txt" | tail -1
tail -1 "$out/linprobe.txt"
echo "look at it in a browser: ./build/mae serve --checkpoint $ck   (then open http://127.0.0.1:8080/)"
