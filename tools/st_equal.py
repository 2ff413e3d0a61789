"""Exit 0 iff two safetensors files hold bit-identical tensors (metadata ignored); prints the first difference.

    python3 tools/st_equal.py A.safetensors B.safetensors [--prefix optim.]
"""
import json, struct, sys


def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    data = b[8 + n:]
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items()}


a, b = load(sys.argv[1]), load(sys.argv[2])
if sorted(a) != sorted(b):
    print("different tensor names:", sorted(set(a) ^ set(b))[:10])
    sys.exit(1)
bad = [k for k in sorted(a) if a[k] != b[k]]
if bad:
    print(f"{len(bad)} of {len(a)} tensors differ, e.g. {bad[:5]}")
    sys.exit(1)
print(f"all {len(a)} tensors bit-identical")
