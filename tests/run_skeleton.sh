#!/usr/bin/env bash
# The run skeleton shared by pretrain, finetune and linprobe (src/train/engine.h), end to end on a tiny IDX set:
#   - preemption: SIGTERM / SIGINT / SIGUSR1 at random moments stop the run at the next micro-batch with status 75
#     and checkpoint-last at the exact position; `--resume auto` then continues bit for bit (also mid-accumulation);
#     a second signal exits at once, leaving the last good checkpoint as it was and no temp file;
#   - TensorBoard events with the official tags and x-axis, decoded by an independent reader (tools/tb_events.py);
#   - --save_every_steps / --keep_last; accumulation afresh every epoch (the official loop);
#   - linprobe resumes exactly from a mid-epoch stop; a checkpoint of another command is refused;
#   - bad values of the new flags, an unwritable --log_dir: one-line errors, non-zero exit, nothing lost;
#   - one run per folder: a new run refuses a finished run's folder, two runs never share one, stale temps go.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
export OMP_NUM_THREADS=1

$PY "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 320 --n_test 40 >/dev/null
pre=(pretrain --data_path "$tmp/data" --model mae_vit_fmnist_small --batch_size 8 --epochs 2 --warmup_epochs 1
     --norm_pix_loss --seed 5 --num_workers 1 --threads 1 --print_every_s 1000)
same() { $PY "$SRC/tools/st_equal.py" "$1" "$2" >/dev/null; }

# --- preemption: a straight run, then runs stopped by signals at random moments and resumed ---
"$MAE" "${pre[@]}" --accum_iter 3 --output_dir "$tmp/straight" 2>"$tmp/log0" || bad "straight run: $(tail -3 "$tmp/log0")"
sigs=(TERM INT USR1 TERM)
stops=0 cycles=0
for i in 0 1 2 3; do
  rc=75 tries=0
  while [ $rc = 75 ] && [ $tries -lt 4 ]; do
    tries=$((tries + 1))
    cycles=$((cycles + 1))
    "$MAE" "${pre[@]}" --accum_iter 3 --output_dir "$tmp/pre$i" --resume auto 2>"$tmp/logp" &
    pid=$!
    for _ in $(seq 600); do grep -q "base lr" "$tmp/logp" 2>/dev/null && break; sleep 0.1; done  # slow when loaded
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.1 + (r % 120) / 100 }')"
    kill -s "${sigs[$i]}" $pid 2>/dev/null
    wait $pid; rc=$?
    if [ $rc = 75 ]; then
      stops=$((stops + 1))
      grep -q "stopped by a signal" "$tmp/logp" || bad "SIG${sigs[$i]}: status 75 without the message"
    elif [ $rc != 0 ]; then bad "SIG${sigs[$i]}: status $rc: $(tail -2 "$tmp/logp")"; break; fi
  done
  # at most 4 signalled runs each (a slow machine may need more to reach the end): finish without a signal
  [ $rc = 75 ] && { "$MAE" "${pre[@]}" --accum_iter 3 --output_dir "$tmp/pre$i" --resume auto 2>"$tmp/logp" ||
    bad "SIG${sigs[$i]}: the last resume failed: $(tail -2 "$tmp/logp")"; }
  if same "$tmp/straight/checkpoint-last.safetensors" "$tmp/pre$i/checkpoint-last.safetensors"; then
    ok "SIG${sigs[$i]} at random moments, resumed with --resume auto: bit-identical to the straight run"
  else bad "SIG${sigs[$i]}: the resumed run differs from the straight one"; fi
  ls "$tmp/pre$i" | grep -q '\.tmp\.' && bad "temp files left in pre$i: $(ls "$tmp/pre$i")"
done
[ $stops -ge 2 ] && ok "$stops of $cycles runs were stopped by a signal mid-run (status 75)" ||
  bad "only $stops runs were stopped by a signal: the test did not exercise preemption"
cmp -s "$tmp/straight/log.txt" "$tmp/pre0/log.txt" 2>/dev/null ||
  $PY - "$tmp/straight/log.txt" "$tmp/pre0/log.txt" <<'EOF' && ok "log.txt rows of the preempted run = the straight run's (losses, lr, steps)" || bad "log.txt rows differ"
