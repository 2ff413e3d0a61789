"""Helpers of the export tests (tests/pth_export_torch.sh, tests/onnx_export.sh) and bench/onnx_vs_embed.sh.

    python3 tools/export_check.py images DATA SPLIT OUT.f32 --mean M [M ...] --std S [S ...] [--size S] [--crop_pct P]
        The images of an IDX split (train / t10k) as mae feeds them to a model, written as raw float32 (N, 1, S, S):
        with crop_pct < 1 Resize(int(S / crop_pct), bicubic) + CenterCrop(S) by PIL (mae's eval transform is
        PIL-exact, src/data/transforms.h), then pixels / 255 and (x - mean) / std. Prints N.
    python3 tools/export_check.py compare NAME GOT EXPECTED --atol A | --rtol R [--top1] [--rows K]
        GOT/EXPECTED: raw .f32 (N, K) files or TENSOR@file.safetensors. Prints max abs and max relative difference
        (relative to the largest |expected|), and with --top1 whether every row's argmax agrees; --rows K compares
        with EXPECTED's first K rows. Exit 1 on failure.
    python3 tools/export_check.py onnx-meta MODEL.onnx KEY
        Prints metadata_props[KEY] (needs python3-onnx).
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def read_idx_images(data, split):
    name = os.path.join(data, f"{split}-images-idx3-ubyte")
    f = gzip.open(name + ".gz", "rb") if os.path.exists(name + ".gz") else open(name, "rb")
    with f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 0x803, name
        return np.frombuffer(f.read(n * h * w), np.uint8).reshape(n, h, w)


def eval_images(u8, size, crop_pct, mean, std):
    if crop_pct < 1:
        from PIL import Image  # only the resizing eval transform needs PIL
        r = int(size / crop_pct)
        top = int(round((r - size) / 2.0))
        out = []
        for im in u8:
            big = np.asarray(Image.fromarray(im, "L").resize((r, r), Image.BICUBIC))
            out.append(big[top:top + size, top:top + size])
        u8 = np.stack(out)
    x = u8.astype(np.float32)[:, None] / np.float32(255.0)
    return ((x - np.float32(mean[0])) / np.float32(std[0])).astype("<f4")


def load(spec, like=None):
    if "@" in spec:
        name, path = spec.split("@", 1)
        return safetensors_np.load(path)[0][name].astype(np.float64)
    a = np.fromfile(spec, "<f4").astype(np.float64)
    return a.reshape(like.shape) if like is not None else a


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("images")
    p.add_argument("data"), p.add_argument("split"), p.add_argument("out")
    p.add_argument("--mean", type=float, nargs="+", required=True)
    p.add_argument("--std", type=float, nargs="+", required=True)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--crop_pct", type=float, default=1.0)
    c = sub.add_parser("compare")
    c.add_argument("name"), c.add_argument("got"), c.add_argument("expected")
    c.add_argument("--atol", type=float), c.add_argument("--rtol", type=float)
    c.add_argument("--top1", action="store_true")
    c.add_argument("--rows", type=int, help="compare with the first ROWS rows of EXPECTED (a smaller batch)")
    m = sub.add_parser("onnx-meta")
    m.add_argument("model"), m.add_argument("key")
    a = ap.parse_args()

    if a.cmd == "images":
        x = eval_images(read_idx_images(a.data, a.split), a.size, a.crop_pct, a.mean, a.std)
        x.tofile(a.out)
        print(len(x))
    elif a.cmd == "compare":
        exp = load(a.expected)
        if a.rows:
            exp = exp[:a.rows]
        got = load(a.got, exp)
        if got.shape != exp.shape:
            print(f"FAIL {a.name}: shapes {got.shape} and {exp.shape}")
            sys.exit(1)
        d = np.abs(got - exp)
        mx, rel = float(d.max()), float(d.max() / max(np.abs(exp).max(), 1e-30))
        ok = (a.atol is None or mx <= a.atol) and (a.rtol is None or rel <= a.rtol)
        line = f"{a.name}: {exp.shape}, max abs {mx:.3g}, max rel {rel:.3g}"
        if a.top1:
            agree = int((got.argmax(1) == exp.argmax(1)).sum())
            line += f", top-1 agrees on {agree}/{len(exp)}"
            ok = ok and agree == len(exp)
        print(("ok   " if ok else "FAIL ") + line)
        sys.exit(0 if ok else 1)
    else:
        import onnx
        props = {p.key: p.value for p in onnx.load(a.model, load_external_data=False).metadata_props}
        print(props[a.key])


if __name__ == "__main__":
    main()
