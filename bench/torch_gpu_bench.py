"""PyTorch baseline for the CUDA backend: MAE pretraining-step throughput of the reference model
(tools/mae_torch.py, official architecture) in eager mode and under torch.compile, the way a PyTorch user would
run it on a GPU: bf16 autocast, F.scaled_dot_product_attention, fused AdamW (when available).

    python3 bench/torch_gpu_bench.py --model mae_vit_base_patch16 --batch_size 128          # on a GPU
    /usr/bin/python3 bench/torch_gpu_bench.py --device cpu --tiny --steps 2 --warmup 1       # smoke test, no GPU

Prints one JSON line per measurement:
  {"what": "gemm", "tflops": ...}                      bf16 8192^3 matmul rate (the MFU denominator)
  {"what": "train", "mode": "eager"|"compile", "img_s": ..., "step_s": ..., "peak_mem_mib": ..., "tflops": ...}
A mode that cannot run (no torch.compile in this torch, a compile error) prints {"what": "train", "mode": ...,
"error": "..."} instead, and the script still exits 0.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mae_torch  # noqa: E402
from mae_flops import train_flops  # noqa: E402


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mae_vit_base_patch16")
    ap.add_argument("--tiny", action="store_true", help="mae_vit_fmnist_small at batch 8 (smoke test)")
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--mask_ratio", type=float, default=0.75)
    ap.add_argument("--norm_pix_loss", type=int, default=1, help="1 (the paper's recipe) or 0")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"], help="autocast dtype (fp32: none)")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps (compile happens here)")
    ap.add_argument("--gemm", type=int, default=8192, help="size of the bf16 GEMM whose rate is the MFU peak (0: skip)")
    return ap.parse_args()


def sdpa_attention_forward(self, x):  # same maths as mae_torch.Attention.forward, through the fused kernel
    B, N, D = x.shape
    qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v)
    return self.proj(out.transpose(1, 2).reshape(B, N, D))


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def gemm_rate(n, device):
    dt = torch.bfloat16 if device == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20 if device == "cuda" else 2
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    dt_s = (time.perf_counter() - t0) / reps
    return 2.0 * n ** 3 / dt_s / 1e12


def bench_mode(args, mode, cfg, B):
    device = args.device
    torch.manual_seed(0)
    model = mae_torch.build(cfg, norm_pix_loss=bool(args.norm_pix_loss)).to(device)
    opt_kw = {}
    if device == "cuda":
        opt_kw["fused"] = True
    try:
        opt = torch.optim.AdamW(mae_torch.param_groups(model, 0.05), lr=1.5e-4, betas=(0.9, 0.95), **opt_kw)
        fused = bool(opt_kw)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(mae_torch.param_groups(model, 0.05), lr=1.5e-4, betas=(0.9, 0.95))
        fused = False
    fwd = model
    if mode == "compile":
        if not hasattr(torch, "compile"):
            raise RuntimeError(f"torch {torch.__version__} has no torch.compile")
        fwd = torch.compile(model)
    C, S = cfg["in_chans"], cfg["img_size"]
    imgs = torch.randn(B, C, S, S, device=device)
    L = (S // cfg["patch_size"]) ** 2
    use_amp = args.precision == "bf16"

    def step():
        noise = torch.rand(B, L, device=device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
            loss, _, _ = fwd(imgs, args.mask_ratio, noise)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    step_s = times[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda" else None
    flops = train_flops(cfg, B, args.mask_ratio)
    return {"what": "train", "mode": mode, "model": args.model, "batch": B, "precision": args.precision,
            "img_s": B / step_s, "step_s": step_s, "peak_mem_mib": peak, "tflops": flops / step_s / 1e12,
            "fused_adamw": fused, "torch": torch.__version__}


def main():
    args = parse()
    if args.tiny:
        args.model, args.batch_size = "mae_vit_fmnist_small", min(args.batch_size, 8)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_gpu_bench: no CUDA device visible to torch")
    cfg = dict(mae_torch.PRESETS[args.model])
    if hasattr(F, "scaled_dot_product_attention"):
        mae_torch.Attention.forward = sdpa_attention_forward
        attn = "sdpa"
    else:
        attn = "explicit (no F.scaled_dot_product_attention in this torch)"
    print(json.dumps({"what": "info", "torch": torch.__version__, "device": args.device, "attention": attn,
                      "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}), flush=True)
    if args.gemm > 0:
        n = args.gemm if args.device == "cuda" else min(args.gemm, 512)
        print(json.dumps({"what": "gemm", "n": n, "dtype": "bf16" if args.device == "cuda" else "fp32",
                          "tflops": gemm_rate(n, args.device)}), flush=True)
    for mode in [m for m in args.modes.split(",") if m]:
        try:
            r = bench_mode(args, mode, cfg, args.batch_size)
        except Exception as e:  # report and go on: the other mode still counts
            r = {"what": "train", "mode": mode, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps(r), flush=True)
        if args.device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
