// Model configuration: the official MaskedAutoencoderViT constructor's arguments, the presets, and their JSON form
// (the "config" entry of a checkpoint's safetensors metadata, docs/architecture.md §4).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mae {

struct ModelConfig {
  int img_size = 224, patch_size = 16, in_chans = 3;
  int embed_dim = 1024, depth = 24, num_heads = 16;
  int decoder_embed_dim = 512, decoder_depth = 8, decoder_num_heads = 16;
  double mlp_ratio = 4.0;
  bool norm_pix_loss = false;
  double ln_eps = 1e-6;  // official partial(nn.LayerNorm, eps=1e-6); HF configs carry 1e-12

  int grid() const { return img_size / patch_size; }
  int num_patches() const { return grid() * grid(); }                   // L
  int patch_dim() const { return patch_size * patch_size * in_chans; }  // P = p·p·C
  int mlp_hidden() const { return int(embed_dim * mlp_ratio); }
  int decoder_mlp_hidden() const { return int(decoder_embed_dim * mlp_ratio); }
  // len_keep = int(L * (1 - mask_ratio)), in double arithmetic exactly like Python's float.
  int len_keep(double mask_ratio) const { return int(num_patches() * (1.0 - mask_ratio)); }

  // Throws mae::Error (prefixed with `where`) if the numbers cannot make a model.
  void validate(const std::string& where) const;
};

// Official presets (mae_vit_base_patch16, mae_vit_large_patch16, mae_vit_huge_patch14) and small CPU ones.
// Also takes the official models_vit names (vit_base_patch16 = mae_vit_base_patch16's encoder).
ModelConfig preset(const std::string& name);  // throws listing the known names
std::vector<std::string> preset_names();

nlohmann::json config_to_json(const ModelConfig& c);
// Missing keys keep the defaults of the official constructor; unknown keys are ignored.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace mae
