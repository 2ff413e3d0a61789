#!/usr/bin/env bash
# mae bench fp32 against --precision bf16 on the CPU, side by side: for each config, ROUNDS rounds, each round
# running fp32 then bf16 (the order alternates between rounds); a cell is the best round (the machine is shared:
# other tenants only ever slow a run down), with the 1-minute load average read after each run beside it.
#
#   cmake -S . -B build -G Ninja && ninja -C build mae       # a build with oneDNN (libdnnl-dev)
#   bench/precision_compare.sh [CONFIG...]                  # configs: fmnist tiny base (default: all three)
#   env: MAE_BIN (build/mae), THREADS (2), ROUNDS (3), CORETYPE (env: OPENBLAS_CORETYPE as the environment has
#        it; auto: unset, OpenBLAS's own detection) — the fp32 GEMMs are OpenBLAS's, so the core matters
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAE_BIN=${MAE_BIN:-$ROOT/build/mae}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
CORETYPE=${CORETYPE:-env}
configs=("$@")
((${#configs[@]})) || configs=(fmnist tiny base)
run_env=(env)
[ "$CORETYPE" = auto ] && run_env+=(-u OPENBLAS_CORETYPE)  # env's options come before the assignments
run_env+=(OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for cfg in "${configs[@]}"; do
  case $cfg in  # model batch steps warmup, as compare.sh
    fmnist) args=(--model mae_vit_fmnist --batch_size 256 --steps 5 --warmup 1) ;;
    tiny)   args=(--model mae_vit_tiny_patch16 --batch_size 32 --steps 3 --warmup 1) ;;
    base)   args=(--model mae_vit_base_patch16 --batch_size 8 --steps 3 --warmup 1) ;;
    *) echo "precision_compare.sh: unknown config '$cfg' (fmnist, tiny, base)" >&2; exit 2 ;;
  esac
  for ((r = 1; r <= ROUNDS; r++)); do
    order=(fp32 bf16)
    ((r % 2 == 0)) && order=(bf16 fp32)
    for p in "${order[@]}"; do
      echo "precision_compare.sh: $cfg $p round $r (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
      "${run_env[@]}" "$MAE_BIN" bench "${args[@]}" --threads "$THREADS" --precision "$p" --json \
        >"$tmp/$cfg.$p.$r.json"
      echo "{\"load\": $(cut -d' ' -f1 /proc/loadavg)}" >>"$tmp/$cfg.$p.$r.json"
    done
  done
done

python3 - "$tmp" "$ROUNDS" "${configs[@]}" <<'PYEOF'
import json, os, sys
tmp, rounds, cfgs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(cfg, p, r):
    lines = [json.loads(l) for l in open(os.path.join(tmp, f"{cfg}.{p}.{r}.json")) if l.strip().startswith("{")]
    d = lines[-2]; d["load"] = lines[-1]["load"]; return d
print("| config | batch | fp32 train img/s (load) | bf16 train img/s (load) | train bf16/fp32 | "
      "fp32 fwd img/s | bf16 fwd img/s | fwd bf16/fp32 | fp32 / bf16 train GFLOP/s | all rounds train fp32 → bf16 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
host = ""
for cfg in cfgs:
    runs = {p: [load(cfg, p, r) for r in range(1, rounds + 1)] for p in ("fp32", "bf16")}
    bt = {p: max(runs[p], key=lambda d: d["train_img_s"]) for p in runs}
    bf = {p: max(d["fwd_img_s"] for d in runs[p]) for p in runs}
    host = bt["fp32"].get("host", "?")
    allr = "; ".join(f"{a['train_img_s']:.1f} → {b['train_img_s']:.1f}" for a, b in zip(runs["fp32"], runs["bf16"]))
    print(f"| {bt['fp32']['model']} | {bt['fp32']['batch']} | {bt['fp32']['train_img_s']:.2f} ({bt['fp32']['load']:.1f}) "
          f"| {bt['bf16']['train_img_s']:.2f} ({bt['bf16']['load']:.1f}) | **{bt['bf16']['train_img_s'] / bt['fp32']['train_img_s']:.2f}** "
          f"| {bf['fp32']:.2f} | {bf['bf16']:.2f} | {bf['bf16'] / bf['fp32']:.2f} "
          f"| {bt['fp32']['train_gflops']:.1f} / {bt['bf16']['train_gflops']:.1f} | {allr} |")
print()
print(f"- host: {host}")
print(f"- fp32 GEMMs: {bt['fp32']['blas']}; bf16: {bt['bf16']['blas']}; {bt['fp32']['threads']} threads, "
      f"best of {rounds} rounds (order alternating), load = 1-minute load average read after the run")
PYEOF
