# Sourced by the export tests (tests/pth_export_torch.sh, tests/onnx_export.sh) after MAE, SRC, PY and tmp are set:
# a tiny IDX set in $tmp/data (64 train, 24 test images) and what `mae pretrain` and `mae finetune` make of it in a
# few seconds, the way a user's models come to be exported:
#   $PRE        an MAE after one epoch of pretraining (norm-pix)
#   $tmp/ft_global_pool/checkpoint-last.safetensors, $tmp/ft_cls_token/...: classifiers fine-tuned from it for
#               2 epochs (a high lr, so that the logits are far from zero and their argmax means something)
"$PY" "$SRC/tools/make_tiny_idx.py" "$tmp/data" --n 64 --n_test 24
export_run=(--data_path "$tmp/data" --batch_size 16 --num_workers 1 --threads 2)
"$MAE" pretrain "${export_run[@]}" --model mae_vit_fmnist_small --norm_pix_loss --epochs 1 --warmup_epochs 0 \
  --output_dir "$tmp/pre" >/dev/null 2>"$tmp/log" || { tail -3 "$tmp/log"; exit 1; }
PRE="$tmp/pre/checkpoint-last.safetensors"
for pool in global_pool cls_token; do
  "$MAE" finetune "${export_run[@]}" --finetune "$PRE" --epochs 2 --warmup_epochs 0 --blr 5e-2 --aa none --reprob 0 \
    --"$pool" --output_dir "$tmp/ft_$pool" >/dev/null 2>"$tmp/log" || { tail -3 "$tmp/log"; exit 1; }
done
