"""Writes a tiny MNIST-style IDX dataset (gzipped) for tests: N 28×28 grey images of 2 classes (bright blob top-left
vs bottom-right) plus a test split.  Pure Python (no numpy).

    python3 tools/make_tiny_idx.py OUT_DIR [--n 160] [--n_test 40] [--seed 0]
"""
import argparse, gzip, os, random, struct


def images(n, rng):
    imgs, labels = [], []
    for i in range(n):
        c = i % 2
        px = bytearray(28 * 28)
        cy, cx = (8, 8) if c == 0 else (19, 19)
        cy += rng.randint(-3, 3)
        cx += rng.randint(-3, 3)
        for y in range(28):
            for x in range(28):
                d2 = (y - cy) ** 2 + (x - cx) ** 2
                v = 230 if d2 < 30 else rng.randint(0, 40)
                px[y * 28 + x] = v
        imgs.append(bytes(px))
        labels.append(c)
    return imgs, labels


def write(out, prefix, imgs, labels):
    with gzip.open(os.path.join(out, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(imgs), 28, 28) + b"".join(imgs))
    with gzip.open(os.path.join(out, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + bytes(labels))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--n_test", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    write(a.out, "train", *images(a.n, rng))
    write(a.out, "t10k", *images(a.n_test, rng))
