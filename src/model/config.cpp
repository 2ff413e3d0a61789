#include "model/config.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mae {

void ModelConfig::validate(const std::string& where) const {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) fail(where, ": invalid model config: ", what);
  };
  need(img_size > 0 && patch_size > 0 && in_chans > 0, "img_size, patch_size and in_chans must be positive");
  need(img_size % patch_size == 0, "img_size " + std::to_string(img_size) + " is not divisible by patch_size " +
                                       std::to_string(patch_size));
  need(embed_dim > 0 && depth >= 0 && num_heads > 0, "embed_dim/depth/num_heads must be positive");
  need(embed_dim % num_heads == 0, "embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " +
                                       std::to_string(num_heads));
  need(decoder_embed_dim > 0 && decoder_depth >= 0 && decoder_num_heads > 0,
       "decoder_embed_dim/decoder_depth/decoder_num_heads must be positive");
  need(decoder_embed_dim % decoder_num_heads == 0, "decoder_embed_dim " + std::to_string(decoder_embed_dim) +
                                                       " is not divisible by decoder_num_heads " +
                                                       std::to_string(decoder_num_heads));
  // The 2-D sin-cos table splits channels in half (h, w) and each half into sin/cos.
  need(embed_dim % 4 == 0 && decoder_embed_dim % 4 == 0, "embed_dim and decoder_embed_dim must be multiples of 4");
  need(mlp_ratio > 0 && mlp_ratio <= 64, "mlp_ratio must be in (0, 64]");
  need(mlp_hidden() > 0, "mlp_ratio × embed_dim must be ≥ 1");
  need(ln_eps > 0 && ln_eps <= 1, "ln_eps must be in (0, 1]");
  // Upper bounds, so that a config read from a file cannot overflow an int size or ask for absurd memory: every
  // size below fits in int with room, and products are taken in 64 bits. ViT-H/14 at 448 px (1024 tokens, 1280
  // wide, 32 deep, ~630 M parameters) is well inside them.
  need(img_size <= 8192 && in_chans <= 64, "img_size must be ≤ 8192 and in_chans ≤ 64");
  const int64_t grid = img_size / patch_size, tokens = grid * grid;
  need(tokens <= 16384, "img_size / patch_size = " + std::to_string(grid) + " gives " + std::to_string(tokens) +
                            " patches; at most 16384 (a 128×128 grid)");
  need(int64_t(patch_size) * patch_size * in_chans <= 65536, "patch_size² × in_chans must be ≤ 65536");
  need(embed_dim <= 16384 && decoder_embed_dim <= 16384, "embed_dim and decoder_embed_dim must be ≤ 16384");
  need(depth <= 256 && decoder_depth <= 256, "depth and decoder_depth must be ≤ 256");
  need(num_heads <= embed_dim && decoder_num_heads <= decoder_embed_dim, "more heads than channels");
  auto block = [](int64_t d, int64_t hidden) { return 4 * d * d + 2 * d * hidden + 9 * d + hidden; };
  const int64_t n_params = int64_t(depth) * block(embed_dim, int64_t(embed_dim * mlp_ratio)) +
                           int64_t(decoder_depth) * block(decoder_embed_dim, int64_t(decoder_embed_dim * mlp_ratio)) +
                           (tokens + 1) * (int64_t(embed_dim) + decoder_embed_dim) +
                           int64_t(patch_size) * patch_size * in_chans * (embed_dim + decoder_embed_dim);
  need(n_params <= (int64_t(1) << 32), "about " + std::to_string(n_params) + " parameters; at most 2^32");
}

