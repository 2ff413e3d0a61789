"""Writes fuzz/seeds/: small valid inputs of every format fuzz_readers.cpp reads (a fuzzer mutates valid files far
better than it invents them). Needs numpy and PIL (Debian's /usr/bin/python3 has both); not torch.

    /usr/bin/python3 fuzz/make_seeds.py

  png_*.png, jpg_*.jpg   tiny images: RGB, grey, palette, RGBA, 16-bit grey; baseline, progressive, CMYK JPEG
  tiny.safetensors       three small tensors (F32, F16, I64) and metadata
  mixed_deflate.pth      tests/fixtures/tiny_mixed.pth re-zipped with deflate
  mixed_zip64.pth        the same archive with every size and offset in ZIP64 records
  mixed.pkl, official.pkl  the bare data.pkl of tiny_mixed.pth (protocol 4) and tiny_official.pth (protocol 2)
  shard.tar              a WebDataset shard (pax format: a long name; .jpg + .cls, .png + .json samples)
"""
import io
import os
import struct
import sys
import tarfile
import zipfile
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import safetensors_np  # noqa: E402

OUT = os.path.join(HERE, "seeds")


def zip64_archive(entries):
    """entries: [(name, bytes)] -> a stored archive using ZIP64 extra fields and end records throughout."""
    out, central = b"", b""
    for name, data in entries:
        name = name.encode()
        crc = zlib.crc32(data)
        off = len(out)
        lextra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff, len(name),
                           len(lextra)) + name + lextra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff,
                               len(name), len(cextra), 0, 0, 0, 0, 0xffffffff) + name + cextra
    cd, n = len(out), len(entries)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, n, n, len(central), cd)
    out += struct.pack("<IIQI", 0x07064b50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)

    def save(img, name, **kw):
        img.save(os.path.join(OUT, name), **kw)

    rgb = Image.fromarray(rng.integers(0, 256, (3, 5, 3), dtype=np.uint8), "RGB")
    grey = Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8), "L")
    save(rgb, "png_rgb.png")
    save(grey, "png_grey.png")
    save(rgb.convert("P"), "png_palette.png")
    save(Image.fromarray(rng.integers(0, 256, (2, 2, 4), dtype=np.uint8), "RGBA"), "png_rgba.png")
    save(Image.fromarray(rng.integers(0, 65536, (3, 2), dtype=np.uint16).astype(np.int32), "I").convert("I;16"),
         "png_grey16.png")
    big = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB")
    save(big, "jpg_rgb.jpg", quality=80)
    save(grey, "jpg_grey.jpg", quality=80)
    save(big, "jpg_progressive.jpg", quality=70, progressive=True)
    save(big.convert("CMYK"), "jpg_cmyk.jpg", quality=80)

    safetensors_np.save(os.path.join(OUT, "tiny.safetensors"),
                        {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float16),
                         "c": np.arange(2, dtype=np.int64)}, {"config": '{"embed_dim": 32}'})

    fixtures = os.path.join(ROOT, "tests", "fixtures")
    with zipfile.ZipFile(os.path.join(fixtures, "tiny_mixed.pth")) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    with open(os.path.join(OUT, "mixed_deflate.pth"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(OUT, "mixed_zip64.pth"), "wb") as f:
        f.write(zip64_archive(entries))
    with open(os.path.join(OUT, "mixed.pkl"), "wb") as f:
        f.write(dict(entries)["tiny_mixed/data.pkl"])
    with zipfile.ZipFile(os.path.join(fixtures, "tiny_official.pth")) as z:
        with open(os.path.join(OUT, "official.pkl"), "wb") as f:
            f.write(z.read("tiny_official/data.pkl"))
    with tarfile.open(os.path.join(OUT, "shard.tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for name, src, label in (("k" * 120 + ".jpg", "jpg_grey.jpg", b"3"), ("b.png", "png_grey.png", b'{"label": 1}')):
            for member, data in ((name, open(os.path.join(OUT, src), "rb").read()),
                                 (name.split(".")[0] + (".cls" if label[:1] != b"{" else ".json"), label)):
                ti = tarfile.TarInfo(member)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    for name in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, name)):7d}  {name}")


if __name__ == "__main__":
    main()
