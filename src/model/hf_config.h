// Hugging Face ViTMAEConfig / ViTConfig (config.json) <-> our ModelConfig. The tensor names' side is io/name_map.h.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace mae {

// An HF ViTMAEConfig (config.json). image_size/patch_size may be ints or [h, w] pairs with h == w; the encoder and
// decoder must share one MLP ratio (intermediate_size / hidden_size), hidden_act must be "gelu" (exact erf) and
// qkv_bias true, as in MAE. Missing keys take HF's defaults (layer_norm_eps 1e-12 among them). If mask_ratio is
// given, *mask_ratio receives it.
// A ViTConfig (model_type "vit": a classifier) is read for its encoder; the decoder keeps our defaults.
ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& where, double* mask_ratio = nullptr);
// ViTMAEConfig: ViTMAEForPreTraining (encoder + decoder) or ViTMAEModel (an encoder-only file).
nlohmann::json config_to_hf_json(const ModelConfig& c, double mask_ratio = 0.75,
                                 const char* architecture = "ViTMAEForPreTraining");
// ViTConfig of a cls-token classifier (ViTForImageClassification): the encoder fields and one label per class
// (id2label/label2id; their count is the head's size).
nlohmann::json config_to_hf_vit_json(const ModelConfig& c, const std::vector<std::string>& labels);
// True if `j` looks like an HF config (it has "hidden_size" or model_type "vit_mae").
bool is_hf_config(const nlohmann::json& j);

}  // namespace mae