namespace {
ModelConfig make(int img, int p, int c, int d, int depth, int h, int dd, int ddepth, int dh) {
  ModelConfig m;
  m.img_size = img, m.patch_size = p, m.in_chans = c;
  m.embed_dim = d, m.depth = depth, m.num_heads = h;
  m.decoder_embed_dim = dd, m.decoder_depth = ddepth, m.decoder_num_heads = dh;
  return m;
}
const std::map<std::string, ModelConfig>& presets() {
  static const std::map<std::string, ModelConfig> p = {
      // models_mae.py
      {"mae_vit_base_patch16", make(224, 16, 3, 768, 12, 12, 512, 8, 16)},
      {"mae_vit_large_patch16", make(224, 16, 3, 1024, 24, 16, 512, 8, 16)},
      {"mae_vit_huge_patch14", make(224, 14, 3, 1280, 32, 16, 512, 8, 16)},
      // small ViTs for CPU work, official decoder
      {"mae_vit_tiny_patch16", make(224, 16, 3, 192, 12, 3, 512, 8, 16)},
      {"mae_vit_small_patch16", make(224, 16, 3, 384, 12, 6, 512, 8, 16)},
      // 28×28 grey (Fashion-MNIST), patch 4 → 7×7 grid
      {"mae_vit_fmnist", make(28, 4, 1, 192, 12, 3, 128, 4, 4)},
      // the accuracy anchor of README "Measured figures": encoder 128/6/4, decoder 64/2/4
      {"mae_vit_fmnist_small", make(28, 4, 1, 128, 6, 4, 64, 2, 4)},
  };
  return p;
}
}  // namespace

ModelConfig preset(const std::string& name) {
  auto it = presets().find(name);
  // Official models_vit names (vit_base_patch16, ...) as used by main_finetune/main_linprobe: the MAE preset's
  // encoder (the decoder fields are carried along, unused).
  if (it == presets().end()) it = presets().find("mae_" + name);
  if (it == presets().end()) {
    std::string known;
    for (auto& [k, v] : presets()) known += (known.empty() ? "" : ", ") + k;
    fail("unknown model '", name, "' (known: ", known, "; official vit_* names stand for the mae_vit_* encoders)");
  }
  return it->second;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> v;
  for (auto& [k, _] : presets()) v.push_back(k);
  return v;
}

nlohmann::json config_to_json(const ModelConfig& c) {
  nlohmann::json j = {{"img_size", c.img_size},
                      {"patch_size", c.patch_size},
                      {"in_chans", c.in_chans},
                      {"embed_dim", c.embed_dim},
                      {"depth", c.depth},
                      {"num_heads", c.num_heads},
                      {"decoder_embed_dim", c.decoder_embed_dim},
                      {"decoder_depth", c.decoder_depth},
                      {"decoder_num_heads", c.decoder_num_heads},
                      {"mlp_ratio", c.mlp_ratio},
                      {"norm_pix_loss", c.norm_pix_loss}};
  if (c.ln_eps != 1e-6) j["layer_norm_eps"] = c.ln_eps;
  return j;
}

ModelConfig config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": config is not a JSON object");
  ModelConfig c;
  auto get_int = [&](const char* k, int& v) {
    if (!j.contains(k)) return;
    if (!j[k].is_number_integer()) fail(where, ": config key '", k, "' must be an integer");
    const int64_t x = j[k].is_number_unsigned() ? int64_t(std::min<uint64_t>(j[k].get<uint64_t>(), INT64_MAX))
                                                : j[k].get<int64_t>();
    if (x < 0 || x > 1000000) fail(where, ": config key '", k, "' = ", x, " is out of range (0..1000000)");
    v = int(x);
  };
  get_int("img_size", c.img_size);
  get_int("patch_size", c.patch_size);
  get_int("in_chans", c.in_chans);
  get_int("embed_dim", c.embed_dim);
  get_int("depth", c.depth);
  get_int("num_heads", c.num_heads);
  get_int("decoder_embed_dim", c.decoder_embed_dim);
  get_int("decoder_depth", c.decoder_depth);
  get_int("decoder_num_heads", c.decoder_num_heads);
  if (j.contains("mlp_ratio")) {
    if (!j["mlp_ratio"].is_number()) fail(where, ": config key 'mlp_ratio' must be a number");
    c.mlp_ratio = j["mlp_ratio"].get<double>();
  }
  if (j.contains("norm_pix_loss")) {
    const auto& v = j["norm_pix_loss"];
    if (v.is_boolean()) c.norm_pix_loss = v.get<bool>();
    else if (v.is_number_integer()) c.norm_pix_loss = v.get<int>() != 0;
    else fail(where, ": config key 'norm_pix_loss' must be a boolean");
  }
  if (j.contains("layer_norm_eps")) {
    if (!j["layer_norm_eps"].is_number()) fail(where, ": config key 'layer_norm_eps' must be a number");
    c.ln_eps = j["layer_norm_eps"].get<double>();
  }
  c.validate(where);
  return c;
}

}  // namespace mae
