#!/usr/bin/env bash
# Soak: pretraining under random kill -9, SIGTERM and a disk that fills up, for MINUTES (default 30). Not a test (it
# runs for half an hour); the counts it prints are quoted in the hardening notes.
#   tools/soak.sh [MINUTES] [mae binary (default build/mae)]
# A small run (mae_vit_fmnist_small on a 320-image IDX set, 2 epochs, a checkpoint every 5 steps) is restarted with
# --resume auto again and again; each attempt is cut short at a random moment by one of
#   kill -9      (no chance to save: the last periodic checkpoint must hold),
#   SIGTERM      (the run finishes its micro-batch, saves at the exact position and exits 75),
#   a full disk  (the run's folder lives on a small tmpfs that a filler file fills at a random moment: the next save
#                 fails with a clear error, the previous checkpoint keeps its bytes; the filler is then removed).
#                 Without permission to mount a tmpfs, `ulimit -f` (writes fail with EFBIG) stands in for it.
# After every attempt: checkpoint-last must exist once the first save happened and be readable (`mae info`), at most
# one temp file may be left (the one being written when killed), and the next attempt must resume from it. When
# an attempt completes the run, its final checkpoint must be bit-identical to an uninterrupted run's, the folder
# must hold no temp file, and a new episode starts from scratch.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
MINUTES=${1:-30}
MAE=$(realpath "${2:-$SRC/build/mae}")
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
export OMP_NUM_THREADS=1
work=$(mktemp -d)
disk=$work/disk
mkdir -p "$disk"
mounted=0
if mount -t tmpfs -o size=48M tmpfs "$disk" 2>/dev/null; then mounted=1; fi
cleanup() { [ $mounted = 1 ] && umount "$disk" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

$PY "$SRC/tools/make_tiny_idx.py" "$work/data" --n 320 --n_test 40 >/dev/null
args=(pretrain --data_path "$work/data" --model mae_vit_fmnist_small --batch_size 8 --epochs 2 --warmup_epochs 1
      --norm_pix_loss --seed 5 --num_workers 1 --threads 1 --print_every_s 1000 --save_every_steps 5 --keep_last 2)
echo "soak: $MINUTES min, $MAE, host: $(lscpu | sed -n 's/^Model name: *//p'), disk: $([ $mounted = 1 ] &&
  echo "48 MiB tmpfs + filler" || echo "ulimit -f (no tmpfs mount allowed)")"
t0=$(date +%s)
"$MAE" "${args[@]}" --output_dir "$work/straight" >"$work/straight.log" 2>&1 ||
  { echo "soak: the uninterrupted run failed: $(tail -2 "$work/straight.log")"; exit 1; }
straight_s=$(($(date +%s) - t0))
echo "soak: uninterrupted run: ${straight_s} s"

declare -A n=([attempts]=0 [kill9]=0 [sigterm]=0 [disk]=0 [exit75]=0 [disk_errors]=0 [finished]=0 [episodes_ok]=0
              [problems]=0 [max_temps]=0 [early_term]=0)
problem() { echo "soak: PROBLEM: $*"; n[problems]=$((n[problems] + 1)); }
temps() { find "$1" -maxdepth 1 -name '*.tmp*' 2>/dev/null | wc -l; }
episode=0
run=$disk/ep$episode
end=$((t0 + MINUTES * 60))
while [ "$(date +%s)" -lt $end ]; do
  n[attempts]=$((n[attempts] + 1))
  action=$((RANDOM % 10))                                    # 0-4 kill -9, 5-7 SIGTERM, 8-9 full disk
  delay=$(awk -v r=$RANDOM -v s="$straight_s" 'BEGIN { printf "%.2f", 0.2 + r / 32768 * 0.6 * (s > 2 ? s : 2) }')
  if [ $action -ge 8 ] && [ $mounted = 0 ]; then
    # no tmpfs: writes past a size limit fail (EFBIG) instead; SIGXFSZ ignored so the write returns the error
    ( trap '' XFSZ; ulimit -f $((RANDOM % 4096 + 1)); exec "$MAE" "${args[@]}" --output_dir "$run" --resume auto ) \
      >"$work/attempt.log" 2>&1 &
  else
    "$MAE" "${args[@]}" --output_dir "$run" --resume auto >"$work/attempt.log" 2>&1 &
  fi
  pid=$!
  sleep "$delay"
  case $action in
    [0-4]) kill -9 $pid 2>/dev/null && n[kill9]=$((n[kill9] + 1)) ;;
    [5-7]) kill -TERM $pid 2>/dev/null && n[sigterm]=$((n[sigterm] + 1)) ;;
    *) n[disk]=$((n[disk] + 1))
       [ $mounted = 1 ] && { dd if=/dev/zero of="$disk/filler" bs=1M 2>/dev/null; sync; } ;;
  esac
  wait $pid 2>/dev/null
  rc=$?
  rm -f "$disk/filler"
  case $rc in
    0) n[finished]=$((n[finished] + 1)) ;;
    75) n[exit75]=$((n[exit75] + 1)) ;;
    137) ;;
    143) n[early_term]=$((n[early_term] + 1)) ;;  # SIGTERM before the handlers were installed (process start-up)
    *) if grep -qiE "no space|file too large|write" "$work/attempt.log"; then n[disk_errors]=$((n[disk_errors] + 1))
       else problem "attempt ${n[attempts]} exited $rc: $(tail -2 "$work/attempt.log" | tr '\n' ' ')"; fi ;;
  esac
  t=$(temps "$run")
  [ "$t" -gt "${n[max_temps]}" ] && n[max_temps]=$t
  [ "$t" -gt 1 ] && problem "$t temp files in $run after attempt ${n[attempts]}"
  if [ -f "$run/checkpoint-last.safetensors" ]; then
    "$MAE" info "$run/checkpoint-last.safetensors" >/dev/null 2>&1 ||
      problem "attempt ${n[attempts]}: checkpoint-last is not readable"
  elif grep -q "checkpoint" "$run/log.txt" 2>/dev/null && [ $rc != 0 ]; then
    problem "attempt ${n[attempts]}: a checkpoint was logged but checkpoint-last is missing"
  fi
  if [ $rc = 0 ]; then
    if $PY "$SRC/tools/st_equal.py" "$work/straight/checkpoint-last.safetensors" "$run/checkpoint-last.safetensors" \
        >/dev/null 2>&1; then n[episodes_ok]=$((n[episodes_ok] + 1))
    else problem "episode $episode: the final checkpoint differs from the uninterrupted run's"; fi
    [ "$(temps "$run")" = 0 ] || problem "episode $episode: temp files left after the run completed"
    rm -rf "$run"
    episode=$((episode + 1))
    run=$disk/ep$episode
  fi
done
echo "soak: $(( ($(date +%s) - t0) / 60 )) min: ${n[attempts]} attempts (kill -9 ${n[kill9]}, SIGTERM ${n[sigterm]}," \
  "full disk ${n[disk]}); exits: 75 (saved on SIGTERM) ${n[exit75]}, disk-full errors ${n[disk_errors]}," \
  "completed ${n[finished]}, terminated during start-up (before the handlers) ${n[early_term]}; episodes bit-identical to the uninterrupted run: ${n[episodes_ok]}/$episode;" \
  "most temp files seen after an attempt: ${n[max_temps]}; problems: ${n[problems]}"
[ "${n[problems]}" = 0 ]
