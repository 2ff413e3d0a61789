// The ONNX graphs `mae export --format onnx` writes (opset 17, a dynamic batch), built from a checkpoint's state
// dict (model/state_dict.h); io/onnx_writer.h serialises them.
//
//   an MAE or its encoder -> a feature extractor, no masking (every patch kept, in order):
//       images (batch, C, S, S) -> cls  (batch, D)  the cls token of the latent after the encoder's final norm
//                                  mean (batch, D)  the mean of its patch tokens
//     = `mae embed` and `mae embed --global_pool` (eval/features.h), and the features k-NN and probes use.
//   a fine-tuned classifier -> images -> logits (batch, nb_classes), models_vit's forward: fc_norm(mean of the
//     patch tokens) with global pool, else norm(x)[:, 0], then head.
//
// Ops: Conv (the patch embedding), LayerNormalization (epsilon from the config: 1e-6 for MAE), MatMul + Add for
// every Linear (weights stored transposed, (in, out)), attention as MatMul / Softmax / MatMul per head, exact GELU
// as 0.5·x·(1 + Erf(x/√2)). Images go in normalised; the normalisation (mean/std per channel, of pixels in
// [0, 1]) is stated in the model's metadata_props, with what each output is.
#pragma once
#include "io/onnx_writer.h"
#include "model/state_dict.h"

namespace mae {

io::onnx::Model build_onnx_vit(const StateDict& sd);

}  // namespace mae
