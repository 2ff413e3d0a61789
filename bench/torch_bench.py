"""Throughput of the PyTorch reference MAE (tools/mae_torch.py): training step and forward only.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    /usr/bin/python3 bench/torch_bench.py --model mae_vit_fmnist --batch_size 32 --threads 2 --steps 10 --warmup 2

Training step = forward + backward + AdamW (0.9, 0.95) step with the official weight-decay groups.
Forward only runs under torch.no_grad. GFLOP/s counts GEMMs analytically (tools/mae_flops.py; training = 3x forward).
Debian's torch calls whatever libblas.so.3 the loader finds: without the LD_LIBRARY_PATH above it may get the
reference BLAS (slow), which this script reports loudly.
"""
import argparse
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

CONFIG_FLAGS = [("img_size", int), ("patch_size", int), ("in_chans", int), ("embed_dim", int), ("depth", int),
                ("num_heads", int), ("decoder_embed_dim", int), ("decoder_depth", int),
                ("decoder_num_heads", int), ("mlp_ratio", float)]


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="preset name (tools/mae_torch.py PRESETS)")
    for name, typ in CONFIG_FLAGS:
        ap.add_argument("--" + name, type=typ, default=None, help="override / explicit config")
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--mask_ratio", type=float, default=0.75)
    ap.add_argument("--norm_pix_loss", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1.5e-4)
    ap.add_argument("--weight_decay", type=float, default=0.05)
    ap.add_argument("--json", action="store_true", help="print one JSON line only")
    return ap.parse_args()


def mapped_blas():
    """Shared objects with 'blas' in their path that this process has mapped."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and "blas" in parts[-1].lower():
                    libs.add(os.path.realpath(parts[-1]))
    except OSError:
        pass
    return sorted(libs)


def blas_description(torch):
    cfg = torch.__config__.show()
    info = [l.strip() for l in cfg.replace(",", "\n").splitlines() if "BLAS_INFO" in l or "LAPACK_INFO" in l]
    libs = mapped_blas()
    reference = any("/blas/libblas" in l for l in libs)
    if not libs:
        kind = "unknown"
    elif reference:
        kind = "reference-blas"
    elif any("openblas-openmp" in l for l in libs):
        kind = "openblas-openmp"
    elif any("openblas-pthread" in l for l in libs):
        kind = "openblas-pthread"
    elif any("openblas" in l for l in libs):
        kind = "openblas"
    elif any("blis" in l for l in libs):
        kind = "blis"
    elif any("mkl" in l for l in libs):
        kind = "mkl"
    else:
        kind = "other"
    return kind, info, libs, reference


def main():
    args = parse()
    # OpenBLAS (OpenMP build) sizes its pool from OpenMP; set it before torch loads it.
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    import torch
    from mae_torch import PRESETS, MaskedAutoencoderViT, config_dict, make_optimizer
    from mae_flops import model_flops

    torch.set_num_threads(args.threads)
    if args.model is None and any(getattr(args, n) is None for n, _ in CONFIG_FLAGS if n != "mlp_ratio"):
        sys.exit("give --model NAME or every config flag (--img_size --patch_size --in_chans --embed_dim --depth "
                 "--num_heads --decoder_embed_dim --decoder_depth --decoder_num_heads [--mlp_ratio])")
    if args.model is not None and args.model not in PRESETS:
        sys.exit(f"unknown model {args.model}; presets: {', '.join(PRESETS)}")
    cfg = dict(PRESETS[args.model]) if args.model else {"mlp_ratio": 4.0}
    for name, _ in CONFIG_FLAGS:
        if getattr(args, name) is not None:
            cfg[name] = getattr(args, name)
    cfg["norm_pix_loss"] = args.norm_pix_loss

    torch.manual_seed(0)
    model = MaskedAutoencoderViT(**cfg)
    opt = make_optimizer(model, lr=args.lr, wd=args.weight_decay)
    B, C, H = args.batch_size, cfg["in_chans"], cfg["img_size"]
    L = model.patch_embed.num_patches
    imgs = torch.randn(B, C, H, H)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss, _, _ = model(imgs, args.mask_ratio, torch.rand(B, L))
        loss.backward()
        opt.step()
        return loss

    def fwd_step():
        with torch.no_grad():
            return model(imgs, args.mask_ratio, torch.rand(B, L))[0]

    def timed(fn):
        for _ in range(args.warmup):
            fn()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            fn()
        return (time.perf_counter() - t0) / max(args.steps, 1)

    model.train()
    t_train = timed(train_step)
    t_fwd = timed(fwd_step)
    fwd_flops = model_flops(cfg, B, args.mask_ratio)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB
    kind, info, libs, reference = blas_description(torch)

    res = {"impl": "torch", "model": args.model or "custom", "batch": B, "threads": args.threads,
           "train_img_s": B / t_train, "fwd_img_s": B / t_fwd,
           "train_gflops": 3 * fwd_flops / t_train / 1e9, "fwd_gflops": fwd_flops / t_fwd / 1e9,
           "peak_rss_mib": peak_rss, "blas": kind}
    if reference:
        print("!" * 100 + "\nWARNING: torch is running on the REFERENCE BLAS (" + ", ".join(libs) + ").\n"
              "Timings are meaningless. Run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp\n"
              + "!" * 100, file=sys.stderr)
    if args.json:
        print(json.dumps(res))
        return
    print(f"torch {torch.__version__}, threads {args.threads} (torch.get_num_threads {torch.get_num_threads()})")
    print(f"config {json.dumps(config_dict(model))}")
    print(f"batch {B}, mask_ratio {args.mask_ratio}, steps {args.steps} after {args.warmup} warmup")
    print(f"forward GFLOP per batch: {fwd_flops / 1e9:.3f} (train = 3x)")
    print(f"train:   {res['train_img_s']:9.1f} img/s  {res['train_gflops']:7.1f} GFLOP/s  ({t_train * 1e3:.1f} ms/step)")
    print(f"forward: {res['fwd_img_s']:9.1f} img/s  {res['fwd_gflops']:7.1f} GFLOP/s  ({t_fwd * 1e3:.1f} ms/step)")
    print(f"peak RSS: {peak_rss:.0f} MiB")
    print(f"BLAS: {kind}; mapped: {', '.join(libs) or 'none'}; torch config: {'; '.join(info)}")


if __name__ == "__main__":
    main()
