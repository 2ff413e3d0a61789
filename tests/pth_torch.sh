#!/usr/bin/env bash
# .pth checkpoints written by the real torch.save (Debian's python3-torch; skipped, exit 77, without it):
# {'model': ...}, bare and training-checkpoint wrappers, float32 and float16, an encoder-only file, a deflate re-zip,
# the legacy format and a malicious pickle. Each good one goes through `mae convert` and `mae forward`, compared
# with PyTorch's forward by tools/compare_outputs.py; the HF round trip (--to hf and back) must give the same result.
# The preset is mae_vit_fmnist_small (28 px) to stay fast; MAE_PTH_BIG=1 adds mae_vit_base_patch16 (~450 MB).
set -euo pipefail
MAE=$1 SRC=$2
PY=/usr/bin/python3
# (find_spec: importing torch takes seconds, and the generator below imports it anyway)
$PY -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('torch') and u.find_spec('numpy')))" 2>/dev/null ||
  { echo "python3-torch not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MK="$SRC/tools/make_pth_fixture.py"
P=mae_vit_fmnist_small

cp "$SRC/tests/fixtures/cfgA.weights.safetensors" "$tmp/"
$PY "$MK" cases "$tmp" --preset $P --fixtures
# The committed fixtures must be what the generator writes now.
for f in tiny_official.pth tiny_mixed.pth; do
  cmp -s "$SRC/tests/fixtures/$f" "$tmp/$f" || { echo "stale fixture: tests/fixtures/$f differs from tools/make_pth_fixture.py"; exit 1; }
done

check() {  # DIR CONVERT-FLAGS...: convert, forward, compare with PyTorch
  local d=$1; shift
  "$MAE" convert "$d/w.pth" "$d/w.safetensors" "$@"
  "$MAE" forward --checkpoint "$d/w.safetensors" --input "$d/input.safetensors" --output "$d/out.safetensors" \
    --mask_ratio 0.75 >/dev/null
  $PY "$SRC/tools/compare_outputs.py" "$d/out.safetensors" "$d/expected.safetensors"
}

echo "== {'model': ...} float32"
check "$tmp/a" --model $P

echo "== bare state dict, float16"
check "$tmp/b" --model $P

echo "== training checkpoint: config from its args, no --model"
check "$tmp/c" | tee "$tmp/c/log"
grep -q "config from the checkpoint's args" "$tmp/c/log"

echo "== Hugging Face names and back"
"$MAE" convert "$tmp/a/w.safetensors" "$tmp/a/hf.safetensors" --to hf
"$MAE" convert "$tmp/a/hf.safetensors" "$tmp/a/back.safetensors"
SRC="$SRC" $PY - "$tmp/a" <<'EOF'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ["SRC"], "tools"))
import safetensors_np
d = sys.argv[1]
off, _ = safetensors_np.load(f"{d}/w.safetensors")
hf, meta = safetensors_np.load(f"{d}/hf.safetensors")
back, _ = safetensors_np.load(f"{d}/back.safetensors")
D = off["cls_token"].shape[-1]
qkv = off["blocks.2.attn.qkv.weight"]
for k, part in enumerate(("query", "key", "value")):
    assert np.array_equal(hf[f"vit.encoder.layer.2.attention.attention.{part}.weight"], qkv[k * D:(k + 1) * D]), part
assert np.array_equal(hf["decoder.decoder_layers.1.output.dense.bias"], off["decoder_blocks.1.mlp.fc2.bias"])
assert "hf_config" in meta and not any(n.startswith("blocks.") for n in hf)
assert sorted(back) == sorted(off), set(back) ^ set(off)
for n in off:
    assert np.array_equal(back[n], off[n]), n
print(f"ok   HF names: {len(hf)} tensors, q/k/v = rows of qkv; back to official: {len(back)} tensors identical")
EOF

echo "== deflate re-zip of the same .pth"
"$MAE" convert "$tmp/a/deflated.pth" "$tmp/a/deflated.safetensors" --model $P >/dev/null
"$MAE" forward --checkpoint "$tmp/a/deflated.safetensors" --input "$tmp/a/input.safetensors" \
  --output "$tmp/a/out2.safetensors" >/dev/null
$PY "$SRC/tools/compare_outputs.py" "$tmp/a/out2.safetensors" "$tmp/a/expected.safetensors"

echo "== encoder-only (like mae_pretrain_vit_base.pth)"
"$MAE" convert "$tmp/e/w.pth" "$tmp/e/w.safetensors" --model $P | tee "$tmp/e/log"
grep -q "encoder-only" "$tmp/e/log"
if "$MAE" forward --checkpoint "$tmp/e/w.safetensors" --input "$tmp/e/input.safetensors" \
     --output "$tmp/e/out.safetensors" 2>"$tmp/e/err"; then
  echo "FAIL forward on encoder-only weights should fail"; exit 1
fi
grep -q "decoder" "$tmp/e/err"
echo "ok   forward refuses: $(cat "$tmp/e/err")"

echo "== legacy format and a malicious pickle"
for f in legacy evil; do
  if "$MAE" convert "$tmp/$f.pth" "$tmp/$f.safetensors" --model $P 2>"$tmp/$f.err"; then
    echo "FAIL $f.pth accepted"; exit 1
  fi
  echo "ok   $f.pth refused: $(cat "$tmp/$f.err")"
done
grep -q "old torch.save format" "$tmp/legacy.err"
grep -q "refusing pickle global 'posix.system'" "$tmp/evil.err"
for f in PWNED evil.safetensors legacy.safetensors; do
  if [ -e "$tmp/$f" ]; then echo "FAIL $f exists"; exit 1; fi
done

if [ "${MAE_PTH_BIG:-0}" = 1 ]; then
  echo "== mae_vit_base_patch16, float32 (~450 MB)"
  $PY "$MK" case "$tmp/big" --preset mae_vit_base_patch16 --wrapper model --batch 1 --seed 5
  ls -l "$tmp/big/w.pth"
  check "$tmp/big" --model mae_vit_base_patch16
fi
echo "PASSED"
