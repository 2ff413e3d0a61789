#!/usr/bin/env bash
# ONNX Runtime (CPU, npm onnxruntime-node) and PyTorch (the reference model, tools/mae_torch.py) next to `mae embed`
# on the same encoder, the same images and threads: images/s of each, and how far their features are from mae's
# (max abs / max relative difference). mae's forward alone (`mae bench --features`, what ONNX Runtime's and
# PyTorch's figures are) is printed beside its whole embed command.
#   bench/onnx_vs_embed.sh path/to/mae [MODEL=mae_vit_base_patch16] [N=32] [BATCH=8] [THREADS=2]
#   env: EMBED_ARGS (more mae embed flags, e.g. "--precision bf16")
# The model is `mae init`'s (weights do not change the speed); N random PNGs at the model's size in a flat folder
# (RGB, or grey for 1-channel models). mae embed decodes them with 1 worker thread ahead of the forward (its
# images/s includes that); ONNX Runtime runs the forward alone on one batch of BATCH images normalised as mae embed
# normalised them, 2 warm-up runs then N/BATCH (at least 3) timed runs; PyTorch the same on the same batch: the
# encoder on all tokens as features are taken (MaskedAutoencoderViT.forward_features of tools/mae_torch.py: no
# masking, no decoder), torch.inference_mode, torch.set_num_threads(THREADS), on the OpenMP OpenBLAS as bench/compare.sh runs
# it (skipped with a line saying so where torch does not import). Needs python3 with numpy and PIL, node and
# test-tools/ (tools/setup.sh --test). Scratch: /tmp/onnx_bench/MODEL.
set -euo pipefail
M=$(realpath "$1")
MODEL=${2:-mae_vit_base_patch16} N=${3:-32} BATCH=${4:-8} THREADS=${5:-2}
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
export PYTHONPATH="$SRC/tools"
W=/tmp/onnx_bench/$MODEL
mkdir -p "$W" && cd "$W"
[ -f w.safetensors ] || "$M" init --model "$MODEL" --output w.safetensors >/dev/null
"$M" export w.safetensors m.onnx --force >/dev/null
read -r S C < <($PY -c "import json,sys; c=json.loads(sys.argv[1]); print(c['img_size'], c['in_chans'])" \
  "$("$PY" "$SRC/tools/export_check.py" onnx-meta m.onnx mae.config)")
# The images (random pixels at the model's size; exactly N: an earlier run's folder may hold more), then mae embed
# on them.
rm -rf imgs
$PY - "$N" "$S" "$C" <<'PYEOF'
import os, sys
import numpy as np
from PIL import Image
n, s, c = map(int, sys.argv[1:4])
os.makedirs("imgs", exist_ok=True)
rng = np.random.default_rng(0)
for i in range(n):
    Image.fromarray(rng.integers(0, 256, (s, s, 3) if c == 3 else (s, s), dtype=np.uint8)).save(f"imgs/{i:04d}.png")
PYEOF
rm -f e.safetensors
t0=$(date +%s.%N)
"$M" embed --checkpoint w.safetensors --data_path imgs --output e.safetensors --batch_size "$BATCH" --crop_pct 1 \
  --threads "$THREADS" --num_workers 1 ${EMBED_ARGS:-} 2>embed.log >/dev/null
t1=$(date +%s.%N)
embed_rate=$(grep -o '[0-9.]* img/s' embed.log | tail -1)
# ONNX Runtime's batch: the first BATCH images normalised as mae embed normalised them (the data's statistics; the
# file's metadata says which), so that the features can be compared.
$PY - "$BATCH" "$S" "$C" <<'PYEOF'
import json, sys
import numpy as np
from PIL import Image
import safetensors_np
b, s, c = map(int, sys.argv[1:4])
norm = json.loads(safetensors_np.load("e.safetensors")[1]["normalize"])
mean, std = np.array(norm["mean"], np.float32), np.array(norm["std"], np.float32)
x = [np.asarray(Image.open(f"imgs/{i:04d}.png"), np.float32).reshape(s, s, c).transpose(2, 0, 1) / np.float32(255)
     for i in range(b)]
((np.stack(x) - mean[:, None, None]) / std[:, None, None]).astype("<f4").tofile("x.f32")
PYEOF
mkdir -p ort
runs=$((N / BATCH > 3 ? N / BATCH : 3))  # timed forwards of one batch (ONNX Runtime, PyTorch, mae bench --features)
ort_json=$(NODE_PATH="$SRC/test-tools/node_modules" node "$SRC/tests/ort_run.js" m.onnx x.f32 "$BATCH" "$C" "$S" "$S" ort \
  "$THREADS" "$runs")
