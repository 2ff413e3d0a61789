#!/usr/bin/env bash
# The official README's command lines (PRETRAIN.md, FINETUNE.md, the linear-probing section) run unchanged but for
# the model and data (tiny ones) and a step limit: the flags that do not apply here (submitit's --job_dir/--nodes,
# --dist_eval, --pin_mem, torch.distributed's --local_rank ...) are accepted with a one-line note; a torchrun launch
# without MPI is refused with how to launch instead.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
export OMP_NUM_THREADS=1
$PY "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 96 --n_test 24 >/dev/null
D=$tmp/data

starts() {  # NAME -- command...: exits 0 and prints the notes
  local name=$1; shift 2
  if "$@" >"$tmp/out" 2>&1; then ok "$name: $(grep -c '^note: ' "$tmp/out") note(s), e.g. $(grep -m1 '^note: ' "$tmp/out" | head -c 110)"
  else bad "$name: exit $?: $(tail -3 "$tmp/out")"; fi
}
# PRETRAIN.md (submitit_pretrain.py), + --max_steps for the test
starts pretrain -- "$MAE" pretrain --job_dir "$tmp/job" --nodes 8 --use_volta32 --batch_size 16 \
  --model mae_vit_fmnist_small --norm_pix_loss --mask_ratio 0.75 --epochs 800 --warmup_epochs 40 \
  --blr 1.5e-4 --weight_decay 0.05 --data_path "$D" --output_dir "$tmp/pre" --max_steps 2 --pin_mem --num_workers 1
CK=$tmp/pre/checkpoint-last.safetensors
# FINETUNE.md, one node with torch.distributed.launch (main_finetune.py gets --local_rank=N from the launcher)
starts finetune -- "$MAE" finetune --local_rank=0 --accum_iter 4 --batch_size 8 --model vit_fmnist_small \
  --finetune "$CK" --epochs 100 --blr 5e-4 --layer_decay 0.65 --weight_decay 0.05 --drop_path 0.1 --mixup 0.8 \
  --cutmix 1.0 --reprob 0.25 --dist_eval --data_path "$D" --output_dir "$tmp/ft" --max_steps 2 --num_workers 1
# FINETUNE.md, evaluation
starts finetune-eval -- "$MAE" finetune --eval --resume "$tmp/ft/checkpoint-last.safetensors" --model vit_fmnist_small \
  --batch_size 16 --data_path "$D"
# linear probing (submitit_linprobe.py)
starts linprobe -- "$MAE" linprobe --job_dir "$tmp/job" --nodes 4 --batch_size 16 --model vit_fmnist_small \
  --cls_token --finetune "$CK" --epochs 90 --blr 0.1 --weight_decay 0.0 --dist_eval --data_path "$D" \
  --output_dir "$tmp/lp" --max_steps 2 --num_workers 1
grep -q "^note: --dist_eval does not apply" "$tmp/out" && ok "the note says what happens instead" || bad "no --dist_eval note"

# torchrun's environment without an MPI launcher: refused, saying how to launch
WORLD_SIZE=4 RANK=0 LOCAL_RANK=0 "$MAE" pretrain --data_path "$D" --output_dir "$tmp/tr" --max_steps 1 >"$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "mpirun -np 4" "$tmp/out" && ok "torchrun launch: $(grep -m1 -o 'launched by.\{0,90\}' "$tmp/out")" ||
  bad "torchrun launch: rc $rc: $(tail -2 "$tmp/out")"
[ ! -e "$tmp/tr" ] && ok "nothing written by the refused launch" || bad "the refused launch wrote $tmp/tr"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
