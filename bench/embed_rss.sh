#!/usr/bin/env bash
# Peak RSS of `mae embed` with ViT-B/16 (8 random 224-px PNGs, batch 8): the figure of ModelMode::inference.
# Usage: bench/embed_rss.sh path/to/mae   (scratch in /tmp/rss)
M=$(realpath "$1")
mkdir -p /tmp/rss && cd /tmp/rss
[ -f vitb.safetensors ] || $M init --model mae_vit_base_patch16 --output vitb.safetensors >/dev/null
[ -d imgs ] || python3 - <<'PY'
import os, struct, zlib, random
os.makedirs("imgs/a", exist_ok=True)
random.seed(0)
for i in range(8):
    raw = b"".join(b"\0" + bytes(random.getrandbits(8) for _ in range(224 * 3)) for _ in range(224))
    ch = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(f"imgs/a/{i}.png", "wb").write(b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", struct.pack(">IIBBBBB", 224, 224, 8, 2, 0, 0, 0)) + ch(b"IDAT", zlib.compress(raw)) + ch(b"IEND", b""))
PY
rm -f e.safetensors
/usr/bin/time -v $M embed --checkpoint vitb.safetensors --data_path imgs --output e.safetensors --batch_size 8 --threads 2 --num_workers 1 2>&1 | grep -E "Maximum resident|Elapsed"
