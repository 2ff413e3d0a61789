#!/usr/bin/env bash
# Data-parallel fine-tuning and linear probing under MPI (2 ranks):
#   - finetune: 2 ranks × batch 4 == 1 process × batch 8 (RandAugment and drop path keyed by sample, no mixup):
#     parameters ≤ 1e-6 relative (as mpi_pretrain.sh, qkv.bias aside), the same test accuracy, one log line per epoch;
#     resuming its epoch checkpoint with 1 process continues.
#   - linprobe: runs on 2 ranks with the per-rank BatchNorm statistics of the official script (so the head is close
#     to, not equal to, the single-process one), prints the accuracy once, scales the lr with the ranks.
# Skips (77) when mpirun is missing or mae was built without MPI.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/mpi_env.sh"

$PY "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 64 --n_test 24
"$MAE" pretrain --data_path "$tmp/data" --model mae_vit_fmnist_small --batch_size 16 --max_steps 2 --threads 1 \
  --num_workers 1 --output_dir "$tmp/pre" 2>"$tmp/log0" || bad "pretrain: $(tail -3 "$tmp/log0")"
enc="$tmp/pre/checkpoint-last.safetensors"

cat >"$tmp/rel.py" <<'PYEOF'
# rel.py A B TENSOR_SUFFIX... : max over the named tensors (all but qkv.bias when none named) of ‖A−B‖/‖B‖
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    d = b[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], np.float32).astype(np.float64)
            for k, v in h.items() if v["dtype"] == "F32" and not k.startswith("optim.")}
a, b = load(sys.argv[1]), load(sys.argv[2])
keys = [k for k in b if (any(k.endswith(s) for s in sys.argv[3:]) if len(sys.argv) > 3 else not k.endswith("qkv.bias"))]
print(max(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-30) for k in keys))
PYEOF
within() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x <= t) }'; }

# --- finetune ---
ft=(--finetune "$enc" --data_path "$tmp/data" --epochs 2 --warmup_epochs 1 --threads 1 --num_workers 1 --seed 1
    --reprob 0 --print_every_s 100)
"$MAE" finetune "${ft[@]}" --batch_size 8 --output_dir "$tmp/ft1" 2>"$tmp/log1" || bad "finetune 1 process: $(tail -3 "$tmp/log1")"
mpi2 finetune "${ft[@]}" --batch_size 4 --output_dir "$tmp/ft2" >"$tmp/log2" 2>&1 || bad "finetune 2 ranks: $(tail -5 "$tmp/log2")"
grep -q "effective batch size: 8" "$tmp/log2" && ok "finetune: effective batch = 4 × 2 ranks" || bad "finetune lr line: $(grep 'actual lr' "$tmp/log2")"
r=$($PY "$tmp/rel.py" "$tmp/ft2/checkpoint-last.safetensors" "$tmp/ft1/checkpoint-last.safetensors")
within "$r" 1e-6 && ok "finetune: 2 ranks × 4 == 1 × 8 (worst tensor rel diff $r)" || bad "finetune: 2 ranks diverge ($r)"
accs() { $PY -c 'import json, sys; print([(r["test_acc1"], r["test_acc5"]) for r in map(json.loads, open(sys.argv[1]))])' "$1"; }
[ "$(wc -l <"$tmp/ft2/log.txt")" = 2 ] && [ "$(accs "$tmp/ft1/log.txt")" = "$(accs "$tmp/ft2/log.txt")" ] \
  && ok "finetune: one log line per epoch, same test accuracy" || bad "finetune logs: $(cat "$tmp/ft1/log.txt" "$tmp/ft2/log.txt")"
"$MAE" finetune "${ft[@]}" --epochs 3 --batch_size 8 --output_dir "$tmp/ft2" --resume auto 2>"$tmp/log3" \
  && grep -q "resumed .*epoch 2" "$tmp/log3" && ok "finetune: 1 process resumes the 2-rank checkpoint" || bad "finetune resume: $(tail -3 "$tmp/log3")"

# --- linprobe (per-rank BatchNorm statistics: close, not equal) ---
lp=(--finetune "$enc" --data_path "$tmp/data" --epochs 2 --warmup_epochs 1 --threads 1 --num_workers 1 --print_every_s 100)
for mode in "" --cache_features; do
  rm -rf "$tmp/lp1" "$tmp/lp2"  # one folder per run: a new run refuses a folder that holds another run
  "$MAE" linprobe "${lp[@]}" $mode --batch_size 16 --output_dir "$tmp/lp1" >"$tmp/log4" 2>&1 || bad "linprobe 1 process $mode: $(tail -3 "$tmp/log4")"
  mpi2 linprobe "${lp[@]}" $mode --batch_size 8 --output_dir "$tmp/lp2" >"$tmp/log5" 2>&1 || bad "linprobe 2 ranks $mode: $(tail -5 "$tmp/log5")"
  r=$($PY "$tmp/rel.py" "$tmp/lp2/checkpoint-last.safetensors" "$tmp/lp1/checkpoint-last.safetensors" head.weight head.bias)
  [ "$(grep -c '^Accuracy of the network' "$tmp/log5")" = 1 ] && grep -q "effective batch size: 16" "$tmp/log5" && within "$r" 1e-2 \
    && ok "linprobe $mode: 2 ranks × 8 ≈ 1 × 16 (head rel diff $r; BN statistics per rank), accuracy printed once" \
    || bad "linprobe $mode: rel diff $r: $(tail -3 "$tmp/log5")"
done
mpi2 linprobe --eval --resume "$tmp/lp2/checkpoint-last.safetensors" --data_path "$tmp/data" --threads 1 >"$tmp/log6" 2>&1
[ $? = 0 ] && [ "$(grep -c '^Accuracy of the network' "$tmp/log6")" = 1 ] && ok "linprobe --eval on 2 ranks: rank 0 evaluates, prints once" \
  || bad "linprobe --eval: $(tail -3 "$tmp/log6")"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
