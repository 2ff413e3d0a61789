#!/usr/bin/env bash
# Issue 20's CPU targets measured on this host in one run, for a session lent a CPU the earlier ones lacked (AVX-512
# with avx512_bf16 or AMX, where the bf16 targets can be measured at all):
#   1. mae against PyTorch, training and forward, and the step's share of its GEMM limit   (compare.sh)
#   2. the inference forward's GEMM library, oneDNN against OpenBLAS batches alternating    (mae bench --features --inference_gemm ab)
#   3. the forward on all tokens against ONNX Runtime and PyTorch                          (onnx_vs_embed.sh)
#   4. where the CPU has native bf16 GEMMs: bf16 against fp32 and the bf16 accuracy check  (precision_compare.sh, bf16_accuracy.sh)
# Each part prints its host (CPU model, vector extensions, OpenBLAS core, oneDNN ISA); all of it goes to one file.
#
#   bench/cpu_targets.sh [--quick]      env: MAE_BIN (build/mae), THREADS (2)
#     writes bench/results/cpu-targets-<UTC stamp>.md; ~35 min on 2 cores, ~25 more with bf16 (its accuracy check
#     pretrains twice); --quick: one config and short runs of each part (~3 min), a smoke test of this script.
# The targets (issue 20): fp32 step ≥ 85 % of the GEMM limit on every preset; mae_vit_fmnist b256 ≥ 2.0× PyTorch;
# bf16 step ≥ 1.6× own fp32 on tiny and base, loss within 1 % and k-NN within 0.3 points after 500 steps; forward
# ≥ 1.5× PyTorch on every preset and ahead of ONNX Runtime, ≥ 1.5× ONNX Runtime with bf16.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAE_BIN=${MAE_BIN:-$ROOT/build/mae}
THREADS=${THREADS:-2}
quick=0
case ${1:-} in
  --quick) quick=1 ;;
  "") ;;
  *) echo "cpu_targets.sh: unknown argument '$1' (try: sed -n 2,17p $0)" >&2; exit 2 ;;
esac
[ -x "$MAE_BIN" ] || { echo "cpu_targets.sh: no mae at $MAE_BIN (build it, or set MAE_BIN)" >&2; exit 2; }
out=$ROOT/bench/results/cpu-targets-$(date -u +%Y%m%d-%H%M%S).md
[ $quick = 1 ] && out=$(mktemp --suffix=.md)
export MAE_BIN THREADS

section() { printf '\n## %s\n\n```\n' "$1"; }
end() { printf '```\n'; }
{
  echo "# Issue 20's CPU targets on this host, $(date -u '+%Y-%m-%d %H:%M UTC') ($(git -C "$ROOT" rev-parse --short HEAD))"
  echo
  echo "Host: $("$MAE_BIN" bench --model mae_vit_fmnist_small --batch_size 1 --steps 1 --warmup 0 --threads 1 2>&1 |
    sed -n 's/^host: *//p'); \`OPENBLAS_CORETYPE\`=${OPENBLAS_CORETYPE:-unset}; $THREADS threads; load $(cut -d' ' -f1-3 /proc/loadavg)"

  section "1. mae against PyTorch (bench/compare.sh$([ $quick = 1 ] && echo ' --quick'))"
  if [ $quick = 1 ]; then "$ROOT/bench/compare.sh" --quick 2>&1; else "$ROOT/bench/compare.sh" --save 2>&1; fi
  end

  section "2. the inference forward: oneDNN against OpenBLAS batches, alternating (mae bench --features --inference_gemm ab)"
  if [ $quick = 1 ]; then configs=("mae_vit_fmnist 256 3"); else
    configs=("mae_vit_fmnist 256 11" "mae_vit_tiny_patch16 8 11" "mae_vit_tiny_patch16 32 5" "mae_vit_base_patch16 8 5"); fi
  for c in "${configs[@]}"; do
    read -r model batch steps <<<"$c"
    echo "\$ mae bench --features --model $model --batch_size $batch --threads $THREADS --steps $steps --warmup 2 --inference_gemm ab"
    "$MAE_BIN" bench --features --model "$model" --batch_size "$batch" --threads "$THREADS" --steps "$steps" --warmup 2 \
      --inference_gemm ab 2>&1 | grep -E "^(features|OpenBLAS):|error" || true
  done
  end

  section "3. the forward on all tokens against ONNX Runtime and PyTorch (bench/onnx_vs_embed.sh)"
  if [ $quick = 1 ]; then configs=("mae_vit_fmnist 256 256"); else
    configs=("mae_vit_fmnist 2048 256" "mae_vit_tiny_patch16 64 8" "mae_vit_base_patch16 32 8"); fi
  for c in "${configs[@]}"; do
    read -r model n batch <<<"$c"
    "$ROOT/bench/onnx_vs_embed.sh" "$MAE_BIN" "$model" "$n" "$batch" "$THREADS" 2>&1 || echo "(onnx_vs_embed.sh failed: see above)"
  done
  end

  section "4. bf16 on the CPU"
  if ! why=$("$MAE_BIN" bench --model mae_vit_fmnist_small --batch_size 2 --steps 1 --warmup 0 --threads 1 \
             --precision bf16 2>&1 >/dev/null); then
    echo "not measurable on this host: $(grep -o 'mae: error: .*' <<<"$why")"
  elif [ $quick = 1 ]; then
    "$ROOT/bench/precision_compare.sh" fmnist 2>&1
  else
    ROUNDS=2 "$ROOT/bench/precision_compare.sh" 2>&1
    "$ROOT/bench/bf16_accuracy.sh" 2>&1
  fi
  end
} | tee "$out"
echo "cpu_targets.sh: wrote $out" >&2
