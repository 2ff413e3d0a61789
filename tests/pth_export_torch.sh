#!/usr/bin/env bash
# `mae convert --to pth` opened by PyTorch (Debian's python3-torch; skipped, exit 77, without torch, numpy or PIL):
# a model pretrained by `mae pretrain` and fine-tuned by `mae finetune` (a few steps on a tiny IDX set) goes out as
# .pth, torch.load(p, weights_only=True) opens it, and
#   - the MAE loads into MaskedAutoencoderViT (tools/mae_torch.py: the official module's names) with strict=True
#     and gives mae forward's loss and pred within 1e-5 relative on the same images and noise,
#   - its encoder (--as encoder) holds exactly the encoder keys (what the official --finetune loads),
#   - the fine-tuned classifiers (global pool and cls token) load into models_vit's VisionTransformer with
#     strict=True and give `mae finetune --eval --logits`' logits within 1e-5 relative, the same top-1,
#   - our reader reads the .pth back (and a torch.save re-save of it) to the same tensors, bit for bit.
set -euo pipefail
MAE=$1 SRC=$2
PY=/usr/bin/python3
$PY -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('torch', 'numpy', 'PIL')))" \
  2>/dev/null || { echo "python3-torch, numpy or PIL not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
T="$SRC/tools"
C="$T/export_check.py"
export PYTHONPATH="$T"

source "$SRC/tests/lib/export_models.sh"

echo "== MAE: strict load into MaskedAutoencoderViT, same forward"
"$MAE" convert "$PRE" "$tmp/pre.pth" | tail -1
$PY - "$tmp" <<'PYEOF'
import sys
import numpy as np
import torch
import mae_torch, safetensors_np
d = sys.argv[1]
ck = torch.load(f"{d}/pre.pth", weights_only=True)
assert sorted(ck) == ["args", "config", "epoch", "model"], sorted(ck)
assert ck["epoch"] == 0 and ck["args"]["model"] == "mae_vit_fmnist_small" and ck["args"]["norm_pix_loss"] is True
m = mae_torch.MaskedAutoencoderViT(**ck["config"]).eval()
print("load_state_dict(strict=True):", m.load_state_dict(ck["model"], strict=True))
g = torch.Generator().manual_seed(3)
imgs, noise = torch.randn(4, 1, 28, 28, generator=g), torch.rand(4, 49, generator=g)
with torch.no_grad():
    loss, pred, mask = m(imgs, 0.75, noise)
safetensors_np.save(f"{d}/in.safetensors", {"imgs": imgs.numpy(), "noise": noise.numpy()})
safetensors_np.save(f"{d}/torch_out.safetensors", {"loss": np.array(loss.item(), np.float32), "pred": pred.numpy(),
                                                   "mask": mask.numpy()})
PYEOF
"$MAE" forward --checkpoint "$tmp/pre.pth" --input "$tmp/in.safetensors" --output "$tmp/out_pth.safetensors" >/dev/null
"$MAE" forward --checkpoint "$PRE" --input "$tmp/in.safetensors" --output "$tmp/out_st.safetensors" >/dev/null
$PY "$T/st_equal.py" "$tmp/out_pth.safetensors" "$tmp/out_st.safetensors"  # the .pth is the same model, bit for bit
$PY "$C" compare "loss, torch vs mae" "loss@$tmp/torch_out.safetensors" "loss@$tmp/out_pth.safetensors" --rtol 1e-5
$PY "$C" compare "pred, torch vs mae" "pred@$tmp/torch_out.safetensors" "pred@$tmp/out_pth.safetensors" --rtol 1e-5
$PY "$C" compare "mask, torch vs mae" "mask@$tmp/torch_out.safetensors" "mask@$tmp/out_pth.safetensors" --atol 0

echo "== encoder-only (--as encoder): the official encoder keys"
"$MAE" convert "$PRE" "$tmp/enc.pth" --as encoder | tail -1
$PY - "$tmp" <<'PYEOF'
import sys
import torch
import mae_torch
d = sys.argv[1]
ck = torch.load(f"{d}/enc.pth", weights_only=True)
full = mae_torch.MaskedAutoencoderViT(**ck["config"])
r = full.load_state_dict(ck["model"], strict=False)
assert not r.unexpected_keys and all(k.startswith("decoder") or k == "mask_token" for k in r.missing_keys), r
# main_finetune.py --finetune: the classifier takes every encoder tensor; head and fc_norm start fresh, norm unused.
keys = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio")
vit = mae_torch.VisionTransformer(num_classes=2, global_pool=True, **{k: ck["config"][k] for k in keys})
r = vit.load_state_dict(ck["model"], strict=False)
assert set(r.missing_keys) == {"head.weight", "head.bias", "fc_norm.weight", "fc_norm.bias"}, r.missing_keys
assert set(r.unexpected_keys) == {"norm.weight", "norm.bias"}, r.unexpected_keys
print(f"ok   {len(ck['model'])} encoder tensors: only the decoder missing, nothing unexpected")
PYEOF

for pool in global_pool cls_token; do
  echo "== classifier ($pool): strict load into models_vit VisionTransformer, same logits"
  FT="$tmp/ft_$pool/checkpoint-last.safetensors"
  "$MAE" convert "$FT" "$tmp/ft.pth" --force | tail -1
  "$MAE" finetune --eval --resume "$FT" --data_path "$tmp/data" --batch_size 16 --num_workers 1 \
    --logits "$tmp/mae_logits.safetensors" 2>/dev/null | head -1
  $PY - "$tmp" "$pool" <<'PYEOF'
import json, sys
import numpy as np
import torch
import mae_torch, export_check
d, pool = sys.argv[1:3]
ck = torch.load(f"{d}/ft.pth", weights_only=True)
assert ck["config"]["global_pool"] == (pool == "global_pool"), ck["config"]
m = mae_torch.VisionTransformer(**ck["config"]).eval()
print("load_state_dict(strict=True):", m.load_state_dict(ck["model"], strict=True))
norm = json.loads(ck["args"]["normalize"])  # the finetune run's normalisation, as text (see io/pth_writer.h)
x = export_check.eval_images(export_check.read_idx_images(f"{d}/data", "t10k"), 28, 0.875, norm["mean"], norm["std"])
with torch.no_grad():
    np.asarray(m(torch.from_numpy(x)).numpy(), "<f4").tofile(f"{d}/torch_logits.f32")
PYEOF
  $PY "$C" compare "logits ($pool), torch vs mae" "$tmp/torch_logits.f32" "logits@$tmp/mae_logits.safetensors" \
    --rtol 1e-5 --top1
done

echo "== our reader: the .pth (and torch's re-save of it) back to the same tensors"
"$MAE" convert "$tmp/ft.pth" "$tmp/back.safetensors" >/dev/null
"$MAE" convert "$FT" "$tmp/direct.safetensors" >/dev/null
$PY "$T/st_equal.py" "$tmp/back.safetensors" "$tmp/direct.safetensors"
$PY -c "import torch, sys; torch.save(torch.load(sys.argv[1], weights_only=True), sys.argv[2])" "$tmp/ft.pth" "$tmp/resaved.pth"
"$MAE" convert "$tmp/resaved.pth" "$tmp/back2.safetensors" >/dev/null
$PY "$T/st_equal.py" "$tmp/back2.safetensors" "$tmp/direct.safetensors"
echo "PASSED"
