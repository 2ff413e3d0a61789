// Hugging Face ViTMAE tensor names <-> the official MAE ones (docs/architecture.md §3); the config.json side is
// model/hf_config.h.
//
//   official                              Hugging Face (ViTMAEForPreTraining; ViTMAEModel files lack "vit.")
//   cls_token                             vit.embeddings.cls_token
//   pos_embed                             vit.embeddings.position_embeddings
//   patch_embed.proj.{weight,bias}        vit.embeddings.patch_embeddings.projection.{weight,bias}
//   blocks.i.attn.qkv.{weight,bias}       vit.encoder.layer.i.attention.attention.{query,key,value}.*
//                                         (q = rows [0, D), k = [D, 2D), v = [2D, 3D) of qkv)
//   blocks.i.attn.proj.*                  vit.encoder.layer.i.attention.output.dense.*
//   blocks.i.norm1.* / norm2.*            vit.encoder.layer.i.layernorm_before.* / layernorm_after.*
//   blocks.i.mlp.fc1.* / fc2.*            vit.encoder.layer.i.intermediate.dense.* / output.dense.*
//   norm.*                                vit.layernorm.*
//   decoder_embed.*, mask_token, decoder_pos_embed, decoder_norm.*, decoder_pred.*
//                                         decoder.decoder_embed.*, decoder.mask_token, ... (a "decoder." prefix)
//   decoder_blocks.i.<inner>              decoder.decoder_layers.i.<inner, as for the encoder>
//   head.*  (a fine-tuned classifier)     classifier.*  (ViTForImageClassification: vit.* + classifier.*)
// Names neither scheme knows (a classifier head, ...) pass through unchanged.
#pragma once
#include <string>

#include "io/pth.h"  // TensorMap

namespace mae::io {

enum class NameStyle { Official, HF, Unknown };

// Official if any official name is present, HF if any HF one is; both at once is an error naming `where`.
NameStyle detect_style(const TensorMap& m, const std::string& where);

// HF -> official: renames and concatenates query/key/value into qkv. `where` (the file) prefixes errors: a block
// with some of q/k/v missing, or shapes that do not stack.
TensorMap to_official(TensorMap hf, const std::string& where);
// official -> HF (with the "vit." prefix, which both ViTMAEModel and ViTMAEForPreTraining load): splits qkv.
TensorMap to_hf(TensorMap official, const std::string& where);

}  // namespace mae::io
