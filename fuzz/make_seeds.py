"""Writes fuzz/seeds/: small valid inputs of every format fuzz_readers.cpp reads (a fuzzer mutates valid files far
better than it invents them). Needs numpy and PIL (Debian's /usr/bin/python3 has both); not torch.

    /usr/bin/python3 fuzz/make_seeds.py

one folder per target of fuzz/targets/:
  png/, jpeg/            tiny images: RGB, grey, palette, RGBA, 16-bit grey; baseline, progressive, CMYK JPEG
  safetensors/           three small tensors (F32, F16, I64) and metadata; a forward input
  pth/                   tests/fixtures/tiny_mixed.pth as is, re-zipped with deflate, with ZIP64 records; the bare
                         data.pkl of tiny_mixed.pth (protocol 4) and tiny_official.pth (protocol 2)
  tar/                   a WebDataset shard (pax format: a long name; .jpg + .cls, .png + .json samples)
  idx/, cifar/           IDX images/labels (plain, gzipped), CIFAR-10 records with and without a meta file, each
                         behind the selector byte(s) its target reads first
  config/                our model config and Hugging Face ViTMAE / ViT config.json files
  forward_input/         `mae forward --input` files (with noise, f16 without)
"""
import gzip
import io
import json
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
    rng = np.random.default_rng(0)

    def path(target, name):
        os.makedirs(os.path.join(OUT, target), exist_ok=True)
        return os.path.join(OUT, target, name)

    def write(target, name, data):
        with open(path(target, name), "wb") as f:
            f.write(data)

    rgb = Image.fromarray(rng.integers(0, 256, (3, 5, 3), dtype=np.uint8), "RGB")
    grey = Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8), "L")
    rgb.save(path("png", "rgb.png"))
    grey.save(path("png", "grey.png"))
    rgb.convert("P").save(path("png", "palette.png"))
    Image.fromarray(rng.integers(0, 256, (2, 2, 4), dtype=np.uint8), "RGBA").save(path("png", "rgba.png"))
    Image.fromarray(rng.integers(0, 65536, (3, 2), dtype=np.uint16).astype(np.int32), "I").convert("I;16").save(
        path("png", "grey16.png"))
    big = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB")
    big.save(path("jpeg", "rgb.jpg"), quality=80)
    grey.save(path("jpeg", "grey.jpg"), quality=80)
    big.save(path("jpeg", "progressive.jpg"), quality=70, progressive=True)
    big.convert("CMYK").save(path("jpeg", "cmyk.jpg"), quality=80)

    safetensors_np.save(path("safetensors", "tiny.safetensors"),
                        {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float16),
                         "c": np.arange(2, dtype=np.int64)}, {"config": '{"embed_dim": 32}'})

    fixtures = os.path.join(ROOT, "tests", "fixtures")
    with zipfile.ZipFile(os.path.join(fixtures, "tiny_mixed.pth")) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    write("pth", "mixed_deflate.pth", buf.getvalue())
    write("pth", "mixed_zip64.pth", zip64_archive(entries))
    write("pth", "mixed.pkl", dict(entries)["tiny_mixed/data.pkl"])
    with open(os.path.join(fixtures, "tiny_mixed.pth"), "rb") as f:
        write("pth", "tiny_mixed.pth", f.read())
    with zipfile.ZipFile(os.path.join(fixtures, "tiny_official.pth")) as z:
        write("pth", "official.pkl", z.read("tiny_official/data.pkl"))

    with tarfile.open(path("tar", "shard.tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for name, src, label in (("k" * 120 + ".jpg", ("jpeg", "grey.jpg"), b"3"),
                                 ("b.png", ("png", "grey.png"), b'{"label": 1}')):
            for member, data in ((name, open(path(*src), "rb").read()),
                                 (name.split(".")[0] + (".cls" if label[:1] != b"{" else ".json"), label)):
                ti = tarfile.TarInfo(member)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))

    # IDX (fuzz/targets/idx.cpp): byte 0 = (rank - 1) << 1 | gzip, then the file.
    def idx(arr):
        return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape) + \
            arr.astype(np.uint8).tobytes()
    images = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    write("idx", "images.idx", bytes([2 << 1]) + idx(images))
    write("idx", "images_gz.idx", bytes([2 << 1 | 1]) + idx(images))
    write("idx", "labels.idx", bytes([0]) + idx(np.array([1, 9, 0], np.uint8)))
    write("idx", "raw_gzip.idx", bytes([0]) + gzip.compress(idx(np.array([4, 2], np.uint8)), mtime=0))

    # CIFAR-10 (fuzz/targets/cifar.cpp): byte 0 = n, n bytes of batches.meta.txt, then records.
    meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    recs = b"".join(bytes([lab]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for lab in (3, 7))
    write("cifar", "two.bin", bytes([len(meta)]) + meta + recs)
    write("cifar", "no_meta.bin", bytes([0]) + recs[:3073])

    # Model configs: ours (the constructor's arguments) and Hugging Face's ViTMAEConfig / ViTConfig.
    ours = {"img_size": 28, "patch_size": 4, "in_chans": 1, "embed_dim": 64, "depth": 2, "num_heads": 4,
            "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 4, "mlp_ratio": 4.0,
            "norm_pix_loss": False, "ln_eps": 1e-6}
    write("config", "ours.json", json.dumps(ours).encode())
    hf = {"model_type": "vit_mae", "architectures": ["ViTMAEForPreTraining"], "hidden_size": 64,
          "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256, "hidden_act": "gelu",
          "image_size": 32, "patch_size": 8, "num_channels": 3, "qkv_bias": True, "layer_norm_eps": 1e-12,
          "decoder_hidden_size": 32, "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 4,
          "decoder_intermediate_size": 128, "mask_ratio": 0.75, "norm_pix_loss": False}
    write("config", "hf_vit_mae.json", json.dumps(hf, indent=2).encode())
    vit = {"model_type": "vit", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 256, "hidden_act": "gelu", "image_size": [32, 32], "patch_size": 8,
           "num_channels": 3, "qkv_bias": True, "id2label": {"0": "a", "1": "b"}}
    write("config", "hf_vit.json", json.dumps(vit).encode())

    # mae forward --input for the target's model (img 8, patch 4, 3 channels: L = 4).
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    safetensors_np.save(path("forward_input", "with_noise.safetensors"),
                        {"imgs": x, "noise": rng.random((2, 4)).astype(np.float32)}, {})
    safetensors_np.save(path("forward_input", "f16.safetensors"), {"imgs": x[:1].astype(np.float16)}, {})
    safetensors_np.save(path("safetensors", "forward_input.safetensors"), {"imgs": x[:1]}, {})

    for target in sorted(os.listdir(OUT)):
        for name in sorted(os.listdir(os.path.join(OUT, target))):
            print(f"{os.path.getsize(os.path.join(OUT, target, name)):7d}  {target}/{name}")


if __name__ == "__main__":
    main()
