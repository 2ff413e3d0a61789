"""Writes the PyTorch-reference fixtures that the C++ parity tests read.

    /usr/bin/python3 tools/make_fixtures.py [--out tests/fixtures]

Per config X in (cfgA, cfgB):
  X.weights.safetensors  every state_dict tensor (official names, pos embeds included), F32;
                         metadata {"config": JSON of the constructor arguments, norm_pix_loss false}
  X.input.safetensors    imgs (B, C, H, W) N(0,1); noise (B, L) U[0,1); noise_steps (5, B, L) U[0,1)
Per case X_np{0,1}_mr{75,50}.expected.safetensors:
  loss [] ; pred (B, L, p*p*C) ; mask (B, L) ; ids_restore I64 (B, L) ;
  grad.<name> per trainable parameter: in the mr75 cases only (all cases with --all_grads), which keeps the
  folder under 1 MB; the mr50 cases still exercise backward through adamw_losses ;
  adamw_losses (5): AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8, wd 0.05, official groups) from the weights file,
  step s uses noise_steps[s], the loss recorded is the one before that step's update.
  metadata {"mask_ratio": "0.75"|"0.5", "norm_pix_loss": "0"|"1", "grads": "1"|"0"}
All in float32, deterministic (fixed seeds, one thread).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402
from mae_torch import MaskedAutoencoderViT, config_dict, param_groups  # noqa: E402

CONFIGS = {
    "cfgA": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=2,
                 decoder_embed_dim=24, decoder_depth=1, decoder_num_heads=2, mlp_ratio=4.0),
    "cfgB": dict(img_size=20, patch_size=4, in_chans=3, embed_dim=24, depth=2, num_heads=3,
                 decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2, mlp_ratio=4.0),
}
BATCH = 3
ADAMW_STEPS = 5


def perturb(model, gen):
    """Fresh init has zero biases and unit/zero LayerNorms, which would hide swapped or missing terms."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.add_(0.02 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.add_(0.02 * torch.randn(mod.bias.shape, generator=gen))
            elif isinstance(mod, (nn.Linear, nn.Conv2d)):
                mod.bias.add_(0.02 * torch.randn(mod.bias.shape, generator=gen))
        w = model.patch_embed.proj.weight
        w.add_(0.02 * torch.randn(w.shape, generator=gen))


def to_np(t):
    return t.detach().cpu().numpy()


def run_case(cfg, weights, inputs, mask_ratio, norm_pix, with_grads):
    model = MaskedAutoencoderViT(**cfg, norm_pix_loss=bool(norm_pix))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    imgs = torch.from_numpy(inputs["imgs"])
    noise = torch.from_numpy(inputs["noise"])
    loss, pred, mask = model(imgs, mask_ratio, noise)
    loss.backward()
    out = {"loss": to_np(loss).reshape(()).astype(np.float32), "pred": to_np(pred), "mask": to_np(mask),
           "ids_restore": to_np(model.ids_restore).astype(np.int64)}
    for name, p in model.named_parameters():
        if p.requires_grad and with_grads:
            out["grad." + name] = to_np(p.grad)

    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for s in range(ADAMW_STEPS):
        opt.zero_grad(set_to_none=True)
        loss, _, _ = model(imgs, mask_ratio, torch.from_numpy(inputs["noise_steps"][s]))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["adamw_losses"] = np.asarray(losses, dtype=np.float32)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    ap.add_argument("--all_grads", action="store_true", help="grads in the mr50 cases too (about 1.4 MB in all)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)          # fixed reduction order
    torch.set_default_dtype(torch.float32)

    for seed, (cname, cfg) in enumerate(CONFIGS.items()):
        torch.manual_seed(1000 + seed)
        model = MaskedAutoencoderViT(**cfg, norm_pix_loss=False)
        gen = torch.Generator().manual_seed(2000 + seed)
        perturb(model, gen)
        weights = {k: to_np(v).astype(np.float32) for k, v in model.state_dict().items()}
        meta = {"config": json.dumps(config_dict(model))}
        safetensors_np.save(os.path.join(args.out, f"{cname}.weights.safetensors"), weights, meta)

        C, H = cfg["in_chans"], cfg["img_size"]
        L = (H // cfg["patch_size"]) ** 2
        inputs = {"imgs": torch.randn(BATCH, C, H, H, generator=gen).numpy(),
                  "noise": torch.rand(BATCH, L, generator=gen).numpy(),
                  "noise_steps": torch.rand(ADAMW_STEPS, BATCH, L, generator=gen).numpy()}
        safetensors_np.save(os.path.join(args.out, f"{cname}.input.safetensors"), inputs)

        for norm_pix in (0, 1):
            for mr in (0.75, 0.5):
                with_grads = args.all_grads or mr == 0.75
                out = run_case(cfg, weights, inputs, mr, norm_pix, with_grads)
                fname = f"{cname}_np{norm_pix}_mr{int(round(mr * 100))}.expected.safetensors"
                safetensors_np.save(os.path.join(args.out, fname), out,
                                    {"mask_ratio": repr(mr), "norm_pix_loss": str(norm_pix),
                                     "grads": "1" if with_grads else "0"})
                print(f"{fname}: loss {out['loss']:.6f} adamw {np.array2string(out['adamw_losses'], precision=5)}")

    total = 0
    for f in sorted(os.listdir(args.out)):
        sz = os.path.getsize(os.path.join(args.out, f))
        total += sz
        print(f"{sz:9d}  {f}")
    print(f"{total:9d}  total")


if __name__ == "__main__":
    main()
