#!/usr/bin/env bash
# `mae convert IN DIR --to hf` and back through the CLI: every command that takes a checkpoint takes the folder and
# computes exactly what it computes from the original (forward, embed, finetune --eval logits: bit for bit), and
# converting the folder back gives the original tensors. The folder's contents against transformers' names and
# fields: tests/test_hf_folder.cpp.
set -euo pipefail
MAE=$1 SRC=$2
source "$SRC/tests/lib/common.sh"
W="$SRC/tests/fixtures/cfgA.weights.safetensors"
IN="$SRC/tests/fixtures/cfgA.input.safetensors"
same() { $PY "$SRC/tools/st_equal.py" "$1" "$2" >/dev/null && ok "$3" || bad "$3: $($PY "$SRC/tools/st_equal.py" "$1" "$2")"; }

"$MAE" convert "$W" "$tmp/hf" --to hf | tail -1
for f in config.json model.safetensors preprocessor_config.json; do
  [ -s "$tmp/hf/$f" ] && ok "folder has $f" || bad "folder lacks $f"
done
"$MAE" forward --checkpoint "$W" --input "$IN" --output "$tmp/a.safetensors" >/dev/null
"$MAE" forward --checkpoint "$tmp/hf" --input "$IN" --output "$tmp/b.safetensors" >/dev/null
same "$tmp/a.safetensors" "$tmp/b.safetensors" "mae forward: the folder == the original"
"$MAE" convert "$tmp/hf" "$tmp/back.safetensors" >/dev/null
"$MAE" convert "$W" "$tmp/direct.safetensors" >/dev/null
same "$tmp/back.safetensors" "$tmp/direct.safetensors" "folder -> official safetensors: the original tensors"

$PY "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 32 --n_test 16
"$MAE" embed --checkpoint "$W" --data_path "$tmp/data" --split val --output "$tmp/e1.safetensors" 2>/dev/null >&2
"$MAE" embed --checkpoint "$tmp/hf" --data_path "$tmp/data" --split val --output "$tmp/e2.safetensors" 2>/dev/null >&2
same "$tmp/e1.safetensors" "$tmp/e2.safetensors" "mae embed: the folder == the original"

# A cls-token classifier becomes ViTForImageClassification and evaluates to the same logits.
"$MAE" finetune --finetune "$W" --data_path "$tmp/data" --cls_token --epochs 1 --warmup_epochs 0 --batch_size 16 \
  --num_workers 1 --aa none --reprob 0 --output_dir "$tmp/ft" >/dev/null 2>&1
FT="$tmp/ft/checkpoint-last.safetensors"
"$MAE" convert "$FT" "$tmp/hfc" --to hf | tail -1
grep -q '"ViTForImageClassification"' "$tmp/hfc/config.json" && ok "classifier: ViTForImageClassification" ||
  bad "classifier: config.json is not a ViTForImageClassification one"
eval_logits() { "$MAE" finetune --eval --resume "$1" --data_path "$tmp/data" --num_workers 1 --logits "$2" >/dev/null 2>&1; }
eval_logits "$FT" "$tmp/l1.safetensors"
eval_logits "$tmp/hfc" "$tmp/l2.safetensors"
same "$tmp/l1.safetensors" "$tmp/l2.safetensors" "mae finetune --eval: the folder's logits == the original's"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
