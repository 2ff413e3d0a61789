#!/usr/bin/env bash
# Bad input to `mae forward` / `mae info` / `mae convert` / `mae export` (and a few flags of others): each case must exit non-zero with a message naming the file or flag and
# the problem, without a crash (exit code > 128) and without leaving an output file.
set -uo pipefail
MAE=$1 SRC=$2
FX=$SRC/tests/fixtures
source "$SRC/tests/lib/common.sh"
source "$SRC/tests/lib/expect.sh"

W=$FX/cfgA.weights.safetensors
IN=$FX/cfgA.input.safetensors
OUT=$tmp/out.safetensors
fwd() { "$MAE" forward --checkpoint "$1" --input "$2" --output "$OUT" "${@:3}"; }

head -c 1000 "$W" >"$tmp/truncated.safetensors"
expect_error truncated-checkpoint "truncated.safetensors" -- fwd "$tmp/truncated.safetensors" "$IN"
echo "this is not a safetensors file at all" >"$tmp/text.safetensors"
expect_error not-safetensors "text.safetensors" -- fwd "$tmp/text.safetensors" "$IN"
head -c 4 "$W" >"$tmp/tiny.safetensors"
expect_error shorter-than-header "tiny.safetensors" -- fwd "$tmp/tiny.safetensors" "$IN"
rewrite "$W" "$tmp/past_end.safetensors" "h['norm.bias']['data_offsets'][1] += 10**6"
expect_error offsets-past-end "past_end.safetensors" -- fwd "$tmp/past_end.safetensors" "$IN"
rewrite "$W" "$tmp/missing.safetensors" "del h['blocks.1.mlp.fc2.weight']"
expect_error missing-tensor "missing.safetensors.*blocks.1.mlp.fc2.weight" -- fwd "$tmp/missing.safetensors" "$IN"
rewrite "$W" "$tmp/misshaped.safetensors" "e = h['decoder_pred.weight']; e['shape'] = [e['shape'][1], e['shape'][0]]"
expect_error mis-shaped-tensor "misshaped.safetensors.*decoder_pred.weight" -- fwd "$tmp/misshaped.safetensors" "$IN"
rewrite "$W" "$tmp/noconfig.safetensors" "h['__metadata__'] = {}"
expect_error no-config "noconfig.safetensors.*config" -- fwd "$tmp/noconfig.safetensors" "$IN"
rewrite "$W" "$tmp/badconfig.safetensors" "h['__metadata__']['config'] = '{\"img_size\": 30, \"patch_size\": 4}'"
expect_error impossible-config "badconfig.safetensors.*divisible" -- fwd "$tmp/badconfig.safetensors" "$IN"
# Input images of the wrong channels / size (cfgB's input is 3×20×20; cfgA takes 1×28×28), wrong noise.
expect_error image-shape "cfgB.input.safetensors.*imgs" -- fwd "$W" "$FX/cfgB.input.safetensors"
rewrite "$IN" "$tmp/badnoise.safetensors" "e = h['noise']; e['shape'] = [e['shape'][0] * e['shape'][1]]"
expect_error noise-shape "badnoise.safetensors.*noise" -- fwd "$W" "$tmp/badnoise.safetensors"
rewrite "$IN" "$tmp/noimgs.safetensors" "h['images'] = h.pop('imgs')"
expect_error no-imgs "noimgs.safetensors.*imgs" -- fwd "$W" "$tmp/noimgs.safetensors"
expect_error missing-file "does-not-exist.safetensors" -- fwd "$tmp/does-not-exist.safetensors" "$IN"
expect_error unknown-flag "--bogus" -- fwd "$W" "$IN" --bogus 3
expect_error bad-mask-ratio "mask_ratio" -- fwd "$W" "$IN" --mask_ratio 1.5
expect_error unwritable-output "/proc/no/such/dir" -- "$MAE" forward --checkpoint "$W" --input "$IN" --output /proc/no/such/dir/out.safetensors
expect_error info-truncated "truncated.safetensors" -- "$MAE" info "$tmp/truncated.safetensors"
expect_error info-past-end "past_end.safetensors" -- "$MAE" info "$tmp/past_end.safetensors"
expect_error unknown-model "mae_vit_gigantic" -- "$MAE" bench --model mae_vit_gigantic
expect_error row-tiles-value "--row_tiles" -- "$MAE" bench --row_tiles sideways
expect_error row-tiles-cuda "--row_tiles ab: row tiles are the CPU backend's" -- "$MAE" bench --row_tiles ab --device cuda
expect_error gemm-limit-ab "--gemm_limit times the step's fp32 OpenBLAS GEMMs" -- "$MAE" bench --gemm_limit --row_tiles ab
expect_error inference-gemm-alone "--inference_gemm ab chooses the GEMMs of the CPU's fp32 inference forward" -- "$MAE" bench --inference_gemm ab
expect_error inference-gemm-value "--inference_gemm" -- "$MAE" bench --features --inference_gemm mkl
expect_error features-gemm-limit "--features times the inference forward" -- "$MAE" bench --features --gemm_limit
expect_error cuda-graph-cpu "--cuda_graph needs --device cuda" -- "$MAE" pretrain --cuda_graph --epochs 1
# bf16 on a CPU without native bf16 GEMMs: ONEDNN_MAX_CPU_ISA=AVX2 hides avx512_bf16/AMX from oneDNN, so the
# error shows on every host (builds without oneDNN give the same message with their own reason)
expect_error embed-bf16-cpu "--precision bf16 on the CPU needs native bf16 GEMMs" -- env ONEDNN_MAX_CPU_ISA=AVX2 \
  "$MAE" embed --precision bf16 --checkpoint x --output "$tmp/e.safetensors"
