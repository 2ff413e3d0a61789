# Sourced by the serving tests: serve_start ARGS... starts `mae serve --port 0 ARGS...` in the background, waits (at
# most 60 s) for its "listening on" line and sets SERVE_PID and URL; the server is stopped when the test exits.
serve_start() {
  "$MAE" serve --port 0 "$@" >"$tmp/serve.out" 2>"$tmp/serve.err" &
  SERVE_PID=$!
  trap 'kill $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null; rm -rf "$tmp"' EXIT
  for _ in $(seq 600); do
    URL=$(sed -n 's/^mae serve: listening on \(http:[^ ]*\)$/\1/p' "$tmp/serve.out")
    [ -n "$URL" ] && return 0
    kill -0 $SERVE_PID 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL mae serve did not start:"; cat "$tmp/serve.err"; exit 1
}
