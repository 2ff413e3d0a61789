#!/usr/bin/env python3
# Random square crops of scikit-image's sample photos, for the tiny colour pretrain behind docs/reconstruct_photos.png.
# The three photos shown there (astronaut, coffee, chelsea) are held out. Needs Pillow (/usr/bin/python3 has it).
#   mkdir -p /tmp/skimg && cd /tmp/skimg && apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb x
#   /usr/bin/python3 tools/make_photo_crops.py   # → /tmp/photos/*.png (4000 crops, 64 px)
import os
import random
from PIL import Image
D = '/tmp/skimg/x/usr/lib/python3/dist-packages/skimage/data/'
train = ['rocket.jpg', 'motorcycle_left.png', 'motorcycle_right.png', 'hubble_deep_field.jpg', 'retina.jpg',
         'ihc.png', 'color.png', 'camera.png', 'moon.png', 'coins.png', 'grass.png', 'gravel.png', 'brick.png',
         'horse.png', 'cell.png', 'clock_motion.png']
os.makedirs("/tmp/photos", exist_ok=True)
rng = random.Random(0)
n = 0
for f in train:
    im = Image.open(D + f).convert('RGB')
    W, H = im.size
    for k in range(250):
        s = rng.randint(min(48, min(W, H)), min(W, H))
        x, y = rng.randint(0, W - s), rng.randint(0, H - s)
        im.crop((x, y, x + s, y + s)).resize((64, 64), Image.BICUBIC).save(f'/tmp/photos/{f.split(".")[0]}_{k:03d}.png')
        n += 1
print(n, 'crops')
