#!/usr/bin/env bash
# Regenerates the PyTorch fixtures with Debian's python3-torch (skips, exit 77, without it), then checks
# `mae forward --backward` on every case through the CLI and the in-process parity test on the fresh fixtures.
set -euo pipefail
MAE=$1 SRC=$2
PY=/usr/bin/python3
$PY -c "import torch, numpy" 2>/dev/null || { echo "python3-torch not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$PY "$SRC/tools/make_fixtures.py" --out "$tmp" --all_grads >/dev/null
# The committed weights and inputs must be what the current reference writes (same seeds, same code); the
# expected outputs are compared by tolerance below, as float rounding may differ from one CPU to another.
for f in "$SRC"/tests/fixtures/*.weights.safetensors "$SRC"/tests/fixtures/*.input.safetensors; do
  cmp -s "$f" "$tmp/$(basename "$f")" || { echo "stale fixture: $f differs from a fresh tools/make_fixtures.py"; exit 1; }
done
for cfg in cfgA cfgB; do
  for np in 0 1; do
    for mr in 75 50; do
      flags=(--mask_ratio "0.$mr")
      [ $np = 1 ] && flags+=(--norm_pix_loss)
      "$MAE" forward --checkpoint "$tmp/$cfg.weights.safetensors" --input "$tmp/$cfg.input.safetensors" \
        --output "$tmp/out.safetensors" --backward "${flags[@]}" >/dev/null
      echo "== $cfg np$np mr$mr"
      $PY "$SRC/tools/compare_outputs.py" "$tmp/out.safetensors" "$tmp/${cfg}_np${np}_mr${mr}.expected.safetensors" --backward
    done
  done
done
MAE_FIXTURE_DIR="$tmp" "$(dirname "$MAE")/tests/test_parity" --gtest_brief=1
