#!/usr/bin/env bash
# Throughput of `mae bench` against the PyTorch reference (bench/torch_bench.py) on the issue's three configs,
# run alternately in the same session, printed as one markdown table.
#
#   bench/compare.sh [--quick] [--save]
#     --quick  one config (mae_vit_fmnist, batch 256), 2 steps: a smoke run
#     --save   also write the table and the raw JSON lines under bench/results/
#   env: THREADS (2), MAE_BIN (build/mae), TORCH_PYTHON (/usr/bin/python3), OMP_WAIT_POLICY (PASSIVE)
#
# Fairness: both processes get the same OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / OMP_WAIT_POLICY / OPENBLAS_*
# environment and the same LD_LIBRARY_PATH (OpenBLAS OpenMP build); `mae --threads T` and torch.set_num_threads(T)
# (inside torch_bench.py) pin both to T threads. Each round alternates which side runs first.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
MAE_BIN=${MAE_BIN:-$ROOT/build/mae}
PY=${TORCH_PYTHON:-/usr/bin/python3}
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
MASK=0.75

quick=0
save=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --save) save=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# model batch steps warmup rounds: enough steps on fmnist for a stable median, few on the big ones (< 10 min
# in all on 2 cores).
if ((quick)); then
  CONFIGS=("mae_vit_fmnist 256 2 1 1")
else
  CONFIGS=("mae_vit_fmnist 256 5 1 2"
           "mae_vit_tiny_patch16 32 3 1 1"
           "mae_vit_base_patch16 8 3 1 1")
fi

die() { echo "compare.sh: $*" >&2; exit 1; }
[[ -x $MAE_BIN ]] || die "no mae binary at $MAE_BIN (build it: cmake -S . -B build -G Ninja && ninja -C build mae; or set MAE_BIN)"
[[ -x $PY ]] || die "no python at $PY (set TORCH_PYTHON)"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$THREADS'"

# One environment for both sides.
RUN_ENV=(env "LD_LIBRARY_PATH=$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
         "OMP_NUM_THREADS=$THREADS" "OPENBLAS_NUM_THREADS=$THREADS" "OMP_WAIT_POLICY=$WAIT_POLICY")

# Which BLAS torch would load: refuse the reference BLAS (or one we cannot identify), timings would be meaningless.
torch_probe=$("${RUN_ENV[@]}" "$PY" - "$ROOT/bench" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import torch, torch_bench
kind, _, libs, _ = torch_bench.blas_description(torch)
# The vector ISA of torch's own (non-BLAS) kernels: 1.13 picks AVX2 even on AVX-512 CPUs unless
# ATEN_CPU_CAPABILITY=avx512 is set.
cap = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability usage" in l]
print(kind, (cap or ["?"])[0], torch.__version__, " ".join(libs) or "-")
EOF
) || die "cannot import torch with $PY"
read -r torch_blas torch_cap torch_version torch_libs <<<"$torch_probe"
case $torch_blas in
  reference-blas) die "refusing to run: torch would use the REFERENCE BLAS ($torch_libs); timings would be meaningless.
Install libopenblas0-openmp (Debian) so that $OPENBLAS_DIR/libblas.so.3 exists." ;;
  unknown) die "refusing to run: cannot tell which BLAS torch uses (no BLAS library mapped)." ;;
  openblas-openmp) ;;
  *) echo "compare.sh: warning: torch uses $torch_blas ($torch_libs), not the OpenMP OpenBLAS mae uses" >&2 ;;
esac

# Which BLAS mae loads, resolved by the loader under the same environment.
mae_lib=$("${RUN_ENV[@]}" ldd "$MAE_BIN" | awk '/blas|blis|mkl/ {print $3; exit}')
[[ -n $mae_lib ]] || die "cannot find the BLAS library of $MAE_BIN with ldd"
mae_lib=$(readlink -f "$mae_lib")
case $mae_lib in
  */blas/libblas*) die "refusing to run: $MAE_BIN would use the REFERENCE BLAS ($mae_lib)" ;;
  *openblas-openmp*) mae_blas=openblas-openmp ;;
  *openblas-pthread*) mae_blas=openblas-pthread ;;
  *blis*) mae_blas=blis ;;
  *) mae_blas=$(basename "$mae_lib") ;;
esac

# The OpenBLAS kernel set both sides get (OPENBLAS_CORETYPE overrides the CPU detection).
openblas_core=$("${RUN_ENV[@]}" "$PY" -c "
import ctypes
lib = ctypes.CDLL('$OPENBLAS_DIR/libopenblas.so.0')
lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())" 2>/dev/null || echo "?")

raw=$(mktemp)
errlog=$(mktemp)
trap 'rm -f "$raw" "$errlog"' EXIT

