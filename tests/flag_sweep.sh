#!/usr/bin/env bash
# Every numeric flag (INT, UINT, FLOAT in --help) of the commands that run a model, given extreme values (negative,
# zero, the int limits, out of int range, 1e300, NaN, ±∞) on tiny data. A value must either run or stop with
# "mae: error: ..." (or CLI11's conversion error): a crash, a sanitizer report, an internal check, an exit without
# a message or a run past TIMEOUT seconds fails. A sweep of this kind found --recount 2^31 (the loader looping on
# erasing boxes), NaN/∞ --mixup/--cutmix and a --batch_size that reached the allocator unchecked.
#
#   tests/flag_sweep.sh MAE_BIN SRC_DIR      env: TIMEOUT (30 s a run), CMDS (the commands, space-separated)
#
# Large values of the flags that mean long work (--epochs, --steps, ...) are skipped; everything else runs at
# every value (~20 s on 2 cores).
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
TIMEOUT=${TIMEOUT:-30}
CMDS=${CMDS:-"pretrain finetune linprobe knn embed reconstruct bench classify"}
W=$SRC/tests/fixtures/cfgA.weights.safetensors
"$PY" "$SRC/tools/make_tiny_idx.py" "$tmp/idx" --n 16 --n_test 8 >/dev/null
"$PY" -c "import zlib, struct
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
raw = b''.join(b'\0' + bytes([128] * 28) for _ in range(28))
open('$tmp/img.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 28, 28, 8, 0, 0, 0, 0))
                                  + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))"
"$MAE" finetune --finetune "$W" --data_path "$tmp/idx" --batch_size 4 --epochs 1 --output_dir "$tmp/ft" --log_dir "$tmp/ft" \
  --threads 1 >/dev/null 2>&1 || { echo "FAIL flag_sweep.sh: could not make the classifier checkpoint"; exit 1; }

run_dir="--output_dir $tmp/run --log_dir $tmp/run"
declare -A base=(
  [pretrain]="--data_path $tmp/idx --batch_size 4 --epochs 1 --model mae_vit_fmnist_small --threads 1 --num_workers 1 $run_dir"
  [finetune]="--finetune $W --data_path $tmp/idx --batch_size 4 --epochs 1 --threads 1 --num_workers 1 $run_dir"
  [linprobe]="--finetune $W --data_path $tmp/idx --batch_size 4 --epochs 1 --threads 1 --num_workers 1 $run_dir"
  [knn]="--checkpoint $W --data_path $tmp/idx --threads 1 --num_workers 1"
  [embed]="--checkpoint $W --data_path $tmp/idx --threads 1 --num_workers 1 --output $tmp/e.safetensors"
  [reconstruct]="--checkpoint $W --data_path $tmp/idx --threads 1 --output $tmp/r.png"
  [bench]="--model mae_vit_fmnist_small --batch_size 2 --steps 1 --warmup 0 --threads 1"
  [classify]="--checkpoint $tmp/ft/checkpoint-last.safetensors --image $tmp/img.png --threads 1"
)
long_work="--epochs --steps --warmup --max_steps --stop_epoch --batches --num"  # large values: long, not wrong
runs=0
for cmd in $CMDS; do
  flags=$("$MAE" $cmd --help 2>/dev/null | grep -oE '^ +--[a-z_]+(,--[a-z-]+)? (INT|UINT|FLOAT)' |
          sed -E 's/,--[a-z-]+//' | awk '{print $1" "$2}')
  while read -r flag typ; do
    [ -z "$flag" ] && continue
    if [ "$typ" = FLOAT ]; then vals="-1 0 1e300 nan inf -inf"; else vals="-1 0 2147483647 -2147483648 99999999999"; fi
    for v in $vals; do
      if [[ " $long_work " == *" $flag "* ]] && [[ $v == 2147483647 || $v == 1e300 || $v == inf ]]; then continue; fi
      rm -rf "$tmp/run" "$tmp/e.safetensors" "$tmp/r.png"
      out=$(cd "$tmp" && timeout -s KILL "$TIMEOUT" "$MAE" $cmd ${base[$cmd]} $flag $v 2>&1 </dev/null)
      rc=$? runs=$((runs + 1))
      last=$(grep -v '^$' <<<"$out" | tail -1 | cut -c1-160)
      if [ $rc -ge 124 ] || grep -qiE "segmentation|abort|terminate called|sanitizer|internal error|check failed" <<<"$out"; then
        bad "rc=$rc $cmd $flag $v :: $last"
      elif [ $rc -ne 0 ] && ! grep -qE "mae: error:|Could not convert" <<<"$out"; then
        bad "rc=$rc (no error message) $cmd $flag $v :: $last"
      fi
    done
  done <<<"$flags"
done
passes=$((runs - fails))
echo "$passes passed, $fails failed (of $runs runs)"
[ $fails -eq 0 ]
