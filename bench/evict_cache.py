#!/usr/bin/env python3
"""Drops the page cache of every regular file under the given paths (posix_fadvise DONTNEED: no root needed, clean
pages only), so the next read comes from the disk: the "cold cache" rows of bench/loader.sh.

    python3 bench/evict_cache.py PATH...
"""
import os
import sys

n = size = 0
for root in sys.argv[1:]:
    walk = [(root, [], [""])] if os.path.isfile(root) else os.walk(root)
    for d, _, files in walk:
        for f in files:
            p = os.path.join(d, f) if f else d
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                size += os.fstat(fd).st_size
                n += 1
            finally:
                os.close(fd)
print(f"evicted {n} files, {size / 1e6:.1f} MB", file=sys.stderr)