expect_error knn-device "--device must be cpu or cuda, got 'gpu'" -- "$MAE" knn --device gpu --checkpoint x
expect_error finetune-bf16-cpu "--precision bf16 on the CPU needs native bf16 GEMMs" -- env ONEDNN_MAX_CPU_ISA=AVX2 \
  "$MAE" finetune --precision bf16 --epochs 1
# model configs with no sane size (they used to overflow int and write out of bounds): refused before allocating
rewrite "$W" "$tmp/hugegrid.safetensors" "c = json.loads(h['__metadata__']['config']); c.update(img_size=92682, patch_size=1); h['__metadata__']['config'] = json.dumps(c)"
expect_error config-huge-grid "hugegrid.safetensors: invalid model config: img_size must be ≤ 8192" -- fwd "$tmp/hugegrid.safetensors" "$IN"
expect_error config-init-huge-grid "invalid model config: img_size must be ≤ 8192" -- "$MAE" init --output "$OUT" \
  --config '{"img_size":92682,"patch_size":1,"in_chans":1,"embed_dim":64,"depth":1,"num_heads":4}'
expect_error config-int-overflow "'embed_dim' = 99999999999 is out of range" -- "$MAE" init --output "$OUT" \
  --config '{"img_size":224,"patch_size":16,"in_chans":3,"embed_dim":99999999999,"depth":1,"num_heads":4}'
expect_error config-too-many-params "parameters; at most 2\\^32" -- "$MAE" init --output "$OUT" \
  --config '{"img_size":224,"patch_size":16,"in_chans":3,"embed_dim":16384,"depth":256,"num_heads":16}'

# --batch_size: bounded (limits::kBatchImages) before anything is allocated, and a batch whose rows (images ×
# tokens) would pass a GEMM's int is refused by the model before it allocates (they used to end in "out of memory",
# or with overcommit in an int overflow)
for c in "bench" "bench --features" "embed --checkpoint x --output $tmp/e.safetensors" "knn" "pretrain --epochs 1" \
  "finetune --epochs 1" "linprobe --epochs 1"; do
  expect_error "batch-size-huge $c" "--batch_size must be in \[1, 1048576\], got 2000000000" -- "$MAE" $c --batch_size 2000000000
