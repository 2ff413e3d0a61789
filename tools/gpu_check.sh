#!/usr/bin/env bash
# One-shot check of the CUDA backend on a lent GPU machine (nvcc, CMake, ninja, PyTorch with CUDA; no apt, no
# internet). Needs gpu_deps/ (tools/gpu_bundle.sh, made on the Debian build machine and carried along).
#   1. nvidia-smi
#   2. configure + build with CUDA (sm_90 only, to save time) against gpu_deps/
#   3. test_cuda_ops (every CUDA op vs the CPU op, the model vs the PyTorch fixtures), test_parity, and
#      tests/cuda_pretrain.sh (exact resume on the GPU, --cuda_graph == eager, bf16 trains, fine-tune runs)
#   4. mae_vit_base_patch16 pretraining step at batch 128 on our CUDA backend, fp32, bf16 and bf16 with --cuda_graph
#   5. the same in PyTorch (bench/torch_gpu_bench.py: bf16 autocast, SDPA, fused AdamW; eager and torch.compile)
#   6. ONE table: img/s, ratio to torch eager / compile, MFU vs a measured bf16 8192³ GEMM, peak memory
#   7. if time is left: GPU time per op (mae bench --profile) of the bf16 step
#   8. if time is left: bf16 vs fp32 loss over a few hundred pretraining steps of a tiny model (synthetic IDX data)
#   9. if time is left: knn (cuda and cpu), reconstruct and a 2-epoch bf16 fine-tune on the GPU from that checkpoint
#  10. if time is left: compute-sanitizer memcheck and racecheck of the kernel tests
# Everything (log, JSON, table) goes to $OUT (default ./gpu_out). Each stage has its own timeout; the whole
# script is meant to finish within ~8 minutes and never stops at the first failure (the summary says what failed).
set -uo pipefail
OUT=${OUT:-./gpu_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
cd "$(dirname "$0")/.."
T0=$SECONDS
BUDGET=${GPU_CHECK_BUDGET_S:-480}
JOBS=${JOBS:-$(nproc)}
PY=${PYTHON:-python3}
declare -a FAILED=()
stage() { echo; echo "=== [$((SECONDS - T0)) s] $*"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
run() {  # run NAME TIMEOUT CMD...: logs, records failures, never exits
  local name=$1 t=$2
  shift 2
  timeout "$t" "$@"
  local rc=$?
  [ $rc -eq 0 ] || { echo "!!! $name failed (rc $rc)"; FAILED+=("$name(rc $rc)"); }
  return $rc
}

stage "nvidia-smi"
nvidia-smi || FAILED+=("nvidia-smi")

stage "configure + build"
[ -d gpu_deps ] || { echo "gpu_deps/ is missing: run tools/gpu_bundle.sh on the build machine and carry gpu_deps"; exit 2; }
export LD_LIBRARY_PATH="$PWD/gpu_deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
GEN=Ninja; command -v ninja > /dev/null || GEN="Unix Makefiles"
run configure 120 cmake -S . -B build-gpu -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DMAE_DEPS_PREFIX=gpu_deps \
  -DMAE_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES=90 -DMAE_WITH_MPI=OFF > "$OUT/configure.log" 2>&1
tail -5 "$OUT/configure.log"
run build "${GPU_CHECK_BUILD_TIMEOUT_S:-300}" cmake --build build-gpu -j "$JOBS" --target mae test_cuda_ops test_parity > "$OUT/build.log" 2>&1
grep -E "error|warning: " "$OUT/build.log" | head -20
tail -3 "$OUT/build.log"
MAE=build-gpu/mae

stage "tests"
if [ -x build-gpu/tests/test_cuda_ops ]; then
  run test_cuda_ops 180 build-gpu/tests/test_cuda_ops --gtest_output=json:"$OUT/test_cuda_ops.json" \
    > "$OUT/test_cuda_ops.log" 2>&1
  grep -E "^\[  (FAILED|  OK|SKIPPED|PASSED) |Failure|Expected|Which is|rel_l2|error" "$OUT/test_cuda_ops.log" | head -60
  # Tests skip without a usable device (e.g. a driver older than this CUDA runtime): skipped is not passed.
  if grep -q "SKIPPED" "$OUT/test_cuda_ops.log"; then
    echo "!!! CUDA tests were SKIPPED: no usable device for this build"; grep -m3 "no CUDA device" "$OUT/test_cuda_ops.log"
    FAILED+=("test_cuda_ops(skipped)")
  fi
  run test_parity 120 build-gpu/tests/test_parity > "$OUT/test_parity.log" 2>&1
  tail -3 "$OUT/test_parity.log"
  # end to end on the GPU: exact resume, --cuda_graph == eager bit for bit, bf16 trains, fine-tune runs
  run cuda_pretrain 150 bash tests/cuda_pretrain.sh "$PWD/build-gpu/mae" "$PWD" > "$OUT/cuda_pretrain.log" 2>&1
  grep -E "^(ok|FAIL|skipped)|passed" "$OUT/cuda_pretrain.log"
else
  FAILED+=("tests(not built)")
fi

stage "mae bench, mae_vit_base_patch16, batch 128"
for prec in fp32 bf16; do
  run "mae_bench_$prec" 150 "$MAE" bench --device cuda --precision "$prec" --model mae_vit_base_patch16 \
    --batch_size 128 --steps 10 --warmup 3 --json > "$OUT/mae_$prec.json"
  cat "$OUT/mae_$prec.json"
done
run mae_bench_bf16_graph 150 "$MAE" bench --device cuda --precision bf16 --cuda_graph --model mae_vit_base_patch16 \
  --batch_size 128 --steps 10 --warmup 3 --json > "$OUT/mae_bf16_graph.json"
cat "$OUT/mae_bf16_graph.json"
# the same with the cuBLAS attention path (bf16 batched GEMMs on tensor cores, scores in global memory) instead of
# the fused fp32 kernel: which one is faster decides the default
run mae_bench_bf16_cublas_attn 150 env MAE_CUDA_ATTENTION=cublas "$MAE" bench --device cuda --precision bf16 \
  --model mae_vit_base_patch16 --batch_size 128 --steps 10 --warmup 3 --json > "$OUT/mae_bf16_cublasattn.json"
cat "$OUT/mae_bf16_cublasattn.json"

stage "small model (mae_vit_fmnist, batch 256): eager vs --cuda_graph, where launch overhead matters"
for g in "" --cuda_graph; do
  run "mae_bench_fmnist${g:+_graph}" 60 "$MAE" bench --device cuda --precision bf16 $g --model mae_vit_fmnist \
    --batch_size 256 --steps 20 --warmup 5 --json >> "$OUT/mae_fmnist.jsonl"
done
cat "$OUT/mae_fmnist.jsonl"

stage "PyTorch baseline (eager, torch.compile)"
t=$(( $(left) - 90 )); [ $t -gt 240 ] && t=240
if [ $t -gt 30 ]; then
  run torch_bench "$t" "$PY" bench/torch_gpu_bench.py --model mae_vit_base_patch16 --batch_size 128 --steps 10 \
    --warmup 4 > "$OUT/torch.jsonl"
  cat "$OUT/torch.jsonl"
else
  echo "skipped: not enough time left"; FAILED+=("torch_bench(skipped)")
fi

stage "table"
"$PY" - "$OUT" <<'PYEOF' | tee "$OUT/table.md"
import json, os, sys
out = sys.argv[1]
def load(p):
    try:
        with open(os.path.join(out, p)) as f:
            return [json.loads(l) for l in f if l.strip().startswith("{")]
    except OSError:
        return []
ours = {p: (load(f"mae_{p}.json") or [None])[0] for p in ("fp32", "bf16", "bf16_graph", "bf16_cublasattn")}
torch_rows = load("torch.jsonl")
gemm = next((r["tflops"] for r in torch_rows if r.get("what") == "gemm"), None)
tr = {r["mode"]: r for r in torch_rows if r.get("what") == "train"}
info = next((r for r in torch_rows if r.get("what") == "info"), {})
eager = tr.get("eager", {}).get("img_s")
comp = tr.get("compile", {}).get("img_s")
gflop_per_img = None
for r in ours.values():
    if r and r.get("train_img_s"):
        gflop_per_img = r["train_gflops"] / r["train_img_s"]
rows = []
for p, r in ours.items():
    name = "mae CUDA " + p.replace("_cublasattn", " (cuBLAS attention)").replace("_graph", " (--cuda_graph)")
    if r: rows.append((name, r["train_img_s"], r.get("peak_device_mib")))
    elif p in ("fp32", "bf16"): rows.append((name, None, None))
for m in ("eager", "compile"):
    r = tr.get(m, {})
    rows.append((f"torch {m} (bf16 autocast, SDPA)", r.get("img_s"), r.get("peak_mem_mib")))
f = lambda x, fmt: (fmt % x) if isinstance(x, (int, float)) else "n/a"
print(f"MAE ViT-B/16 pretraining step (fwd+bwd+AdamW), batch 128, mask 0.75, norm_pix; GPU {info.get('gpu','?')}, "
      f"torch {info.get('torch','?')}; MFU peak = measured bf16 8192^3 GEMM {f(gemm, '%.0f')} TFLOP/s; "
      f"{f(gflop_per_img, '%.1f')} GFLOP/img (3x forward GEMM FLOPs)")
print()
print("| implementation | img/s | vs torch eager | vs torch compile | MFU | peak memory (MiB) |")
print("|---|---:|---:|---:|---:|---:|")
for name, ips, mem in rows:
    mfu = ips * gflop_per_img * 1e9 / (gemm * 1e12) if (ips and gflop_per_img and gemm) else None
    print(f"| {name} | {f(ips, '%.1f')} | {f(ips / eager if ips and eager else None, '%.2fx')} | "
          f"{f(ips / comp if ips and comp else None, '%.2fx')} | {f(mfu * 100 if mfu else None, '%.1f%%')} | {f(mem, '%.0f')} |")
for m in ("eager", "compile"):
    if "error" in tr.get(m, {}): print(f"\ntorch {m}: {tr[m]['error']}")
print("\n(mae peak memory: our allocations (params, grads, AdamW moments, activations, scratch), cuBLAS workspace "
      "excluded; torch: torch.cuda.max_memory_allocated)")
PYEOF

stage "GPU time per op (mae bench --profile), bf16, batch 128"
if [ "$(left)" -gt 150 ]; then
  run mae_profile 90 "$MAE" bench --device cuda --precision bf16 --model mae_vit_base_patch16 --batch_size 128 \
    --steps 2 --warmup 2 --profile > "$OUT/profile_bf16.md"
  cat "$OUT/profile_bf16.md"
  run mae_profile_cublas_attn 90 env MAE_CUDA_ATTENTION=cublas "$MAE" bench --device cuda --precision bf16 \
    --model mae_vit_base_patch16 --batch_size 128 --steps 2 --warmup 2 --profile > "$OUT/profile_bf16_cublasattn.md"
  grep -E "^\| attention|GPU time per op" "$OUT/profile_bf16_cublasattn.md"
else
  echo "skipped: not enough time left"
fi

stage "bf16 vs fp32 loss, tiny model, synthetic IDX data"
if [ "$(left)" -gt 60 ]; then
  data="$OUT/tiny_idx"
  "$PY" tools/make_tiny_idx.py "$data" --n 2048 --n_test 64 > /dev/null
  for prec in fp32 bf16; do
    t=$(( ($(left) - 10) / 2 )); [ $t -gt 90 ] && t=90
    run "loss_$prec" "$t" "$MAE" pretrain --device cuda --precision "$prec" --model mae_vit_fmnist_small \
      --data_path "$data" --batch_size 128 --epochs 40 --max_steps 300 --blr 1.5e-4 --warmup_epochs 2 \
      --norm_pix_loss --save_every 0 --output_dir "$OUT/loss_$prec" --print_every_s 30 > "$OUT/loss_$prec.log" 2>&1
    tail -2 "$OUT/loss_$prec.log"
  done
  "$PY" - "$OUT" <<'PYEOF' | tee -a "$OUT/table.md"
import json, os, sys
out = sys.argv[1]
def rows(p):
    try:
        return [json.loads(l) for l in open(os.path.join(out, p, "metrics.jsonl")) if l.strip()]
    except OSError:
        return []
a, b = rows("loss_fp32"), rows("loss_bf16")
print("\n| step | loss fp32 | loss bf16 | rel diff |\n|---:|---:|---:|---:|")
for ra, rb in list(zip(a, b))[::5] + list(zip(a, b))[-1:]:
    print(f"| {ra['step']} | {ra['loss']:.4f} | {rb['loss']:.4f} | {abs(ra['loss'] - rb['loss']) / abs(ra['loss']):.2%} |")
PYEOF
else
  echo "skipped: not enough time left"
fi

stage "the other commands on the GPU (smoke: they run and agree with the CPU on the same checkpoint)"
ck="$OUT/loss_fp32/checkpoint-last.safetensors"
if [ -f "$ck" ] && [ "$(left)" -gt 45 ]; then
  data="$OUT/tiny_idx"
  for dev in cuda cpu; do
    run "knn_$dev" 30 "$MAE" knn --device "$dev" --checkpoint "$ck" --data_path "$data" --batch_size 128 \
      > "$OUT/knn_$dev.log" 2>&1
    grep -iE "accuracy|top-1|acc" "$OUT/knn_$dev.log" | tail -1
  done
  run reconstruct_cuda 30 "$MAE" reconstruct --device cuda --checkpoint "$ck" --data_path "$data" \
    --output "$OUT/reconstruct_cuda.png" > "$OUT/reconstruct_cuda.log" 2>&1
  tail -1 "$OUT/reconstruct_cuda.log"
  run finetune_cuda 60 "$MAE" finetune --device cuda --precision bf16 --finetune "$ck" --data_path "$data" \
    --epochs 2 --batch_size 64 --blr 1e-3 --output_dir "$OUT/finetune_cuda" --print_every_s 30 \
    > "$OUT/finetune_cuda.log" 2>&1
  grep -E "^epoch [0-9]+:" "$OUT/finetune_cuda.log" | tail -2
else
  echo "skipped (no pretraining checkpoint from the loss stage, or no time left)"
fi

stage "compute-sanitizer memcheck / racecheck of the kernel tests (if time is left)"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2> /dev/null)
if [ -n "$SAN" ] && [ -x build-gpu/tests/test_cuda_ops ] && [ "$(left)" -gt 60 ]; then
  for tool in memcheck racecheck; do
    t=$(( ($(left) - 10) / 2 )); [ $t -gt 120 ] && t=120; [ $t -lt 20 ] && break
    run "sanitizer_$tool" "$t" "$SAN" --tool "$tool" --error-exitcode 9 build-gpu/tests/test_cuda_ops \
      --gtest_filter='Cuda.Linear*:Cuda.LayerNorm:Cuda.ResidualLayerNorm:Cuda.GeluAddResidual:Cuda.Attention:Cuda.Loss:Cuda.Patches:Cuda.EncoderDecoderEmbed:Cuda.AdamW*' \
      > "$OUT/sanitizer_$tool.log" 2>&1
    tail -3 "$OUT/sanitizer_$tool.log"
  done
else
  echo "skipped (no compute-sanitizer, no test binary or no time left)"
fi

stage "done in $((SECONDS - T0)) s"
if [ ${#FAILED[@]} -eq 0 ]; then echo "ALL OK"; else echo "FAILED: ${FAILED[*]}"; fi
echo "log, JSON and table under $OUT"