import json, sys
rows = [[{k: r[k] for k in ("epoch", "step", "train_loss", "train_lr")} for r in map(json.loads, open(p))] for p in sys.argv[1:]]
sys.exit(0 if rows[0] == rows[1] else 1)
EOF

# --- a second signal exits at once: checkpoint-last untouched, no temp file ---
"$MAE" "${pre[@]}" --output_dir "$tmp/twice" --max_steps 5 2>/dev/null
sum=$(md5sum <"$tmp/twice/checkpoint-last.safetensors")
"$MAE" "${pre[@]}" --output_dir "$tmp/twice" --resume auto --epochs 50 2>"$tmp/logt" &
pid=$!
for _ in $(seq 100); do grep -q "base lr" "$tmp/logt" 2>/dev/null && break; sleep 0.05; done
kill -TERM $pid; kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
if [ $rc = 143 ]; then
  [ "$(md5sum <"$tmp/twice/checkpoint-last.safetensors")" = "$sum" ] && ! ls "$tmp/twice" | grep -q '\.tmp\.' &&
    ok "a second SIGTERM exits at once (status 143); checkpoint-last kept its bytes, no temp file" ||
    bad "second signal: checkpoint changed or temp file left: $(ls "$tmp/twice")"
elif [ $rc = 75 ]; then ok "both signals landed before the step ended: saved once (status 75)"
else bad "second signal: status $rc: $(tail -2 "$tmp/logt")"; fi

# --- TensorBoard: official tags at epoch_1000x, perf/* per epoch for the commands that evaluate ---
if $PY -c "import google.protobuf" 2>/dev/null; then
  "$MAE" "${pre[@]}" --epochs 1 --output_dir "$tmp/tbrun" --log_dir "$tmp/tblogs" 2>/dev/null
  SRC="$SRC" $PY - "$tmp/tblogs" <<'EOF' && ok "pretrain TensorBoard file decodes: train_loss, lr at epoch_1000x every step" || bad "pretrain TensorBoard"
import glob, os, sys
sys.path.insert(0, os.path.join(os.environ["SRC"], "tools"))
import tb_events
files = glob.glob(os.path.join(sys.argv[1], "events.out.tfevents.*"))
assert len(files) == 1, files
ev = tb_events.read(files[0])[1:]
tags = [(v.tag, e.step) for e in ev for v in e.summary.value]
assert [t for t, _ in tags[:2]] == ["train_loss", "lr"], tags[:4]
steps = [s for t, s in tags if t == "lr"]
assert len(steps) == 40 and steps[:3] == [0, 25, 50] and steps[-1] == 975, steps  # int((i/40 + 0) * 1000)
print(len(ev), "events")
EOF
  "$MAE" finetune --finetune "$tmp/tbrun/checkpoint-last.safetensors" --data_path "$tmp/data" --epochs 2 \
    --warmup_epochs 1 --batch_size 16 --num_workers 1 --threads 1 --print_every_s 1000 --output_dir "$tmp/ft" 2>"$tmp/logf" ||
    bad "finetune: $(tail -2 "$tmp/logf")"
  SRC="$SRC" $PY - "$tmp/ft" <<'EOF' && ok "finetune TensorBoard file decodes: loss, lr per update; perf/test_acc1/acc5/loss per epoch" || bad "finetune TensorBoard"
import glob, os, sys
sys.path.insert(0, os.path.join(os.environ["SRC"], "tools"))
import tb_events
(f,) = glob.glob(os.path.join(sys.argv[1], "events.out.tfevents.*"))
tags = {}
for e in tb_events.read(f)[1:]:
    for v in e.summary.value:
        tags.setdefault(v.tag, []).append((e.step, v.value if False else v.simple_value))
assert set(tags) == {"loss", "lr", "perf/test_acc1", "perf/test_acc5", "perf/test_loss"}, sorted(tags)
assert [s for s, _ in tags["perf/test_acc1"]] == [0, 1], tags["perf/test_acc1"]
assert all(0 <= a <= 100 for _, a in tags["perf/test_acc1"])
print(sorted(tags))
EOF
else echo "skip TensorBoard decoding: no python3-protobuf"; fi