# run_one IMPL MODEL BATCH STEPS WARMUP: append the JSON line to $raw.
run_one() {
  local impl=$1 model=$2 batch=$3 steps=$4 warmup=$5 out t0=$SECONDS
  if [[ $impl == mae ]]; then
    out=$("${RUN_ENV[@]}" "$MAE_BIN" bench --model "$model" --batch_size "$batch" --threads "$THREADS" \
          --mask_ratio $MASK --norm_pix_loss true --steps "$steps" --warmup "$warmup" --gemm_limit --json 2>"$errlog") \
      || { cat "$errlog" >&2; die "mae bench failed on $model"; }
  else
    out=$("${RUN_ENV[@]}" "$PY" "$ROOT/bench/torch_bench.py" --model "$model" --batch_size "$batch" \
          --threads "$THREADS" --mask_ratio $MASK --norm_pix_loss --steps "$steps" --warmup "$warmup" --json \
          2>"$errlog") || { cat "$errlog" >&2; die "torch_bench.py failed on $model"; }
  fi
  out=$(tail -n 1 <<<"$out")
  [[ $out == \{* ]] || { cat "$errlog" >&2; die "$impl printed no JSON line for $model: $out"; }
  [[ $out != *'"reference-blas"'* ]] || die "refusing the result: $impl ran on the reference BLAS"
  echo "$out" >>"$raw"
  echo "  $impl $model b$batch: $((SECONDS - t0)) s" >&2
}

start=$SECONDS
echo "compare.sh: threads $THREADS, OMP_WAIT_POLICY=$WAIT_POLICY, OpenBLAS core $openblas_core, torch $torch_version ($torch_cap)" >&2
for cfg in "${CONFIGS[@]}"; do
  read -r model batch steps warmup rounds <<<"$cfg"
  for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order=(mae torch); else order=(torch mae); fi
    for impl in "${order[@]}"; do run_one "$impl" "$model" "$batch" "$steps" "$warmup"; done
  done
done
elapsed=$((SECONDS - start))

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
steps_desc=$(for cfg in "${CONFIGS[@]}"; do read -r m _ s w r <<<"$cfg"; printf '%s %s steps after %s warmup x %s round(s); ' "$m" "$s" "$w" "$r"; done)
steps_desc=${steps_desc%; }
table=$("$PY" - "$raw" <<EOF
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
order = []
for r in rows:
    if r["model"] not in order:
        order.append(r["model"])
def agg(model, impl):
    rs = [r for r in rows if r["model"] == model and r["impl"] == impl]
    med = lambda k: statistics.median(r[k] for r in rs)
    keys = ("train_img_s", "fwd_img_s", "train_gflops", "fwd_gflops") + (("gemm_share",) if impl == "mae" else ())
    return {k: med(k) for k in keys} | {
        "peak_rss_mib": max(r["peak_rss_mib"] for r in rs), "batch": rs[0]["batch"], "threads": rs[0]["threads"],
        "blas": rs[0]["blas"]}
print("$(date -u '+%Y-%m-%d %H:%M UTC'), $cpu, threads $THREADS, OMP_WAIT_POLICY=$WAIT_POLICY, "
      "OpenBLAS core $openblas_core (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}), torch $torch_version "
      "(CPU capability $torch_cap), mask $MASK, norm_pix_loss on")
print()
print("| config | batch | threads | ours train img/s | torch train img/s | ratio | ours fwd img/s | torch fwd img/s "
      "| ratio | ours train GFLOP/s | torch train GFLOP/s | ours: share of the GEMM limit | peak RSS ours / torch (MiB) "
      "| BLAS ours / torch |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
notes = []
for m in order:
    a, t = agg(m, "mae"), agg(m, "torch")
    if a["threads"] != t["threads"]:
        notes.append(f"{m}: thread counts differ (mae {a['threads']}, torch {t['threads']})")
    # Both sides count GEMM FLOPs analytically; the counts per image must agree for the GFLOP/s columns to compare.
    fa, ft = a["train_gflops"] / a["train_img_s"], t["train_gflops"] / t["train_img_s"]
    if abs(fa - ft) > 0.01 * ft:
        notes.append(f"{m}: FLOP counts differ (mae {fa:.3f}, torch {ft:.3f} GFLOP per image per step)")
    print(f"| {m} | {a['batch']} | {a['threads']} | {a['train_img_s']:.1f} | {t['train_img_s']:.1f} | "
          f"{a['train_img_s'] / t['train_img_s']:.2f} | {a['fwd_img_s']:.1f} | {t['fwd_img_s']:.1f} | "
          f"{a['fwd_img_s'] / t['fwd_img_s']:.2f} | {a['train_gflops']:.1f} | {t['train_gflops']:.1f} | "
          f"{100 * a['gemm_share']:.1f} % | {a['peak_rss_mib']:.0f} / {t['peak_rss_mib']:.0f} | $mae_blas / {t['blas']} |")
print()
print("ratio = ours / torch (> 1: mae is faster). Per run, mae reports the median step time and torch_bench.py "
      "the mean; across rounds the median of the runs is shown, peak RSS the max.")
print("Share of the GEMM limit (mae bench --gemm_limit): the step's linear-layer GEMMs timed alone on their full "
      "shapes, a round after each step in the same process, over the step's time.")
print("Steps: $steps_desc")
print("mae BLAS: $mae_lib; torch BLAS: $torch_libs")
hosts = sorted({r["host"] for r in rows if r["impl"] == "mae" and "host" in r})
for h in hosts:
    print("mae host: " + h)
for n in notes:
    print("WARNING: " + n)
EOF
)
echo
echo "$table"
echo "compare.sh: done in ${elapsed} s" >&2

if ((save)); then
  mkdir -p "$ROOT/bench/results"
  stamp=$(date -u +%Y%m%d-%H%M%S)
  echo "$table" >"$ROOT/bench/results/compare-$stamp.md"
  cp "$raw" "$ROOT/bench/results/compare-$stamp.jsonl"
  echo "compare.sh: wrote bench/results/compare-$stamp.md and .jsonl" >&2
fi
