#!/usr/bin/env bash
# TensorBoard event files read by an independent decoder: Python with Google's protobuf library (Debian's
# python3-protobuf; skipped, exit 77, without it), the Event/Summary messages declared at run time from descriptors
# (no TensorFlow). Every record's length and both masked CRC32Cs are checked, the file_version record, the tags,
# steps and float values; protobuf must re-encode each record to the very bytes we wrote. The file comes from
# tests/tb_write_sample (MAE_TB_WRITE_SAMPLE, set by tests/CMakeLists.txt), and training runs are decoded by tests/run_skeleton.sh with the same tools/tb_events.py.
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
$PY -c "import google.protobuf.descriptor_pb2, google.protobuf.message_factory" 2>/dev/null ||
  { echo "python3 with google.protobuf (python3-protobuf) not available: skipped"; exit 77; }
TBW=${MAE_TB_WRITE_SAMPLE:-$(dirname "$MAE")/tests/tb_write_sample}
[ -x "$TBW" ] || { echo "FAIL tb_write_sample not built ($TBW)"; exit 1; }

# TAG VALUE STEP triples: negative and tiny values, a step past 2^32, a negative step, a unicode tag.
scalars=(train/loss 0.6931 1  train/loss -1.25 2  lr 1.5e-4 9000000000  "ünïcødé/损失" -3e38 42
         train/loss 0 0  neg/step 2.5 -7)

check() {  # NAME FILE: decode FILE expecting the scalars above
  if SRC="$SRC" $PY - "$2" "${scalars[@]}" >"$tmp/log" 2>&1 <<'EOF'
import os, struct, sys, time
sys.path.insert(0, os.path.join(os.environ["SRC"], "tools"))
import tb_events  # the independent decoder: lengths, both CRCs, file_version, re-encoding

path, args = sys.argv[1], [os.fsencode(a) for a in sys.argv[2:]]
want = [(args[i].decode("utf-8"), float(args[i + 1]), int(args[i + 2])) for i in range(0, len(args), 3)]
records = [(e, None) for e in tb_events.read(path)]
assert len(records) == 1 + len(want), f"{len(records)} records for {len(want)} scalars"
now = time.time()
for k, (e, _) in enumerate(records):
    assert now - 600 < e.wall_time <= now + 1, f"record {k}: wall_time {e.wall_time}"
e0 = records[0][0]
assert e0.file_version == "brain.Event:2" and not e0.HasField("summary"), e0
for k, ((tag, value, step), (e, _)) in enumerate(zip(want, records[1:]), 1):
    assert e.step == step and e.file_version == "", (k, e)
    assert len(e.summary.value) == 1, (k, e)
    v = e.summary.value[0]
    assert v.tag == tag, (k, v.tag, tag)
    assert v.simple_value == struct.unpack("<f", struct.pack("<f", value))[0], (k, v.simple_value, value)
print(f"{len(records)} records: lengths, CRCs, file_version, {len(want)} scalars as written")
EOF
  then ok "$1: $(tail -1 "$tmp/log")"
  else bad "$1: $(tail -5 "$tmp/log")"
  fi
}

f1=$("$TBW" "$tmp/run" "${scalars[@]}") && check "scalars decode with google.protobuf" "$f1" ||
  bad "tb_write_sample failed: $f1"
# A second writer into the same dir (same second, same host) gets its own file; the first is left intact.
f2=$("$TBW" "$tmp/run" "${scalars[@]}")
[ -n "$f2" ] && [ "$f2" != "$f1" ] && [ "$(ls "$tmp/run" | wc -l)" = 2 ] && ok "a second writer opens a new file" ||
  bad "second writer: '$f1' vs '$f2'"
check "second file decodes" "$f2"
check "first file still intact" "$f1"
# An unwritable dir: an error naming it, no crash.
touch "$tmp/plain"
if out=$("$TBW" "$tmp/plain/run" x 1 1 2>&1); then bad "a dir under a regular file was accepted"
elif grep -q "$tmp/plain/run" <<<"$out"; then ok "unwritable dir: $out"
else bad "unwritable dir: message does not name it: $out"
fi

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
