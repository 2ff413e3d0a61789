#!/usr/bin/env bash
# `mae export --format onnx` checked by ONNX itself and run in ONNX Runtime. Skipped (exit 77) without Debian's
# python3-onnx (the checker), numpy and PIL, node, or onnxruntime-node in test-tools/ (tools/setup.sh --test puts it
# there: npm install --prefix test-tools --ignore-scripts onnxruntime-node).
# On a model pretrained and fine-tuned by mae (tests/lib/export_models.sh):
#   - onnx.checker (full check, with shape inference) passes; opset >= 17; the batch dimension is symbolic;
#   - the feature extractor, run by ONNX Runtime on the test images normalised as its metadata says, gives
#     `mae embed`'s features: cls and mean of the patch tokens (--global_pool), max abs difference <= 1e-4, for a
#     batch of 24 and of 5;
#   - the classifiers (global pool and cls token) give `mae finetune --eval --logits`' logits: max abs <= 1e-4 and
#     the same top-1 on every image.
set -euo pipefail
MAE=$1 SRC=$2
PY=/usr/bin/python3
ORT_MODULES="$SRC/test-tools/node_modules"
$PY -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('onnx', 'numpy', 'PIL')))" \
  2>/dev/null || { echo "python3-onnx, numpy or PIL not installed: skipped"; exit 77; }
command -v node >/dev/null || { echo "node not installed: skipped"; exit 77; }
[ -d "$ORT_MODULES/onnxruntime-node" ] ||
  { echo "onnxruntime-node not in test-tools/ (tools/setup.sh --test installs it): skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
T="$SRC/tools"
C="$T/export_check.py"
ort() { NODE_PATH="$ORT_MODULES" node "$SRC/tests/ort_run.js" "$@"; }

source "$SRC/tests/lib/export_models.sh"

checker() {  # MODEL OUTPUT-NAMES...: onnx.checker, opset, a symbolic batch, the outputs
  $PY - "$@" <<'PYEOF'
import sys
import onnx
path, outs = sys.argv[1], sys.argv[2:]
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
assert opset >= 17, opset
dims = m.graph.input[0].type.tensor_type.shape.dim
assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28], dims
assert [o.name for o in m.graph.output] == outs, [o.name for o in m.graph.output]
ops = sorted({n.op_type for n in m.graph.node})
print(f"ok   onnx.checker (full): opset {opset}, input images (batch, 1, 28, 28), outputs {outs}; ops {', '.join(ops)}")
PYEOF
}
images() {  # MODEL OUT.f32 CROP_PCT: the test split normalised as the model's metadata says
  local mean std
  mean=$($PY "$C" onnx-meta "$1" mae.normalize_mean | tr -d '[],')
  std=$($PY "$C" onnx-meta "$1" mae.normalize_std | tr -d '[],')
  $PY "$C" images "$tmp/data" t10k "$2" --mean $mean --std $std --crop_pct "$3" >/dev/null
}

echo "== features: an MAE checkpoint"
mkdir -p "$tmp/ort24" "$tmp/ort5"
"$MAE" export "$PRE" "$tmp/features.onnx" --format onnx | head -2
checker "$tmp/features.onnx" cls mean
images "$tmp/features.onnx" "$tmp/imgs.f32" 1  # 28-px data at the model's size: embed's transform resizes nothing
ort "$tmp/features.onnx" "$tmp/imgs.f32" 24 1 28 28 "$tmp/ort24" 2 >/dev/null
head -c $((5 * 28 * 28 * 4)) "$tmp/imgs.f32" >"$tmp/imgs5.f32"
ort "$tmp/features.onnx" "$tmp/imgs5.f32" 5 1 28 28 "$tmp/ort5" 2 >/dev/null
"$MAE" embed --checkpoint "$PRE" --data_path "$tmp/data" --split val --output "$tmp/cls.safetensors" 2>/dev/null
"$MAE" embed --checkpoint "$PRE" --data_path "$tmp/data" --split val --global_pool \
  --output "$tmp/mean.safetensors" 2>/dev/null
for f in cls mean; do
  $PY "$C" compare "$f, ORT vs mae embed" "$tmp/ort24/$f.f32" "features@$tmp/$f.safetensors" --atol 1e-4
  $PY "$C" compare "$f, ORT batch 5 vs mae embed" "$tmp/ort5/$f.f32" "features@$tmp/$f.safetensors" --atol 1e-4 --rows 5
done

for pool in global_pool cls_token; do
  echo "== classifier ($pool)"
  FT="$tmp/ft_$pool/checkpoint-last.safetensors"
  "$MAE" export "$FT" "$tmp/classifier.onnx" --force | head -2
  checker "$tmp/classifier.onnx" logits
  images "$tmp/classifier.onnx" "$tmp/imgs.f32" 0.875  # finetune's eval transform: Resize(32) + CenterCrop(28)
  ort "$tmp/classifier.onnx" "$tmp/imgs.f32" 24 1 28 28 "$tmp/ort24" 2 >/dev/null
  "$MAE" finetune --eval --resume "$FT" --data_path "$tmp/data" --batch_size 16 --num_workers 1 \
    --logits "$tmp/logits.safetensors" 2>/dev/null | head -1
  $PY "$C" compare "logits ($pool), ORT vs mae finetune --eval" "$tmp/ort24/logits.f32" \
    "logits@$tmp/logits.safetensors" --atol 1e-4 --top1
done
echo "PASSED"
