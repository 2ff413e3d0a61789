#!/usr/bin/env bash
# The Fashion-MNIST results table (README "Results"): MAE pretraining of mae_vit_fmnist_small, then
#   - k-NN and cached linear probe of the MAE encoder (cls token and mean of patch tokens) vs raw pixels vs a
#     randomly initialised encoder,
#   - masking-ratio ablation (0.5 / 0.75 / 0.9) and pixel vs norm-pix target, by linear probe and k-NN,
#   - fine-tuning from MAE vs the same ViT from scratch with the same recipe and budget.
# Every row records accuracy, epochs and wall time; runs/table/results.md is the table. Rerunning resumes/skips
# what is done (each step writes a .done file), so the script can be stopped and started again.
#   tools/results_table.sh                 every row: 3 pretraining epochs, 8 fine-tuning (≈ 2 h 40 min, 2 cores)
#   FT_EPOCHS=3 OUT=runs/table-ft3 ONLY="pt75 ft_mae ft_scratch ft_mae_light ft_scratch_light" tools/results_table.sh
#   MAE=build/mae OUT=runs/table ONLY="pt75 pt50" PT_EPOCHS=10 tools/results_table.sh      a longer budget, some rows
#   OUT=runs/table-pt9 ONLY=pt75 PT_EPOCHS=9 tools/results_table.sh   9 epochs; probes on cls and mean (POOLS)
# Run it alone: two 2-thread jobs on 2 cores make both several times slower and the wall times meaningless.
set -euo pipefail
# the body is one { } group, parsed whole before it runs: editing this file during a multi-hour run cannot
# make bash read the rest from a shifted offset
{
cd "$(dirname "$0")/.."
MAE=${MAE:-build/mae}
OUT=${OUT:-runs/table}
PT_EPOCHS=${PT_EPOCHS:-3}
FT_EPOCHS=${FT_EPOCHS:-8}
MODEL=mae_vit_fmnist_small
mkdir -p "$OUT"
res="$OUT/rows.tsv"  # name, method, epochs, top-1, wall seconds
touch "$res"

want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
done_() { [ -f "$OUT/$1.done" ]; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$res"; touch "$OUT/$1.done"; }
# runs "$@" with its output in $OUT/<name>.log, sets $secs
timed() {
  local name=$1; shift
  local t0=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1
  secs=$(( $(date +%s) - t0 ))
}
acc_of() { grep -oE "$2" "$OUT/$1.log" | tail -1 | grep -oE '[0-9]+\.[0-9]+' | tail -1; }

# --- pretraining: one run per (mask ratio, target) ---
pretrain() {  # name mask_ratio extra-flags...
  local name=$1 ratio=$2; shift 2
  want "$name" || return 0
  done_ "$name" || {
    timed "$name" "$MAE" pretrain --model $MODEL --mask_ratio "$ratio" "$@" --batch_size 256 --epochs "$PT_EPOCHS" \
      --warmup_epochs 1 --blr 1e-3 --seed 0 --output_dir "$OUT/$name" --resume auto --print_every_s 60
    row "$name" "MAE pretrain, mask $ratio $*" "$PT_EPOCHS" "-" "$secs"
  }
  probe "$name" "$OUT/$name/checkpoint-last.safetensors"
}
# k-NN and cached linear probe (90 epochs of LARS on fixed features, blr 1.0: blr 0.1 assumes batch 16384), on the
# cls token; POOLS="cls mean" (the default for MAE checkpoints) adds the mean of the patch tokens (rows *-mean).
probe() {  # name checkpoint [extra flags for both]
  local name=$1 ck=$2; shift 2
  local kf=() lf=() pools=cls
  [ -n "$ck" ] && kf=(--checkpoint "$ck") && lf=(--finetune "$ck") && pools=${POOLS:-cls mean}
  for pool in $pools; do
    local n=$name pf=() what=""
    [ "$pool" = mean ] && n=$name-mean pf=(--global_pool) what=", mean of patch tokens"
    done_ "$n-knn" || { timed "$n-knn" "$MAE" knn "${kf[@]}" "${pf[@]}" "$@";
      row "$n-knn" "k-NN (k 20, T 0.07)$what" "-" "$(acc_of "$n-knn" 'top-1 [0-9.]+')" "$secs"; }
    done_ "$n-lin" || { timed "$n-lin" "$MAE" linprobe "${lf[@]}" "${pf[@]}" --cache_features --blr 1.0 --seed 0 \
        --output_dir "$OUT/$n-lin" "$@";
      row "$n-lin" "linear probe (cached features, 90 ep)$what" "90" \
        "$(acc_of "$n-lin" 'test images: [0-9.]+')" "$secs"; }
  done
}

pretrain pt75 0.75 --norm_pix_loss
pretrain pt50 0.5 --norm_pix_loss
pretrain pt90 0.9 --norm_pix_loss
pretrain pt75pix 0.75

# baselines for the probes: the normalised image itself, and the same encoder at its official random init
if want raw; then probe raw "" --model $MODEL --raw_pixels; fi
if want rand; then probe rand "" --model $MODEL --random_init; fi

# --- fine-tuning: from the MAE encoder vs from scratch, same recipe and budget ---
finetune() {  # name extra-flags...
  local name=$1; shift
  want "$name" || return 0
  done_ "$name" && return 0
  timed "$name" "$MAE" finetune "$@" --batch_size 256 --epochs "$FT_EPOCHS" --warmup_epochs 1 --blr 1e-3 \
    --layer_decay 0.75 --drop_path 0.1 --seed 0 --output_dir "$OUT/$name" --resume auto --print_every_s 60
  row "$name" "fine-tune $*" "$FT_EPOCHS" "$(acc_of "$name" 'max accuracy [0-9.]+')" "$secs"
}
finetune ft_mae --finetune "$OUT/pt75/checkpoint-last.safetensors"
finetune ft_scratch --model $MODEL
# the same pair with RandAugment and random erasing off: the ImageNet recipe's augmentation is heavy for 28-px images
finetune ft_mae_light --finetune "$OUT/pt75/checkpoint-last.safetensors" --aa none --reprob 0
finetune ft_scratch_light --model $MODEL --aa none --reprob 0

{
  echo "| run | what | epochs | top-1 (%) | wall time |"
  echo "|---|---|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %d min %02d s |\n", $1, $2, $3, $4, $5/60, $5%60 }' "$res"
} > "$OUT/results.md"
cat "$OUT/results.md"
exit
}