ort_rate=$($PY -c "import json,sys; print('%.2f' % json.loads(sys.argv[1])['images_per_s'])" "$ort_json")
diff=$($PY "$SRC/tools/export_check.py" compare "cls, ORT vs mae embed (first $BATCH images)" ort/cls.f32 \
  "features@e.safetensors" --rows "$BATCH" --atol 1 || true)
# PyTorch on the same batch and weights, the OpenMP OpenBLAS and THREADS threads as bench/compare.sh gives it.
rm -f torch_cls.f32
torch_out=$(env "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "OMP_NUM_THREADS=$THREADS" "OPENBLAS_NUM_THREADS=$THREADS" "PYTHONPATH=$SRC/tools:$SRC/bench" \
  $PY - "$MODEL" "$BATCH" "$C" "$S" "$THREADS" "$runs" <<'PYEOF' 2>&1
import sys, time
import numpy as np
try:
    import torch
except ImportError:
    print("PyTorch: skipped (python3 cannot import torch)"); sys.exit(0)
import mae_torch, safetensors_np, torch_bench
model, b, c, s, threads, runs = sys.argv[1], *map(int, sys.argv[2:])
torch.set_num_threads(threads)
m = mae_torch.build(model).eval()
tensors, _ = safetensors_np.load("w.safetensors")
state = m.state_dict()
m.load_state_dict({k: torch.from_numpy(np.asarray(tensors[k], np.float32)) for k in state}, strict=True)
x = torch.from_numpy(np.fromfile("x.f32", "<f4").reshape(b, c, s, s))
def features(imgs):  # the cls token after the final norm: mae embed's default features
    return m.forward_features(imgs)[:, 0]
with torch.inference_mode():
    f = features(x)
    for _ in range(2):
        features(x)
    t0 = time.perf_counter()
    for _ in range(runs):
        features(x)
    dt = time.perf_counter() - t0
f.numpy().astype("<f4").tofile("torch_cls.f32")
print("PyTorch:      %.2f img/s (forward only, torch %s on %s, %d threads)"
      % (runs * b / dt, torch.__version__, torch_bench.blas_description(torch)[0], torch.get_num_threads()))
PYEOF
) || true
# mae's forward alone on one batch, as ONNX Runtime's and PyTorch's are timed: `mae bench --features` (the encoder on
# all tokens through the FrozenEncoder embed uses, these weights, host images in, features out; median of the runs).
fwd_json=$("$M" bench --features --checkpoint w.safetensors --batch_size "$BATCH" --threads "$THREADS" --warmup 2 \
  --steps "$runs" $(grep -o -E -- '--precision [a-z0-9]+' <<<"${EMBED_ARGS:-}" || true) --json)
read_fwd() { $PY -c "import json,sys; r=json.loads(sys.argv[1]); print($1)" "$fwd_json"; }
fwd_line=$(read_fwd "'%.2f img/s (forward only, mae bench --features, GEMMs: %s)' % (r['features_img_s'], r['gemm'])")
torch_diff=""
[ -f torch_cls.f32 ] && torch_diff=$($PY "$SRC/tools/export_check.py" compare \
  "cls, PyTorch vs mae embed (first $BATCH images)" torch_cls.f32 "features@e.safetensors" --rows "$BATCH" --atol 1 || true)
rm -f torch_cls.f32
# mae's own host line: CPU model, vector extensions, the OpenBLAS core and oneDNN ISA it picked.
echo "host: $(read_fwd "r['host']"); $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}; load $(cut -d" " -f1-3 /proc/loadavg)"
echo "model $MODEL ($S px, $C ch), batch $BATCH, $THREADS threads, $N images"
echo "mae embed${EMBED_ARGS:+ $EMBED_ARGS}:    $embed_rate (decode + forward; the whole command $($PY -c "print('%.1f' % ($t1 - $t0))") s)"
echo "mae forward:  $fwd_line"
echo "ONNX Runtime: $ort_rate img/s (forward only, onnxruntime-node $(node -p "require('$SRC/test-tools/node_modules/onnxruntime-node/package.json').version"))"
echo "$torch_out"
echo "$diff"
[ -z "$torch_diff" ] || echo "$torch_diff"
