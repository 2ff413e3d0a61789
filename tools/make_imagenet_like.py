#!/usr/bin/env python3
"""A synthetic ImageNet-like folder from the photos available offline (scikit-image's data folder), for the loader
benchmark (bench/loader.sh) and the fast-decode checks: JPEGs of ImageNet's typical sizes (mostly 500 x 375,
500 x 333 and portrait 375 x 500, the rest 250..500 a side), quality 90, 4:2:0, as class folders.
Each picture is a random crop of one photo (a third to all of its shorter side, at the target's aspect), resized
with Lanczos, maybe mirrored, with a small brightness/colour jitter. Needs Pillow and numpy (Debian's
/usr/bin/python3 has both).

    mkdir -p /tmp/skimg && cd /tmp/skimg && apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb x
    /usr/bin/python3 tools/make_imagenet_like.py OUT [--n 4000] [--classes 10] [--seed 0]   # -> OUT/train/cNN/*.JPEG
"""
import argparse
import os

import numpy as np
from PIL import Image

SKIMAGE = "/tmp/skimg/x/usr/lib/python3/dist-packages/skimage/data/"
# Colour photos, plus a few grey ones made RGB (ImageNet has grey-looking pictures too).
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
          "motorcycle_left.png", "motorcycle_right.png", "ihc.png", "camera.png", "grass.png", "gravel.png",
          "brick.png", "moon.png", "coins.png"]
SIZES = [((500, 375), 0.35), ((500, 333), 0.2), ((375, 500), 0.15), ((333, 500), 0.05), (None, 0.25)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--photos", default=SKIMAGE)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    photos = []
    for f in PHOTOS:
        p = os.path.join(a.photos, f)
        if not os.path.exists(p):
            raise SystemExit(f"{p} missing: unpack python3-skimage as this script's docstring says")
        photos.append(Image.open(p).convert("RGB"))
    probs = np.array([s[1] for s in SIZES])
    total = 0
    for i in range(a.n):
        k = int(rng.integers(len(photos)))
        im = photos[k]
        size = SIZES[rng.choice(len(SIZES), p=probs / probs.sum())][0]
        if size is None:
            size = (int(rng.integers(250, 501)), int(rng.integers(250, 501)))
        W, H = im.size
        aspect = size[0] / size[1]
        side = min(W, H / aspect if aspect < 1 else H) * rng.uniform(0.33, 1.0)
        cw, ch = min(W, side * max(aspect, 1)), min(H, side / min(aspect, 1))
        cw, ch = (cw, cw / aspect) if cw / aspect <= H else (ch * aspect, ch)
        x, y = rng.uniform(0, W - cw), rng.uniform(0, H - ch)
        pic = im.resize(size, Image.LANCZOS, box=(x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            pic = pic.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(pic).astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-12, 12, size=3)
        pic = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        d = os.path.join(a.out, "train", f"c{i % a.classes:02d}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"img_{i:06d}.JPEG")
        pic.save(path, quality=a.quality)
        total += os.path.getsize(path)
    print(f"{a.n} JPEGs in {a.out}/train ({a.classes} classes), {total / 1e6:.1f} MB, mean {total / a.n / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
