#!/usr/bin/env bash
# Runs gemm_shapes against each BLAS variant and prints one markdown table of GFLOP/s per shape (median of 3).
#
#   cmake -S bench -B build-bench -G Ninja && ninja -C build-bench
#   bench/gemm_compare.sh [VARIANT...]
#     variants: openblas       OpenBLAS OpenMP, environment as is (OPENBLAS_CORETYPE honoured)
#               openblas-auto  OpenBLAS OpenMP with OPENBLAS_CORETYPE unset (its own CPU detection)
#               blis           BLIS OpenMP, its own CPU detection
#               blis-skx       BLIS OpenMP, BLIS_ARCH_TYPE=0 (skx kernels)
#               blis-zen3      BLIS OpenMP, BLIS_ARCH_TYPE=6 (zen3 kernels)
#     default: all five
#   env: THREADS (2), BUILD (build-bench), MIN_TIME (0.2 s per repetition), FILTER (regex of benchmark names)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
BUILD=${BUILD:-$ROOT/build-bench}
MIN_TIME=${MIN_TIME:-0.2}
FILTER=${FILTER:-.}
variants=("$@")
((${#variants[@]})) || variants=(openblas openblas-auto blis blis-skx blis-zen3)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in "${variants[@]}"; do
  case $v in
    openblas)      cmd=(env "$BUILD/gemm_shapes_openblas") ;;
    openblas-auto) cmd=(env -u OPENBLAS_CORETYPE "$BUILD/gemm_shapes_openblas") ;;
    blis)          cmd=(env -u BLIS_ARCH_TYPE "$BUILD/gemm_shapes_blis") ;;
    blis-skx)      cmd=(env BLIS_ARCH_TYPE=0 "$BUILD/gemm_shapes_blis") ;;
    blis-zen3)     cmd=(env BLIS_ARCH_TYPE=6 "$BUILD/gemm_shapes_blis") ;;
    *) echo "gemm_compare.sh: unknown variant '$v' (try: sed -n 2,12p $0)" >&2; exit 2 ;;
  esac
  echo "gemm_compare.sh: $v (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "${cmd[@]}" --threads="$THREADS" --benchmark_min_time="$MIN_TIME" --benchmark_repetitions=3 --benchmark_filter="$FILTER" \
    --benchmark_report_aggregates_only=true --benchmark_format=json >"$tmp/$v.json" 2>"$tmp/$v.err" \
    || { cat "$tmp/$v.err" >&2; exit 1; }
done

python3 - "$tmp" "${variants[@]}" <<'EOF'
import json, os, re, sys
tmp, variants = sys.argv[1], sys.argv[2:]
res, ctx = {}, {}
for v in variants:
    d = json.load(open(os.path.join(tmp, v + ".json")))
    ctx[v] = d["context"]
    for b in d["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].removesuffix("/real_time")
            res.setdefault(name, {})[v] = (b["GFLOPS"] / 1e9, b["real_time"])  # real_time in ms
print("| shape (M×N×K) | " + " | ".join(variants) + " |")
print("|---|" + "---:|" * len(variants))
part_of = lambda n: n.split("/")[0] + "/" + n.split("/")[1] if not n.startswith("square") else None
parts = {}
for name, per in res.items():
    print(f"| {name} | " + " | ".join(f"{per[v][0]:.1f}" if v in per else "-" for v in variants) + " |")
    p = part_of(name)
    if p and "/attn/" not in name:   # linear layers: fwd + dX + dW of qkv, proj, fc1, fc2 = one block's training
        m, n, k = map(int, re.search(r":(\d+)x(\d+)x(\d+)$", name).groups())
        for v in variants:
            f, t = parts.setdefault(p, {}).setdefault(v, [0.0, 0.0])
            parts[p][v] = [f + 2.0 * m * n * k, t + per[v][1] / 1e3]
print()
print("Linear layers of one transformer block, training (fwd + dX + dW of qkv, proj, fc1, fc2), "
      "total FLOPs / total time, GFLOP/s:")
print()
print("| block | " + " | ".join(variants) + " |")
print("|---|" + "---:|" * len(variants))
for p, per in parts.items():
    print(f"| {p} | " + " | ".join(f"{per[v][0] / per[v][1] / 1e9:.1f}" for v in variants) + " |")
print()
for v in variants:
    print(f"- {v}: {ctx[v].get('blas', '?')}, {ctx[v].get('blas_threads', '?')} threads")
c = ctx[variants[0]]
print(f"- {c.get('date', '')}, {c.get('num_cpus', '?')} CPUs at {c.get('mhz_per_cpu', '?')} MHz, "
      f"load average at start {', '.join(f'{x:.2f}' for x in c.get('load_avg', []))}")
EOF
