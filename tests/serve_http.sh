#!/usr/bin/env bash
# mae serve over HTTP on loopback (tests/serve_client.py): every endpoint, and bad requests — a truncated multipart
# body, a body over the limit, a non-image, a 30000 × 30000 PNG header, unknown fields, wrong methods, bad values —
# each a 4xx with a JSON error while the server keeps serving; concurrent requests give the answers of single ones;
# /classify agrees with `mae classify`; SIGTERM stops it cleanly. Also: a non-loopback address warns, bad start-up
# flags fail with a message.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
"$MAE" serve --help >/dev/null 2>&1 || { echo "mae built without serve (-DMAE_SERVE=OFF): skipped"; exit 77; }
source "$SRC/tests/lib/serve_models.sh"
source "$SRC/tests/lib/serve_start.sh"

# OpenMP threads: 2, or OMP_NUM_THREADS (tools/sanitize.sh sets 1: libgomp is invisible to ThreadSanitizer)
serve_start --checkpoint "$MAE_CK" --classifier "$FT" --threads "${OMP_NUM_THREADS:-2}" --workers 4 --max_body_mb 1 --max_images 4 \
  --max_pixels 100000 --timeout 20
echo "server: $URL"
"$MAE" classify --checkpoint "$FT" --image "$IMG_A" --topk 2 --json >"$tmp/classify.json" 2>/dev/null
$PY "$SRC/tests/serve_client.py" "$URL" "$IMG_A" "$IMG_B" "$IMG_BIG" "$tmp/classify.json" || fails=$((fails + 1))

kill -TERM $SERVE_PID
for _ in $(seq 50); do kill -0 $SERVE_PID 2>/dev/null || break; sleep 0.1; done
if kill -0 $SERVE_PID 2>/dev/null; then bad "SIGTERM: still running after 5 s"; else
  wait $SERVE_PID; rc=$?
  [ $rc = 0 ] && grep -q "mae serve: stopped" "$tmp/serve.err" && ok "SIGTERM: stopped, exit 0" || bad "SIGTERM: exit $rc"
fi

# Not loopback: a warning (bound to 0.0.0.0, stopped at once)
serve_start --checkpoint "$MAE_CK" --host 0.0.0.0
grep -q "WARNING: listening on 0.0.0.0, not loopback" "$tmp/serve.err" && ok "0.0.0.0: warning printed" ||
  bad "0.0.0.0: no warning: $(cat "$tmp/serve.err")"
kill -TERM $SERVE_PID; wait $SERVE_PID

source "$SRC/tests/lib/expect.sh"
expect_error "no such checkpoint" "missing.safetensors" -- "$MAE" serve --checkpoint "$tmp/missing.safetensors" --port 0
expect_error "--classifier is an MAE" "not a fine-tuned classifier" -- \
  "$MAE" serve --checkpoint "$MAE_CK" --classifier "$MAE_CK" --port 0
expect_error "bad --workers" "workers must be in" -- "$MAE" serve --checkpoint "$MAE_CK" --workers 0 --port 0
expect_error "bad --max_body_mb" "max_body_mb must be in" -- "$MAE" serve --checkpoint "$MAE_CK" --max_body_mb 0 --port 0

echo "serve_http: $passes passed, $fails failed"
[ $fails = 0 ]