# --- checkpoint cadence: --save_every_steps writes checkpoint-last mid-epoch; --keep_last prunes numbered ones ---
"$MAE" "${pre[@]}" --epochs 4 --max_steps 130 --save_every 1 --keep_last 2 --save_every_steps 7 \
  --output_dir "$tmp/keep" 2>"$tmp/logk" || bad "keep_last run: $(tail -2 "$tmp/logk")"
[ "$(cd "$tmp/keep" && ls checkpoint-*.safetensors | tr '\n' ' ')" = "checkpoint-1.safetensors checkpoint-2.safetensors checkpoint-last.safetensors " ] &&
  ok "--keep_last 2: checkpoint-1, -2 and -last remain" || bad "--keep_last: $(ls "$tmp/keep")"
"$MAE" "${pre[@]}" --epochs 1 --save_every_steps 7 --max_steps 30 --output_dir "$tmp/steps" 2>/dev/null &
pid=$!
# a run killed with -9 after step 7's checkpoint resumes from it
for _ in $(seq 200); do [ -f "$tmp/steps/checkpoint-last.safetensors" ] && break; sleep 0.02; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
step=$($PY -c 'import json, struct, sys
b = open(sys.argv[1], "rb"); n = struct.unpack("<Q", b.read(8))[0]
print(json.loads(json.loads(b.read(n))["__metadata__"]["run"])["step"])' "$tmp/steps/checkpoint-last.safetensors" 2>&1)
case $step in 7|14|21|28|30) ok "--save_every_steps 7: checkpoint-last at step $step after kill -9" ;;
  *) bad "--save_every_steps: checkpoint-last at step '$step'" ;; esac

# --- accumulation starts afresh every epoch: 40 batches, accum 3 → 13 updates an epoch ---
"$MAE" "${pre[@]}" --epochs 2 --accum_iter 3 --output_dir "$tmp/acc" 2>/dev/null
[ "$($PY -c 'import json,sys; print([json.loads(l)["step"] for l in open(sys.argv[1])])' "$tmp/acc/log.txt")" = "[13, 26]" ] &&
  ok "accum_iter 3 over 40 batches: 13 updates an epoch, the leftover batch dropped as officially" ||
  bad "accumulation: $(cat "$tmp/acc/log.txt")"

# --- linprobe: a mid-epoch stop resumes exactly ---
lp=(linprobe --finetune "$tmp/tbrun/checkpoint-last.safetensors" --data_path "$tmp/data" --batch_size 8 --epochs 2
    --warmup_epochs 1 --num_workers 1 --threads 1 --print_every_s 1000)
"$MAE" "${lp[@]}" --output_dir "$tmp/lp1" >/dev/null 2>&1 || bad "linprobe straight"
"$MAE" "${lp[@]}" --output_dir "$tmp/lp2" --max_steps 57 >/dev/null 2>&1 || bad "linprobe to step 57"
"$MAE" "${lp[@]}" --output_dir "$tmp/lp2" --resume auto >"$tmp/loglp" 2>&1 || bad "linprobe resume: $(tail -2 "$tmp/loglp")"
grep -q "resumed .*epoch 1, batch 17, step 57" "$tmp/loglp" && same "$tmp/lp1/checkpoint-last.safetensors" "$tmp/lp2/checkpoint-last.safetensors" &&
  ok "linprobe: 57 steps (mid-epoch) + the rest == straight, bit for bit" || bad "linprobe resume is not exact: $(grep resumed "$tmp/loglp")"

