"""Checks what `mae forward` wrote against a PyTorch-reference expected file.

    /usr/bin/python3 tools/compare_outputs.py OUT.safetensors EXPECTED.safetensors [--backward]

Tolerances: loss relative error <= 1e-5; pred and mask max abs <= 1e-4; ids_restore exact (I64);
with --backward every grad.<name> of the expected file: ||g - g_ref|| / ||g_ref|| <= 1e-4 (expected files whose
metadata says "grads": "0" carry none; that is reported, not failed). One line per check; exit 1 on any failure.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

LOSS_REL = 1e-5
ABS_TOL = 1e-4
GRAD_REL = 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("expected")
    ap.add_argument("--backward", action="store_true", help="also check grad.<name> tensors")
    args = ap.parse_args()

    try:
        out, _ = safetensors_np.load(args.out)
        ref, ref_meta = safetensors_np.load(args.expected)
    except (OSError, ValueError) as e:
        print(f"FAIL cannot read: {e}")
        return 1

    failures = 0

    def report(ok, msg):
        nonlocal failures
        failures += 0 if ok else 1
        print(("ok   " if ok else "FAIL ") + msg)

    def present(key, dtype=np.float32):
        if key not in out:
            report(False, f"{key}: missing from {args.out}")
            return False
        if out[key].shape != ref[key].shape:
            report(False, f"{key}: shape {list(out[key].shape)} != expected {list(ref[key].shape)}")
            return False
        if out[key].dtype != dtype:
            report(False, f"{key}: dtype {out[key].dtype} != {np.dtype(dtype)}")
            return False
        return True

    if present("loss"):
        a, b = float(out["loss"]), float(ref["loss"])
        rel = abs(a - b) / max(abs(b), 1e-30)
        report(rel <= LOSS_REL, f"loss: {a:.8g} vs {b:.8g}, rel err {rel:.2e} (tol {LOSS_REL:g})")
    for key in ("pred", "mask"):
        if present(key):
            d = np.abs(out[key].astype(np.float64) - ref[key]).max() if ref[key].size else 0.0
            ok = np.isfinite(out[key]).all() and d <= ABS_TOL
            report(ok, f"{key}: max abs err {d:.2e} (tol {ABS_TOL:g})")
    if present("ids_restore", np.int64):
        n = int((out["ids_restore"] != ref["ids_restore"]).sum())
        report(n == 0, f"ids_restore: {n} of {ref['ids_restore'].size} differ (exact)")

    if args.backward:
        gnames = sorted(k for k in ref if k.startswith("grad."))
        if not gnames:
            print(f"note no reference grads in {args.expected} (metadata grads={ref_meta.get('grads', '?')}); "
                  "grads not checked")
        worst = (0.0, "")
        for k in gnames:
            if not present(k):
                continue
            g, gr = out[k].astype(np.float64), ref[k].astype(np.float64)
            nref = np.linalg.norm(gr)
            rel = np.linalg.norm(g - gr) / nref if nref > 0 else np.linalg.norm(g)
            ok = bool(np.isfinite(g).all()) and rel <= GRAD_REL
            worst = max(worst, (rel, k))
            report(ok, f"{k}: rel err {rel:.2e} (tol {GRAD_REL:g})")
        extra = sorted(k for k in out if k.startswith("grad.") and k not in ref)
        if gnames and extra:
            report(False, f"grads not in the expected file: {', '.join(extra)}")
        if gnames:
            print(f"     worst grad: {worst[1]} {worst[0]:.2e} over {len(gnames)} tensors")

    print(f"{'FAILED' if failures else 'PASSED'}: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
