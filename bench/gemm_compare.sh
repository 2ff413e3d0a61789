#!/usr/bin/env bash
# Runs gemm_shapes for each GEMM library variant and thread count and prints one markdown table of GFLOP/s per
# shape (median of 3), the per-block totals, and the host (CPU model, vector extensions, OpenBLAS core, oneDNN ISA).
#
#   cmake -S bench -B build-bench -G Ninja && ninja -C build-bench
#   bench/gemm_compare.sh [VARIANT...]
#     variants: openblas       OpenBLAS OpenMP, environment as is (OPENBLAS_CORETYPE honoured)
#               openblas-auto  OpenBLAS OpenMP with OPENBLAS_CORETYPE unset (its own CPU detection)
#               dnnl           oneDNN matmul, f32 operands (mae's wrapper, src/ops/cpu/dnnl_matmul.cpp)
#               dnnl-bf16      oneDNN matmul, bf16 operands, f32 accumulation and output (--precision bf16)
#               blis           BLIS OpenMP, its own CPU detection
#               blis-skx       BLIS OpenMP, BLIS_ARCH_TYPE=0 (skx kernels)
#               blis-zen3      BLIS OpenMP, BLIS_ARCH_TYPE=6 (zen3 kernels)
#               mkl            Intel MKL (Debian non-free libmkl-rt), GNU OpenMP threading layer
#     default: openblas openblas-auto dnnl dnnl-bf16 (BLIS lost on every block in the 2026-11-28 table)
#   env: THREADS ("1 2": one column per variant and thread count), BUILD (build-bench), MIN_TIME (0.2 s per
#        repetition), FILTER (regex of benchmark names), ROUNDS (1: with more, each variant runs that many times,
#        interleaved with the others, and the table keeps the best median, for a shared machine)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-"1 2"}
BUILD=${BUILD:-$ROOT/build-bench}
MIN_TIME=${MIN_TIME:-0.2}
FILTER=${FILTER:-.}
ROUNDS=${ROUNDS:-1}
variants=("$@")
((${#variants[@]})) || variants=(openblas openblas-auto dnnl dnnl-bf16)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
columns=()
for v in "${variants[@]}"; do for t in $THREADS; do columns+=("$v@$t"); done; done
for ((r = 1; r <= ROUNDS; r++)); do
  for col in "${columns[@]}"; do
    v=${col%@*} t=${col#*@}
    case $v in
      openblas)      cmd=(env "$BUILD/gemm_shapes_openblas") ;;
      openblas-auto) cmd=(env -u OPENBLAS_CORETYPE "$BUILD/gemm_shapes_openblas") ;;
      dnnl)          cmd=(env "$BUILD/gemm_shapes_dnnl" --dtype=f32) ;;
      dnnl-bf16)     cmd=(env "$BUILD/gemm_shapes_dnnl" --dtype=bf16) ;;
      blis)          cmd=(env -u BLIS_ARCH_TYPE "$BUILD/gemm_shapes_blis") ;;
      blis-skx)      cmd=(env BLIS_ARCH_TYPE=0 "$BUILD/gemm_shapes_blis") ;;
      blis-zen3)     cmd=(env BLIS_ARCH_TYPE=6 "$BUILD/gemm_shapes_blis") ;;
      mkl)           cmd=(env "$BUILD/gemm_shapes_mkl") ;;
      *) echo "gemm_compare.sh: unknown variant '$v' (try: sed -n 2,20p $0)" >&2; exit 2 ;;
    esac
    echo "gemm_compare.sh: round $r, $v, $t threads (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "${cmd[@]}" --threads="$t" --benchmark_min_time="$MIN_TIME" --benchmark_repetitions=3 \
      --benchmark_filter="$FILTER" --benchmark_report_aggregates_only=true --benchmark_format=json \
      >"$tmp/$col.$r.json" 2>"$tmp/$col.$r.err" || { cat "$tmp/$col.$r.err" >&2; exit 1; }
    echo "$(cut -d' ' -f1 /proc/loadavg)" >"$tmp/$col.$r.load"
  done
done

python3 - "$tmp" "$ROUNDS" "${columns[@]}" <<'PYEOF'
import json, os, re, sys
tmp, rounds, cols = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res, ctx, label, loads = {}, {}, {}, {}
for c in cols:
    for r in range(1, rounds + 1):
        d = json.load(open(os.path.join(tmp, f"{c}.{r}.json")))
        ctx.setdefault(c, d["context"])   # the first round's: its date and load at start
        loads.setdefault(c, []).append(open(os.path.join(tmp, f"{c}.{r}.load")).read().strip())
        for b in d["benchmarks"]:
            if b.get("aggregate_name") == "median":
                name = b["run_name"].removesuffix("/real_time")
                cur = res.setdefault(name, {}).get(c)
                if cur is None or b["GFLOPS"] / 1e9 > cur[0]:   # best of the rounds
                    res[name][c] = (b["GFLOPS"] / 1e9, b["real_time"])  # real_time in ms
                if b.get("label"):
                    label.setdefault(name, {})[c] = b["label"]
print("GFLOP/s (column: variant@threads):")
print()
print("| shape (M×N×K) | " + " | ".join(cols) + " |")
print("|---|" + "---:|" * len(cols))
part_of = lambda n: n.split("/")[0] + "/" + n.split("/")[1] if not n.startswith("square") else None
parts = {}
for name, per in res.items():
    print(f"| {name} | " + " | ".join(f"{per[c][0]:.1f}" if c in per else "-" for c in cols) + " |")
    p = part_of(name)
    if p and "/attn/" not in name:   # linear layers: fwd + dX + dW of qkv, proj, fc1, fc2 = one block's training
        m, n, k = map(int, re.search(r":(\d+)x(\d+)x(\d+)$", name).groups())
        for c in cols:
            if c not in per: continue
            f, t = parts.setdefault(p, {}).setdefault(c, [0.0, 0.0])
            parts[p][c] = [f + 2.0 * m * n * k, t + per[c][1] / 1e3]
print()
print("Linear layers of one transformer block, training (fwd + dX + dW of qkv, proj, fc1, fc2), "
      "total FLOPs / total time, GFLOP/s:")
print()
print("| block | " + " | ".join(cols) + " |")
print("|---|" + "---:|" * len(cols))
for p, per in parts.items():
    print(f"| {p} | " + " | ".join(f"{per[c][0] / per[c][1] / 1e9:.1f}" if c in per else "-" for c in cols) + " |")
print()
impls = sorted({l for per in label.values() for l in per.values()})
if impls:
    print("oneDNN implementations chosen: " + ", ".join(impls))
    print()
for c in cols:
    print(f"- {c}: {ctx[c].get('blas', '?')}, {ctx[c].get('blas_threads', '?')} threads, "
          f"load average (1 min) after each round: {', '.join(loads[c])}")
c = next((ctx[x] for x in cols if x.startswith("dnnl")), ctx[cols[0]])   # its host line names oneDNN's ISA too
print(f"- host: {c.get('host', '?')}")
c = ctx[cols[0]]
print(f"- {c.get('date', '')}, {c.get('num_cpus', '?')} CPUs at {c.get('mhz_per_cpu', '?')} MHz, "
      f"load average at start {', '.join(f'{x:.2f}' for x in c.get('load_avg', []))}, best of {rounds} round(s)")
PYEOF
