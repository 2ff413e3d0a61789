#include "model/hf_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mae {

bool is_hf_config(const nlohmann::json& j) {
  return j.is_object() && (j.contains("hidden_size") || (j.contains("model_type") && j["model_type"] == "vit_mae"));
}

ModelConfig config_from_hf_json(const nlohmann::json& j, const std::string& where, double* mask_ratio) {
  if (!j.is_object()) fail(where, ": Hugging Face config is not a JSON object");
  auto bad = [&](const auto&... what) { fail(where, ": Hugging Face config: ", what...); };
  auto get_int = [&](const char* k, int def) {
    if (!j.contains(k)) return def;
    const nlohmann::json* pv = &j[k];
    // image_size / patch_size may be [h, w]; the value then gets the same checks as a plain one (a fuzzer's
    // "hidden_size": [-0, 0] passed as 0 and made mlp_ratio 3072 / 0)
    if (pv->is_array()) {
      if (pv->size() != 2 || (*pv)[0] != (*pv)[1])
        bad("'", k, "' ", pv->dump(), " is not square (only square images and patches are supported)");
      pv = &(*pv)[0];
    }
    const nlohmann::json& v = *pv;
    if (!v.is_number_integer()) bad("'", k, "' must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x <= 0 || x > (1 << 24)) bad("'", k, "' = ", x, " is out of range");
    return static_cast<int>(x);
  };
  ModelConfig c;
  c.embed_dim = get_int("hidden_size", 768);
  c.depth = get_int("num_hidden_layers", 12);
  c.num_heads = get_int("num_attention_heads", 12);
  const int hidden = get_int("intermediate_size", 3072);
  c.decoder_embed_dim = get_int("decoder_hidden_size", 512);
  c.decoder_depth = get_int("decoder_num_hidden_layers", 8);
  c.decoder_num_heads = get_int("decoder_num_attention_heads", 16);
  const int dec_hidden = get_int("decoder_intermediate_size", 2048);
  // A ViTConfig (a classifier: ViTForImageClassification) has no decoder: ours keeps its defaults.
  const bool vit = j.contains("model_type") && j["model_type"] == "vit";
  c.img_size = get_int("image_size", 224);
  c.patch_size = get_int("patch_size", 16);
  c.in_chans = get_int("num_channels", 3);
  c.mlp_ratio = double(hidden) / c.embed_dim;
  if (c.mlp_hidden() != hidden || (!vit && c.decoder_mlp_hidden() != dec_hidden))
    bad("intermediate_size ", hidden, " / hidden_size ", c.embed_dim, " and decoder_intermediate_size ", dec_hidden,
        " / decoder_hidden_size ", c.decoder_embed_dim, " differ: the official model has one mlp_ratio");
  if (j.contains("norm_pix_loss")) {
    const auto& v = j["norm_pix_loss"];
    if (v.is_boolean()) c.norm_pix_loss = v.get<bool>();
    else if (v.is_number_integer()) c.norm_pix_loss = v.get<int64_t>() != 0;
    else bad("'norm_pix_loss' must be a boolean");
  }
  c.ln_eps = 1e-12;  // HF's default, unlike the official 1e-6
  if (j.contains("layer_norm_eps")) {
    if (!j["layer_norm_eps"].is_number()) bad("'layer_norm_eps' must be a number");
    c.ln_eps = j["layer_norm_eps"].get<double>();
  }
  if (j.contains("hidden_act") && !(j["hidden_act"].is_string() && j["hidden_act"] == "gelu"))
    bad("hidden_act ", j["hidden_act"].dump(), " is not supported (MAE uses \"gelu\", the exact erf form)");
  if (j.contains("qkv_bias") && !(j["qkv_bias"].is_boolean() && j["qkv_bias"].get<bool>()))
    bad("qkv_bias false is not supported (MAE's attention has a qkv bias)");
  if (j.contains("mask_ratio")) {
    if (!j["mask_ratio"].is_number()) bad("'mask_ratio' must be a number");
    if (mask_ratio) *mask_ratio = j["mask_ratio"].get<double>();
  }
  c.validate(where);
  return c;
}

namespace {

// The fields ViTConfig and ViTMAEConfig share: the encoder.
nlohmann::json encoder_fields(const ModelConfig& c) {
  return {{"hidden_size", c.embed_dim},
          {"num_hidden_layers", c.depth},
          {"num_attention_heads", c.num_heads},
          {"intermediate_size", c.mlp_hidden()},
          {"image_size", c.img_size},
          {"patch_size", c.patch_size},
          {"num_channels", c.in_chans},
          {"layer_norm_eps", c.ln_eps},
          {"hidden_act", "gelu"},
          {"qkv_bias", true},
          {"hidden_dropout_prob", 0.0},
          {"attention_probs_dropout_prob", 0.0},
          {"initializer_range", 0.02},
          {"torch_dtype", "float32"}};
}

}  // namespace

nlohmann::json config_to_hf_json(const ModelConfig& c, double mask_ratio, const char* architecture) {
  nlohmann::json j = encoder_fields(c);
  j.update({{"architectures", {architecture}},
            {"model_type", "vit_mae"},
            {"decoder_hidden_size", c.decoder_embed_dim},
            {"decoder_num_hidden_layers", c.decoder_depth},
            {"decoder_num_attention_heads", c.decoder_num_heads},
            {"decoder_intermediate_size", c.decoder_mlp_hidden()},
            {"norm_pix_loss", c.norm_pix_loss},
            {"mask_ratio", mask_ratio}});
  return j;
}

nlohmann::json config_to_hf_vit_json(const ModelConfig& c, const std::vector<std::string>& labels) {
  nlohmann::json j = encoder_fields(c);
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (size_t k = 0; k < labels.size(); ++k) {
    id2label[std::to_string(k)] = labels[k];
    label2id[labels[k]] = k;
  }
  j.update({{"architectures", {"ViTForImageClassification"}},
            {"model_type", "vit"},
            {"encoder_stride", c.patch_size},
            {"id2label", id2label},
            {"label2id", label2id}});
  return j;
}

}  // namespace mae