done
expect_error recount-huge "--recount must be in \[1, 256\], got 2147483647" -- "$MAE" finetune --recount 2147483647 --epochs 1
for v in nan inf; do
  expect_error "mixup-$v" "--mixup must be a finite number ≥ 0, got $v" -- "$MAE" finetune --mixup $v --epochs 1
  expect_error "cutmix-$v" "--cutmix must be a finite number ≥ 0, got $v" -- "$MAE" finetune --cutmix $v --epochs 1
done
expect_error omp-num-threads-huge "OMP_NUM_THREADS=100000 asks for 100000 threads; at most 1024" -- env OMP_NUM_THREADS=100000 \
  "$MAE" bench --model mae_vit_fmnist_small --batch_size 2 --steps 1 --warmup 0  # libgomp crashed starting them
for c in finetune linprobe; do  # (the classifier's head used to reach the allocator: "out of memory", ASan's abort)
  expect_error "nb-classes-huge $c" "--nb_classes must be in \[1, 1048576\] \(0: from the data\), got 2147483647" -- \
    "$MAE" $c --nb_classes 2147483647 --epochs 1
done
expect_error batch-size-zero "--batch_size must be in \[1, 1048576\], got 0" -- "$MAE" bench --batch_size 0
"$MAE" init --output "$tmp/grid128.safetensors" --config \
  '{"img_size":2048,"patch_size":16,"in_chans":1,"embed_dim":32,"depth":1,"num_heads":2}' >/dev/null
expect_error batch-rows-over-int "a batch of 131072 images of 16385 tokens is 2147614720 rows" -- \
  "$MAE" bench --features --checkpoint "$tmp/grid128.safetensors" --batch_size 131072

# flags that size the reconstruction grid: bounded in 64 bits before anything is allocated (they used to overflow)
$PY "$SRC/tools/make_tiny_idx.py" "$tmp/idx" --n 8 --n_test 8 >/dev/null
for f in "--gap 1431655765" "--scale 153391690"; do
  expect_error "reconstruct $f" "over the limit of 32768 px" -- "$MAE" reconstruct --checkpoint "$W" --data_path "$tmp/idx" \
    --num 2 $f --output "$tmp/out.safetensors"
done

# a batch larger than the data: training commands say so before allocating for the batch (linprobe used to fill a
# loader ring for it first: 30 s and 9 GB here); knn, embed and finetune --eval run with a batch of the data's size
for c in pretrain finetune linprobe; do
  expect_error "batch-over-data $c" "8 images is fewer than one batch of 1048576" -- timeout -s KILL 15 "$MAE" $c \
    --data_path "$tmp/idx" --batch_size 1048576 --epochs 1 --output_dir "$tmp/run-$c" --log_dir "$tmp/run-$c" \
    $([ $c = pretrain ] && echo --model mae_vit_fmnist_small || echo --finetune "$W")
done
"$MAE" finetune --finetune "$W" --data_path "$tmp/idx" --batch_size 4 --epochs 1 --output_dir "$tmp/ft" \
  --log_dir "$tmp/ft" >/dev/null 2>&1
for c in "knn --checkpoint $W" "embed --checkpoint $W --output $tmp/big.safetensors" \
  "finetune --eval --resume $tmp/ft/checkpoint-last.safetensors"; do
  timeout 60 "$MAE" $c --data_path "$tmp/idx" --batch_size 1048576 >"$tmp/big.log" 2>&1 &&
    passes=$((passes + 1)) || { echo "FAIL $c --batch_size 1048576 on 8 images: $(tail -1 "$tmp/big.log")"; fails=$((fails + 1)); }
done

