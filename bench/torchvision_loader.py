#!/usr/bin/env python3
"""The official pretraining input pipeline (main_pretrain.py) alone, for bench/loader.sh: torchvision ImageFolder +
RandomResizedCrop(224, scale=(0.2, 1.0), interpolation=BICUBIC) + RandomHorizontalFlip + ToTensor + Normalize in a
DataLoader with N worker processes. Prints one JSON line: images, wall seconds, images/s, and CPU seconds of the
main process and its workers together (user + system), so images per CPU second compares with mae bench --loader.
Needs Debian's python3-torchvision (benchmark-only).

    /usr/bin/python3 bench/torchvision_loader.py ROOT --workers 2 [--batches 0] [--batch_size 64] [--size 224]
"""
import argparse
import json
import os
import resource
import time

import torch
from torchvision import datasets, transforms


def cpu_seconds():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", help="ImageFolder root (the class folders), e.g. DATA/train")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=0, help="0: one epoch")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    torch.set_num_threads(1)  # the main process only collates; its threads would compete with the workers
    t = transforms.Compose([
        transforms.RandomResizedCrop(a.size, scale=(0.2, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    t0 = time.perf_counter()
    ds = datasets.ImageFolder(a.root, transform=t)
    open_s = time.perf_counter() - t0
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers,
                                     drop_last=True, pin_memory=False)
    want = a.batches if a.batches > 0 else len(dl)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    it = iter(dl)
    images = 0
    for _ in range(want):
        x, _ = next(it)
        images += x.shape[0]
    wall = time.perf_counter() - t0
    del it  # workers exit and are reaped: their CPU time lands in RUSAGE_CHILDREN
    cpu = cpu_seconds() - cpu0
    print(json.dumps({"impl": "torchvision", "workers": a.workers, "images": images, "wall_s": wall,
                      "img_s": images / wall, "cpu_s": cpu, "img_per_cpu_s": images / cpu, "open_s": open_s,
                      "input_size": a.size, "torch": torch.__version__, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
