#!/usr/bin/env bash
# Bad input to `mae forward` / `mae info`: each case must exit non-zero with a message naming the file or flag and
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
expect_error cuda-graph-cpu "--cuda_graph needs --device cuda" -- "$MAE" pretrain --cuda_graph --epochs 1
expect_error embed-bf16-cpu "--precision bf16 needs --device cuda" -- "$MAE" embed --precision bf16 --checkpoint x \
  --output "$tmp/e.safetensors"
expect_error knn-device "--device must be cpu or cuda, got 'gpu'" -- "$MAE" knn --device gpu --checkpoint x
expect_error finetune-bf16-cpu "--precision bf16 needs --device cuda" -- "$MAE" finetune --precision bf16 --epochs 1
# model configs with no sane size (they used to overflow int and write out of bounds): refused before allocating
rewrite "$W" "$tmp/hugegrid.safetensors" "c = json.loads(h['__metadata__']['config']); c.update(img_size=92682, patch_size=1); h['__metadata__']['config'] = json.dumps(c)"
expect_error config-huge-grid "hugegrid.safetensors: invalid model config: img_size must be ≤ 8192" -- fwd "$tmp/hugegrid.safetensors" "$IN"
expect_error config-init-huge-grid "invalid model config: img_size must be ≤ 8192" -- "$MAE" init --output "$OUT" \
  --config '{"img_size":92682,"patch_size":1,"in_chans":1,"embed_dim":64,"depth":1,"num_heads":4}'
expect_error config-int-overflow "'embed_dim' = 99999999999 is out of range" -- "$MAE" init --output "$OUT" \
  --config '{"img_size":224,"patch_size":16,"in_chans":3,"embed_dim":99999999999,"depth":1,"num_heads":4}'
expect_error config-too-many-params "parameters; at most 2\\^32" -- "$MAE" init --output "$OUT" \
  --config '{"img_size":224,"patch_size":16,"in_chans":3,"embed_dim":16384,"depth":256,"num_heads":16}'

# flags that size the reconstruction grid: bounded in 64 bits before anything is allocated (they used to overflow)
$PY "$SRC/tools/make_tiny_idx.py" "$tmp/idx" --n 8 --n_test 8 >/dev/null
for f in "--gap 1431655765" "--scale 153391690"; do
  expect_error "reconstruct $f" "over the limit of 32768 px" -- "$MAE" reconstruct --checkpoint "$W" --data_path "$tmp/idx" \
    --num 2 $f --output "$tmp/out.safetensors"
done

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
