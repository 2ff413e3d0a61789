#!/usr/bin/env bash
# mae classify: class names stored by mae finetune (the training folders' names) and shown per image, --json,
# --data_path with the accuracy `mae finetune --eval` prints (the same preprocessing), an old checkpoint without
# names (class indices), and refusals (an MAE checkpoint, no pictures, a non-image).
set -uo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
source "$SRC/tests/lib/expect.sh"
source "$SRC/tests/lib/serve_models.sh"

names=$($PY - "$FT" <<'PYEOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"].get("class_names"))
PYEOF
)
[ "$names" = '["blob_bottom_right","blob_top_left"]' ] && ok "finetune stores class_names $names" ||
  bad "class_names metadata: $names"

out=$("$MAE" classify --checkpoint "$FT" --image "$IMG_A" "$IMG_B" --topk 2 2>"$tmp/err")
echo "$out"
[ "$(grep -c '  blob_\(top_left\|bottom_right\) [0-9.]*  blob_' <<<"$out")" = 2 ] && ok "two images, two named classes each" ||
  bad "classify --image: $out $(cat "$tmp/err")"

"$MAE" classify --checkpoint "$FT" --image "$IMG_A" --json >"$tmp/a.json" 2>/dev/null
$PY -c "
import json, sys
j = json.load(open(sys.argv[1]))
t = j[0]['top']
assert j[0]['image'].endswith('000.png') and len(t) == 2 and abs(sum(c['prob'] for c in t) - 1) < 1e-5, j
assert t[0]['prob'] >= t[1]['prob'] and {c['name'] for c in t} == {'blob_top_left', 'blob_bottom_right'}, j
" "$tmp/a.json" && ok "--json: top-k clipped to the 2 classes, probabilities sum to 1" || bad "--json: $(cat "$tmp/a.json")"

"$MAE" classify --checkpoint "$FT" --data_path "$tmp/folder" --split val >/dev/null 2>"$tmp/cls.err"
acc=$(sed -n 's/^top-1 accuracy on 12 labelled images: \([0-9.]*\)%$/\1/p' "$tmp/cls.err")
"$MAE" finetune --eval --resume "$FT" --data_path "$tmp/folder" --in_chans 1 --threads "${OMP_NUM_THREADS:-2}" --num_workers 1 --batch_size 8 \
  >"$tmp/eval.out" 2>/dev/null
want=$(sed -n 's/^acc1 \([0-9.]*\) .*/\1/p' "$tmp/eval.out")
[ -n "$acc" ] && [ "$acc" = "$want" ] && ok "--data_path: top-1 $acc% = finetune --eval's" ||
  bad "--data_path accuracy '$acc' vs finetune --eval '$want' ($(cat "$tmp/cls.err" | tail -2))"

# A checkpoint written before class names were stored: indices instead.
rewrite "$FT" "$tmp/old.safetensors" 'h["__metadata__"].pop("class_names")'
"$MAE" classify --checkpoint "$tmp/old.safetensors" --image "$IMG_A" --json >"$tmp/old.json" 2>/dev/null
$PY -c "
import json, sys
t = json.load(open(sys.argv[1]))[0]['top']
assert {c['name'] for c in t} == {'0', '1'} and all(c['name'] == str(c['index']) for c in t), t
" "$tmp/old.json" && ok "no class_names in the file: class indices" || bad "old checkpoint: $(cat "$tmp/old.json")"

expect_error "an MAE checkpoint" "not a fine-tuned classifier" -- "$MAE" classify --checkpoint "$MAE_CK" --image "$IMG_A"
expect_error "no pictures" "either as --image" -- "$MAE" classify --checkpoint "$FT"
expect_error "not an image" "not a JPEG or PNG" -- "$MAE" classify --checkpoint "$FT" --image "$SRC/README.md"
expect_error "--topk 0" "topk must be" -- "$MAE" classify --checkpoint "$FT" --image "$IMG_A" --topk 0

echo "classify_cli: $passes passed, $fails failed"
[ $fails = 0 ]