# --- bad input: one-line errors, non-zero exit, the last good checkpoint intact ---
expect_error() {  # NAME PATTERN -- command...
  local name=$1 pattern=$2; shift 3
  "$@" >"$tmp/out" 2>&1; local rc=$?
  if [ $rc -eq 0 ] || [ $rc -gt 128 ]; then bad "$name: exit $rc"
  elif ! grep -qiE -- "$pattern" "$tmp/out"; then bad "$name: message does not match /$pattern/: $(head -c 300 "$tmp/out")"
  else ok "$name: $(grep -m1 -iE -- "$pattern" "$tmp/out" | head -c 150)"; fi
}
sum=$(md5sum <"$tmp/keep/checkpoint-last.safetensors")
k=(--output_dir "$tmp/keep" --resume auto)
expect_error save-every-steps "--save_every_steps must be" -- "$MAE" "${pre[@]}" "${k[@]}" --save_every_steps -1
expect_error save-every-minutes "--save_every_minutes must be" -- "$MAE" "${pre[@]}" "${k[@]}" --save_every_minutes nan
expect_error keep-last "--keep_last must be" -- "$MAE" "${pre[@]}" "${k[@]}" --keep_last -2
expect_error start-epoch "--start_epoch must be" -- "$MAE" "${pre[@]}" --output_dir "$tmp/x" --start_epoch 2
expect_error lr-nan "--lr must be" -- "$MAE" "${pre[@]}" "${k[@]}" --lr nan
expect_error warmup-inf "--warmup_epochs must be" -- "$MAE" "${pre[@]}" "${k[@]}" --warmup_epochs inf
expect_error min-lr-nan "--min_lr must be" -- "$MAE" "${pre[@]}" "${k[@]}" --min_lr nan
"$MAE" "${pre[@]}" --output_dir "$tmp/warm" --epochs 1 --warmup_epochs 1 --max_steps 1 >"$tmp/out" 2>&1
grep -q "warning: --warmup_epochs 1 ≥ --epochs 1: the lr never reaches its peak" "$tmp/out" &&
  ok "warmup-ge-epochs: $(grep -m1 warning "$tmp/out" | head -c 120)" || bad "warmup-ge-epochs: no warning: $(tail -2 "$tmp/out")"
expect_error accum-too-big "never step" -- "$MAE" "${pre[@]}" --output_dir "$tmp/x" --accum_iter 41
touch "$tmp/afile"
expect_error log-dir "--log_dir .*afile" -- "$MAE" "${pre[@]}" --output_dir "$tmp/x" --log_dir "$tmp/afile/logs"
expect_error other-command "not a checkpoint of .mae pretrain.*mae finetune" -- "$MAE" "${pre[@]}" --output_dir "$tmp/x" --resume "$tmp/ft/checkpoint-last.safetensors"
expect_error probe-into-finetune "not a checkpoint of .mae finetune.*mae linprobe" -- "$MAE" finetune --data_path "$tmp/data" --output_dir "$tmp/x" --resume "$tmp/lp1/checkpoint-last.safetensors"
expect_error weights-only "weights-only" -- "$MAE" finetune --finetune "$tmp/tbrun/checkpoint-last.safetensors" --data_path "$tmp/data" --batch_size 16 --output_dir "$tmp/x" --resume "$tmp/ft/checkpoint-best.safetensors"
# one run per folder: a new run never truncates or replaces another run's records, two runs never share a folder
expect_error finished-run "already holds a run.*--resume auto" -- "$MAE" "${pre[@]}" --output_dir "$tmp/keep"
"$MAE" "${pre[@]}" --epochs 50 --output_dir "$tmp/busy" 2>"$tmp/logb" &
pid=$!
for _ in $(seq 200); do grep -q "base lr" "$tmp/logb" 2>/dev/null && break; sleep 0.05; done
expect_error two-runs "another mae run \\(pid $pid\\)" -- "$MAE" "${pre[@]}" --output_dir "$tmp/busy" --resume auto
kill -9 $pid; wait $pid 2>/dev/null
[ "$(md5sum <"$tmp/keep/checkpoint-last.safetensors")" = "$sum" ] && ok "the last good checkpoint kept its bytes" || bad "checkpoint changed"
# temp files of a save cut short by kill -9 are removed by the next run on the folder
: >"$tmp/acc/checkpoint-last.safetensors.tmp.4194999"
"$MAE" "${pre[@]}" --epochs 2 --accum_iter 3 --output_dir "$tmp/acc" --resume auto >"$tmp/out" 2>&1
[ ! -e "$tmp/acc/checkpoint-last.safetensors.tmp.4194999" ] && grep -q "removed checkpoint-last.safetensors.tmp" "$tmp/out" &&
  ok "a stale temp file is removed (and said) by the next run on the folder" || bad "stale temp file: $(ls "$tmp/acc")"
"$MAE" "${pre[@]}" --output_dir "$tmp/acc" --overwrite --max_steps 2 2>/dev/null && [ "$(wc -l <"$tmp/acc/log.txt")" = 0 ] &&
  ok "--overwrite starts a new run over a finished one" || bad "--overwrite: $(cat "$tmp/acc/log.txt")"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
