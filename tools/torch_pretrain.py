"""The PyTorch reference (tools/mae_torch.py) pretrained with the recipe of `mae pretrain`, for comparing loss curves.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 tools/torch_pretrain.py \\
        --model mae_vit_fmnist_small --batch_size 256 --epochs 10 --warmup_epochs 1 --blr 1e-3 --norm_pix_loss \\
        --max_steps 468 --threads 2 --out runs/torch_pretrain

Same recipe as main_pretrain.py / `mae pretrain`: AdamW (0.9, 0.95), wd 0.05 on the official groups, lr = blr·batch/256,
per-iteration linear warmup + half-cycle cosine, RandomResizedCrop(scale 0.2–1, ratio 3/4–4/3, bicubic, antialias)
+ horizontal flip + normalize (Fashion-MNIST mean/std measured on the train split), mask 0.75. Only the random
streams differ (torch's RNG here, ours there). Writes metrics.jsonl (step, epoch_f, loss every 10 steps) and log.txt.
"""
import argparse, gzip, json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mae_torch  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    magic, n = struct.unpack(">II", b[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", b[8:16])
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, h, w)
    return np.frombuffer(b, np.uint8, offset=8)


def rrc_params(h, w, g, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision RandomResizedCrop.get_params."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=g))
        ar = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g)))
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            i = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            j = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            return i, j, ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def augment(batch_u8, size, g):
    """(B, H, W) uint8 → (B, 1, size, size) float in [0, 1]: RandomResizedCrop (bicubic, antialias) + flip."""
    out = torch.empty(len(batch_u8), 1, size, size)
    for k, img in enumerate(batch_u8):
        t = torch.from_numpy(img.astype(np.float32) / 255.0)[None, None]
        i, j, ch, cw = rrc_params(img.shape[0], img.shape[1], g)
        crop = t[:, :, i:i + ch, j:j + cw]
        r = F.interpolate(crop, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        r = r.clamp(0, 1)  # PIL works on 8-bit values
        if float(torch.rand(1, generator=g)) < 0.5:
            r = r.flip(-1)
        out[k] = r[0]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mae_vit_fmnist_small")
    ap.add_argument("--batch_size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--warmup_epochs", type=float, default=1)
    ap.add_argument("--blr", type=float, default=1e-3)
    ap.add_argument("--min_lr", type=float, default=0.0)
    ap.add_argument("--weight_decay", type=float, default=0.05)
    ap.add_argument("--mask_ratio", type=float, default=0.75)
    ap.add_argument("--norm_pix_loss", action="store_true")
    ap.add_argument("--max_steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/torch_pretrain")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed + 1)
    os.makedirs(a.out, exist_ok=True)

    imgs = read_idx(f"{FMNIST}/train-images-idx3-ubyte.gz")
    x = imgs.astype(np.float64) / 255.0
    mean, std = float(x.mean()), float(x.std())
    model = mae_torch.build(a.model, norm_pix_loss=a.norm_pix_loss)
    size = model.config["img_size"]
    lr = a.blr * a.batch_size / 256
    opt = mae_torch.make_optimizer(model, lr, a.weight_decay)
    iters = len(imgs) // a.batch_size
    total = a.max_steps or a.epochs * iters
    print(f"torch {torch.__version__}, threads {a.threads}, lr {lr:.3e}, mean {mean:.4f} std {std:.4f}, "
          f"{iters} iters/epoch, {total} steps", flush=True)
    metrics = open(os.path.join(a.out, "metrics.jsonl"), "w")
    log = open(os.path.join(a.out, "log.txt"), "w")
    step, t0 = 0, time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(imgs), generator=g).numpy()
        tot, n, acc, accn = 0.0, 0, 0.0, 0
        te = time.time()
        for it in range(iters):
            e = it / iters + epoch
            cur = lr * e / a.warmup_epochs if e < a.warmup_epochs else a.min_lr + (lr - a.min_lr) * 0.5 * (
                1 + math.cos(math.pi * (e - a.warmup_epochs) / (a.epochs - a.warmup_epochs)))
            for pg in opt.param_groups:
                pg["lr"] = cur
            batch = augment(imgs[perm[it * a.batch_size:(it + 1) * a.batch_size]], size, g)
            batch = (batch - mean) / std
            loss, _, _ = model(batch, mask_ratio=a.mask_ratio)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            lv = loss.item()
            tot, n, acc, accn = tot + lv, n + 1, acc + lv, accn + 1
            if step % 10 == 0 or step == total or it == iters - 1:
                metrics.write(json.dumps({"step": step, "epoch": epoch, "epoch_f": epoch + (it + 1) / iters,
                                          "loss": acc / accn, "lr": cur}) + "\n")
                metrics.flush()
                acc, accn = 0.0, 0
            if step % 20 == 0:
                el = time.time() - t0
                print(f"step {step}/{total} loss {lv:.4f} lr {cur:.3e} {step * a.batch_size / el:.1f} img/s", flush=True)
            if step >= total:
                break
        log.write(json.dumps({"train_loss": tot / n, "epoch": epoch, "step": step,
                              "epoch_time_s": time.time() - te}) + "\n")
        log.flush()
        if step >= total:
            break
    el = time.time() - t0
    print(f"done: {step} steps in {el:.1f} s ({step * a.batch_size / el:.1f} img/s), last-epoch mean loss {tot / n:.4f}")


if __name__ == "__main__":
    main()
