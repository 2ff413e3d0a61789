#include "model/params.h"

#include "core/error.h"

namespace mae {

const ParamSpec* ParamList::try_find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &specs[it->second];
}

const ParamSpec& ParamList::find(const std::string& name) const {
  if (auto* p = try_find(name)) return *p;
  fail("no parameter named '", name, "'");
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// timm Block: norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2
void add_block_params(std::vector<ParamSpec>& v, const std::string& pre, int64_t D, int64_t hidden, int layer) {
  auto ln = [&](const std::string& n) {
    v.push_back({pre + n + ".weight", {D}, false, layer, Init::One});
    v.push_back({pre + n + ".bias", {D}, false, layer, Init::Zero});
  };
  auto lin = [&](const std::string& n, int64_t out, int64_t in) {
    v.push_back({pre + n + ".weight", {out, in}, true, layer, Init::Xavier});
    v.push_back({pre + n + ".bias", {out}, false, layer, Init::Zero});
  };
  ln("norm1");
  lin("attn.qkv", 3 * D, D);
  lin("attn.proj", D, D);
  ln("norm2");
  lin("mlp.fc1", hidden, D);
  lin("mlp.fc2", D, hidden);
}

ParamList make_mae_params(const ModelConfig& c) {
  const int64_t D = c.embed_dim, E = c.decoder_embed_dim, p = c.patch_size, C = c.in_chans;
  const int top = c.depth + 1;
  std::vector<ParamSpec> v;
  // self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
  v.push_back({"patch_embed.proj.weight", {D, C, p, p}, true, 0, Init::Xavier});
  v.push_back({"patch_embed.proj.bias", {D}, false, 0, Init::ConvBias});
  // self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))  (3-D, so it IS weight-decayed officially)
  v.push_back({"cls_token", {1, 1, D}, true, 0, Init::Normal002});
  for (int i = 0; i < c.depth; ++i)
    add_block_params(v, "blocks." + std::to_string(i) + ".", D, c.mlp_hidden(), i + 1);
  v.push_back({"norm.weight", {D}, false, top, Init::One});
  v.push_back({"norm.bias", {D}, false, top, Init::Zero});
  v.push_back({"decoder_embed.weight", {E, D}, true, top, Init::Xavier});
  v.push_back({"decoder_embed.bias", {E}, false, top, Init::Zero});
  v.push_back({"mask_token", {1, 1, E}, true, top, Init::Normal002});
  for (int i = 0; i < c.decoder_depth; ++i)
    add_block_params(v, "decoder_blocks." + std::to_string(i) + ".", E, c.decoder_mlp_hidden(), top);
  v.push_back({"decoder_norm.weight", {E}, false, top, Init::One});
  v.push_back({"decoder_norm.bias", {E}, false, top, Init::Zero});
  v.push_back({"decoder_pred.weight", {c.patch_dim(), E}, true, top, Init::Xavier});
  v.push_back({"decoder_pred.bias", {c.patch_dim()}, false, top, Init::Zero});

  return make_param_list(std::move(v));
}

ParamList make_param_list(std::vector<ParamSpec> v) {
  ParamList list;
  size_t off = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    auto& s = v[i];
    s.numel = 1;
    for (auto d : s.shape) s.numel *= size_t(d);
    s.offset = off;
    // Keep every tensor 16-element (64-byte) aligned in the flat buffer for vector loads.
    off += (s.numel + 15) / 16 * 16;
    if (!list.index_.emplace(s.name, i).second) fail("parameter '", s.name, "' is listed twice");
  }
  list.specs = std::move(v);
  list.total = off;
  return list;
}

}  // namespace mae