# mae convert / mae export: tensors that do not fit the target, an output that exists, a folder that cannot take
# it. Each must leave no output (nor temp file or folder) behind.
no_output_left() {  # NAME PATH: PATH and its temp files must not exist
  if [ -e "$2" ] || ls "$2".tmp* >/dev/null 2>&1; then echo "FAIL $1: $2 (or a temp of it) was left"; fails=$((fails + 1)); fi
}
"$MAE" convert "$W" "$tmp/enc.safetensors" --as encoder >/dev/null
expect_error convert-encoder-to-mae "enc.safetensors: cannot be written as an MAE.*encoder-only" -- \
  "$MAE" convert "$tmp/enc.safetensors" "$tmp/full.pth" --as mae
no_output_left convert-encoder-to-mae "$tmp/full.pth"
expect_error convert-mae-to-classifier "cfgA.weights.safetensors: cannot be written as a fine-tuned classifier" -- \
  "$MAE" convert "$W" "$tmp/cls.pth" --as classifier
no_output_left convert-mae-to-classifier "$tmp/cls.pth"
# a (global-pool) classifier, as `mae finetune` writes one: no MAE, no HF class
rewrite "$W" "$tmp/classifier.safetensors" "
def add(name, shape, value):
    global data
    n = shape[0] * (shape[1] if len(shape) > 1 else 1)
    b = struct.pack('<%df' % n, *[value] * n)
    h[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [len(data), len(data) + len(b)]}
    data += b
for k in [k for k in h if k.startswith(('decoder', 'mask_token', 'norm.'))]: del h[k]
D = h['cls_token']['shape'][-1]
add('head.weight', [2, D], 0.01); add('head.bias', [2], 0.0); add('fc_norm.weight', [D], 1.0); add('fc_norm.bias', [D], 0.0)"
expect_error convert-classifier-to-mae "classifier.safetensors: cannot be written as an MAE.*fine-tuned classifier" -- \
  "$MAE" convert "$tmp/classifier.safetensors" "$tmp/vitmae" --to hf --as mae
no_output_left convert-classifier-to-mae "$tmp/vitmae"
expect_error convert-global-pool-to-hf "classifier.safetensors: a global-pool classifier .* has no Hugging Face" -- \
  "$MAE" convert "$tmp/classifier.safetensors" "$tmp/hfdir" --to hf
no_output_left convert-global-pool-to-hf "$tmp/hfdir"
touch "$tmp/exists.pth"
expect_error convert-output-exists "exists.pth: already exists \(give --force" -- "$MAE" convert "$W" "$tmp/exists.pth"
[ -s "$tmp/exists.pth" ] && { echo "FAIL convert-output-exists: the existing file was changed"; fails=$((fails + 1)); }
mkdir -p "$tmp/existing_dir"
expect_error convert-folder-exists "existing_dir: already exists" -- "$MAE" convert "$W" "$tmp/existing_dir" --to hf
expect_error export-output-exists "exists.pth: already exists" -- "$MAE" export "$W" "$tmp/exists.pth"
"$MAE" convert "$W" "$tmp/exists.pth" --force >/dev/null && [ -s "$tmp/exists.pth" ] ||
  { echo "FAIL convert --force did not replace the file"; fails=$((fails + 1)); }
expect_error convert-no-folder "/proc/no/such/dir/w.pth: cannot write there" -- "$MAE" convert "$W" /proc/no/such/dir/w.pth
expect_error export-no-folder "/proc/no/such/dir/m.onnx: cannot write there" -- "$MAE" export "$W" /proc/no/such/dir/m.onnx
expect_error convert-unwritable "/proc/w.pth: cannot create temporary file" -- "$MAE" convert "$W" /proc/w.pth
expect_error convert-hf-unwritable "/proc/hf: cannot create temporary folder" -- "$MAE" convert "$W" /proc/hf --to hf
if [ "$(id -u)" != 0 ]; then  # root writes into a read-only folder anyway
  mkdir -p "$tmp/ro" && chmod 555 "$tmp/ro"
  expect_error convert-read-only-folder "ro/w.pth: cannot create temporary file" -- "$MAE" convert "$W" "$tmp/ro/w.pth"
  chmod 755 "$tmp/ro"
fi

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
