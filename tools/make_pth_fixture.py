"""PyTorch .pth files (torch.save, ZIP format) for the C++ .pth reader's tests.

    /usr/bin/python3 tools/make_pth_fixture.py                 # the committed fixtures
    /usr/bin/python3 tools/make_pth_fixture.py case DIR --preset NAME [--wrapper model|bare|train|encoder]
                                               [--dtype f32|f16] [--batch B] [--seed S]

Committed fixtures (tests/fixtures):
  tiny_official.pth  {'model': state_dict} of tools/mae_torch.py's model holding cfgA.weights.safetensors
                     exactly (float32, torch.save defaults: pickle protocol 2, stored entries); a real
                     model.state_dict(), so its pickle also carries the OrderedDict's _metadata (BUILD).
  tiny_mixed.pth     a training-checkpoint layout, pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, ...):
                     {'model': {every storage dtype, a transposed view, a slice sharing its storage, a scalar,
                     an empty tensor, an nn.Parameter}, 'optimizer': ..., 'epoch': 7, 'scaler': ...,
                     'args': argparse.Namespace(...)}; values are small formulas the C++ test recomputes.
`cases DIR --preset P` writes what tests/pth_torch.sh uses: DIR/{a,b,c,e} = `case` with the wrappers model, bare,
train, encoder (b in float16), DIR/a/deflated.pth (a re-zipped with deflate), DIR/legacy.pth (pre-1.6 format) and
DIR/evil.pth (a pickle that would run os.system); with --fixtures also the committed fixtures, for comparison.
`case` writes DIR/w.pth (a random-init model of the preset in the given wrapper and dtype), DIR/input.safetensors
(imgs, noise) and DIR/expected.safetensors (PyTorch's loss, pred, mask, ids_restore at mask ratio 0.75, from the
weights exactly as saved, i.e. float16-rounded for --dtype f16), for tests/pth_torch.sh.
"""
import argparse
import collections
import os
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_np  # noqa: E402
from mae_torch import PRESETS, MaskedAutoencoderViT  # noqa: E402

CFG_A = dict(img_size=28, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=2,
             decoder_embed_dim=24, decoder_depth=1, decoder_num_heads=2, mlp_ratio=4.0)
EXTRA_PRESETS = {  # the C++ presets tools/mae_torch.py does not list
    "mae_vit_fmnist_small": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=128, depth=6, num_heads=4,
                                 decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0),
    "mae_vit_small_patch16": dict(img_size=224, patch_size=16, in_chans=3, embed_dim=384, depth=12, num_heads=6,
                                  decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0),
}


def tiny_official(out_dir):
    weights, meta = safetensors_np.load(os.path.join(out_dir, "cfgA.weights.safetensors"))
    model = MaskedAutoencoderViT(**CFG_A)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    torch.save({"model": model.state_dict()}, os.path.join(out_dir, "tiny_official.pth"))


def tiny_mixed(out_dir):
    base = torch.arange(10, dtype=torch.float32) * 0.5 - 2.0
    model = collections.OrderedDict()
    model["f32"] = torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0
    model["f16"] = (torch.arange(5, dtype=torch.float32) * 0.25 - 0.5).half()
    model["bf16"] = (torch.arange(4, dtype=torch.float32) * 1.5).bfloat16()
    model["f64"] = torch.arange(3, dtype=torch.float64) / 3.0
    model["i64"] = torch.arange(4, dtype=torch.int64) - 2
    model["i32"] = torch.tensor([-7, 7], dtype=torch.int32)
    model["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    model["bool"] = torch.tensor([True, False, True])
    model["tview"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()  # (4, 3), stride (1, 4)
    model["base"] = base
    model["slice"] = base[3:7]                                                  # offset 3, shares base's storage
    model["scalar"] = torch.tensor(3.5)
    model["empty"] = torch.zeros(0, 3)
    model["param"] = torch.nn.Parameter(torch.full((2,), 2.0))
    ckpt = {
        "model": model,
        "optimizer": {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(2)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.95), "weight_decay": 0.05, "params": [0]}]},
        "epoch": 7,
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 3},
        "args": argparse.Namespace(model="mae_vit_fmnist_small", input_size=28, norm_pix_loss=True, mask_ratio=0.75,
                                   blr=1.5e-4, output_dir="./out", resume="", data_path=None, big=2 ** 40),
    }
    torch.save(ckpt, os.path.join(out_dir, "tiny_mixed.pth"), pickle_protocol=4)


def config_of(preset):
    return dict(PRESETS.get(preset) or EXTRA_PRESETS[preset])


