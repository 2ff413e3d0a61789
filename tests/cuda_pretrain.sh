#!/usr/bin/env bash
# mae pretrain / finetune on the GPU, end to end (skipped, exit 77, without a CUDA build or device): exact resume
# (7 + 7 steps == 14 straight, bit for bit: the kernels are deterministic), --cuda_graph gives the eager run's bits,
# bf16 trains with a finite falling loss, and a short fine-tune runs from the checkpoint.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
if ! "$MAE" bench --device cuda --model mae_vit_fmnist_small --batch_size 2 --steps 1 --warmup 0 >"$tmp/probe" 2>&1; then
  echo "skipped: $(tail -1 "$tmp/probe")"
  exit 77
fi

$PY "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 160 --n_test 40
common=(--device cuda --data_path "$tmp/data" --model mae_vit_fmnist_small --batch_size 16 --epochs 3
        --warmup_epochs 1 --norm_pix_loss --seed 3 --num_workers 2 --print_every_s 100)

"$MAE" pretrain "${common[@]}" --output_dir "$tmp/straight" --max_steps 14 2>"$tmp/log1" || bad "straight: $(tail -3 "$tmp/log1")"
"$MAE" pretrain "${common[@]}" --output_dir "$tmp/split" --max_steps 7 2>"$tmp/log2" || bad "first half: $(tail -3 "$tmp/log2")"
"$MAE" pretrain "${common[@]}" --output_dir "$tmp/split" --max_steps 14 --resume auto 2>"$tmp/log3" || bad "resumed: $(tail -3 "$tmp/log3")"
$PY "$SRC/tools/st_equal.py" "$tmp/straight/checkpoint-last.safetensors" "$tmp/split/checkpoint-last.safetensors" \
  && ok "cuda: 7 + 7 steps == 14 straight (params and AdamW moments bit-identical)" || bad "cuda resume is not exact"

"$MAE" pretrain "${common[@]}" --cuda_graph --output_dir "$tmp/graph" --max_steps 14 2>"$tmp/log4" || bad "graph: $(tail -3 "$tmp/log4")"
$PY "$SRC/tools/st_equal.py" "$tmp/straight/checkpoint-last.safetensors" "$tmp/graph/checkpoint-last.safetensors" \
  && ok "cuda: --cuda_graph run == eager run, bit for bit" || bad "--cuda_graph changes the result"

"$MAE" pretrain "${common[@]}" --precision bf16 --output_dir "$tmp/bf16" 2>"$tmp/log5" || bad "bf16: $(tail -3 "$tmp/log5")"
$PY - "$tmp/bf16/log.txt" <<'PYEOF' && ok "bf16: finite epoch losses that fall" || bad "bf16 loss: $(cat "$tmp/bf16/log.txt")"
import json, math, sys
l = [json.loads(x)["train_loss"] for x in open(sys.argv[1]) if x.strip()]
sys.exit(0 if len(l) == 3 and all(math.isfinite(v) for v in l) and l[-1] < l[0] else 1)
PYEOF

"$MAE" finetune --device cuda --finetune "$tmp/straight/checkpoint-last.safetensors" --data_path "$tmp/data" \
  --epochs 1 --batch_size 16 --output_dir "$tmp/ft" --print_every_s 100 2>"$tmp/log6" \
  && grep -q "Accuracy of the network" "$tmp/log6" && ok "cuda: fine-tune runs and evaluates" \
  || bad "cuda finetune: $(tail -3 "$tmp/log6")"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
