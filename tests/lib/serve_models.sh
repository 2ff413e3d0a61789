# Sourced by the serving tests (tests/serve_http.sh, tests/serve_browser.sh, tests/classify_cli.sh) after MAE, SRC,
# PY and tmp are set: small models and pictures, made in seconds.
#   $tmp/folder     an image folder (train/ and val/, classes "blob_top_left" and "blob_bottom_right", 28-px RGB PNGs)
#   $IMG_A $IMG_B   two of its pictures (one of each class); $IMG_BIG a 300×200 RGB JPEG
#   $MAE_CK         an MAE (mae_vit_fmnist_small, 1 channel, official init: reconstructions are noise, but real)
#   $FT             a classifier fine-tuned for 2 epochs on the folder (its class names in the metadata)
"$PY" - "$tmp/folder" <<'PYEOF'
import os, random, sys
from PIL import Image
root = sys.argv[1]
rng = random.Random(0)
for split, n in (("train", 32), ("val", 12)):
    for i in range(n):
        c = i % 2
        name = ("blob_top_left", "blob_bottom_right")[c]
        os.makedirs(f"{root}/{split}/{name}", exist_ok=True)
        cy, cx = (8, 8) if c == 0 else (19, 19)
        cy += rng.randint(-3, 3); cx += rng.randint(-3, 3)
        im = Image.new("RGB", (28, 28))
        im.putdata([(230, 200, 60) if (y - cy) ** 2 + (x - cx) ** 2 < 30 else (rng.randint(0, 40),) * 3
                    for y in range(28) for x in range(28)])
        im.save(f"{root}/{split}/{name}/{i:03d}.png")
Image.new("RGB", (300, 200), (90, 140, 200)).save(f"{root}/../big.jpg", quality=90)
PYEOF
IMG_A="$tmp/folder/val/blob_top_left/000.png"
IMG_B="$tmp/folder/val/blob_bottom_right/001.png"
IMG_BIG="$tmp/big.jpg"
"$MAE" init --model mae_vit_fmnist_small --output "$tmp/mae.safetensors" >/dev/null
MAE_CK="$tmp/mae.safetensors"
"$MAE" finetune --data_path "$tmp/folder" --model mae_vit_fmnist_small --in_chans 1 --epochs 2 --warmup_epochs 0 \
  --batch_size 8 --blr 5e-2 --aa none --reprob 0 --num_workers 1 --threads "${OMP_NUM_THREADS:-2}" --output_dir "$tmp/ft" \
  >/dev/null 2>"$tmp/ft.log" || { tail -3 "$tmp/ft.log"; exit 1; }
FT="$tmp/ft/checkpoint-last.safetensors"