def case(args):
    os.makedirs(args.dir, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    cfg = config_of(args.preset)
    model = MaskedAutoencoderViT(**cfg)
    with torch.no_grad():  # fresh init has zero biases and unit LayerNorms, which would hide mix-ups
        for name, p in model.named_parameters():
            if p.requires_grad and p.ndim == 1:
                p.add_(0.05 * torch.randn(p.shape))
    sd = model.state_dict()
    if args.dtype == "f16":
        sd = collections.OrderedDict((k, v.half()) for k, v in sd.items())
    # What the file holds, back in float32. The fixed sin-cos tables stay exact: readers (ours, the official
    # initialize_weights) compute them rather than trust a float16-rounded copy.
    model.load_state_dict({k: v.float() for k, v in sd.items() if not k.endswith("pos_embed")}, strict=False)
    if args.wrapper == "encoder":  # like mae_pretrain_vit_base.pth
        sd = collections.OrderedDict((k, v) for k, v in sd.items()
                                     if not (k.startswith("decoder") or k == "mask_token"))
    if args.wrapper == "bare":
        obj = sd
    elif args.wrapper == "train":
        obj = {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": []}]}, "epoch": 1,
               "scaler": {"scale": 1024.0}, "args": argparse.Namespace(model=args.preset, input_size=cfg["img_size"],
                                                                      norm_pix_loss=False, mask_ratio=0.75)}
    else:
        obj = {"model": sd}
    torch.save(obj, os.path.join(args.dir, "w.pth"))

    C, H, L = cfg["in_chans"], cfg["img_size"], (cfg["img_size"] // cfg["patch_size"]) ** 2
    gen = torch.Generator().manual_seed(args.seed + 1)
    imgs = torch.randn(args.batch, C, H, H, generator=gen)
    noise = torch.rand(args.batch, L, generator=gen)
    safetensors_np.save(os.path.join(args.dir, "input.safetensors"), {"imgs": imgs.numpy(), "noise": noise.numpy()})
    with torch.no_grad():
        loss, pred, mask = model(imgs, 0.75, noise)
    safetensors_np.save(os.path.join(args.dir, "expected.safetensors"),
                        {"loss": loss.numpy().reshape(()).astype(np.float32), "pred": pred.numpy(),
                         "mask": mask.numpy(), "ids_restore": model.ids_restore.numpy().astype(np.int64)},
                        {"mask_ratio": "0.75", "norm_pix_loss": "0", "grads": "0"})


def cases(args):
    """Everything tests/pth_torch.sh needs, in one process (importing torch is the slow part)."""
    specs = {"a": ("model", "f32"), "b": ("bare", "f16"), "c": ("train", "f32"), "e": ("encoder", "f32")}
    for seed, (sub, (wrapper, dtype)) in enumerate(specs.items()):
        case(argparse.Namespace(dir=os.path.join(args.dir, sub), preset=args.preset, wrapper=wrapper, dtype=dtype,
                                batch=2, seed=seed + 1))
    with zipfile.ZipFile(os.path.join(args.dir, "a", "w.pth")) as src, \
            zipfile.ZipFile(os.path.join(args.dir, "a", "deflated.pth"), "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    torch.save({"model": {"cls_token": torch.zeros(1, 1, 8)}}, os.path.join(args.dir, "legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.save({"model": Evil(os.path.join(args.dir, "PWNED"))}, os.path.join(args.dir, "evil.pth"))
    if args.fixtures:  # regenerate the committed fixtures into DIR too (needs DIR/cfgA.weights.safetensors)
        tiny_official(args.dir)
        tiny_mixed(args.dir)


class Evil:
    """Unpickling this runs os.system: a reader that executes pickles would create the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("case")
    c.add_argument("dir")
    c.add_argument("--preset", required=True)
    c.add_argument("--wrapper", choices=["model", "bare", "train", "encoder"], default="model")
    c.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    c.add_argument("--batch", type=int, default=2)
    c.add_argument("--seed", type=int, default=0)
    cs = sub.add_parser("cases")
    cs.add_argument("dir")
    cs.add_argument("--preset", required=True)
    cs.add_argument("--fixtures", action="store_true", help="also write tiny_official.pth and tiny_mixed.pth into DIR")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures"))
    args = ap.parse_args()
    if args.cmd in ("case", "cases"):
        (case if args.cmd == "case" else cases)(args)
        return
    tiny_official(args.out)
    tiny_mixed(args.out)
    for f in ("tiny_official.pth", "tiny_mixed.pth"):
        print(f"{os.path.getsize(os.path.join(args.out, f)):9d}  {f}")


if __name__ == "__main__":
    main()
