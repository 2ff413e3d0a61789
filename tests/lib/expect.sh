# Sourced by tests that feed mae bad input (after lib/common.sh): expect_error, and rewrite for safetensors files.
# expect_error NAME PATTERN -- command...   (the output file is $tmp/out.safetensors)
expect_error() {
  local name=$1 pattern=$2
  shift 3
  rm -f "$tmp/out.safetensors"
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  local msg
  msg=$(cat "$tmp/stderr" "$tmp/stdout")
  if [ $rc -eq 0 ] || [ $rc -gt 128 ]; then
    echo "FAIL $name: exit $rc"; fails=$((fails + 1))
  elif ! grep -qE -- "$pattern" <<<"$msg"; then
    echo "FAIL $name: message does not match /$pattern/: $msg"; fails=$((fails + 1))
  elif [ -e "$tmp/out.safetensors" ] || ls "$tmp"/out.safetensors.tmp* >/dev/null 2>&1; then
    echo "FAIL $name: an output file was left behind"; fails=$((fails + 1))
  else
    echo "ok   $name: $(head -c 160 <<<"$msg" | tr '\n' ' ')"; passes=$((passes + 1))
  fi
}

# Rewrites a safetensors file: EDIT is Python code acting on `h` (the header dict) and `data` (bytes).
rewrite() {  # rewrite IN OUT EDIT
  $PY - "$1" "$2" "$3" <<'PYEOF'
import json, struct, sys
src, dst, edit = sys.argv[1:4]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); data = b[8 + n:]
exec(edit)
hb = json.dumps(h).encode()
hb += b' ' * (-len(hb) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
PYEOF
}

