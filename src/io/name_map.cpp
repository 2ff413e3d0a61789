#include "io/name_map.h"

#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.h"

namespace mae::io {

namespace {

bool starts(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// "<digits>.<rest>" -> (index, rest); false if `s` does not start so.
bool split_index(const std::string& s, std::string* index, std::string* rest) {
  size_t k = 0;
  while (k < s.size() && s[k] >= '0' && s[k] <= '9') ++k;
  if (k == 0 || k >= s.size() || s[k] != '.') return false;
  *index = s.substr(0, k);
  *rest = s.substr(k + 1);
  return true;
}

// Inside a block: (official suffix, HF suffix), weight and bias alike; q/k/v are handled apart.
constexpr std::pair<const char*, const char*> kBlockNames[] = {
    {"norm1.", "layernorm_before."},
    {"attn.proj.", "attention.output.dense."},
    {"norm2.", "layernorm_after."},
    {"mlp.fc1.", "intermediate.dense."},
    {"mlp.fc2.", "output.dense."},
};
constexpr const char* kQKV[] = {"query", "key", "value"};

// Top-level names outside the blocks: (official, HF without the "vit." prefix).
constexpr std::pair<const char*, const char*> kTopNames[] = {
    {"cls_token", "embeddings.cls_token"},
    {"pos_embed", "embeddings.position_embeddings"},
    {"patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"},
    {"patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"},
    {"norm.weight", "layernorm.weight"},
    {"norm.bias", "layernorm.bias"},
    {"decoder_embed.weight", "decoder.decoder_embed.weight"},
    {"decoder_embed.bias", "decoder.decoder_embed.bias"},
    {"mask_token", "decoder.mask_token"},
    {"decoder_pos_embed", "decoder.decoder_pos_embed"},
    {"decoder_norm.weight", "decoder.decoder_norm.weight"},
    {"decoder_norm.bias", "decoder.decoder_norm.bias"},
    {"decoder_pred.weight", "decoder.decoder_pred.weight"},
    {"decoder_pred.bias", "decoder.decoder_pred.bias"},
    {"head.weight", "classifier.weight"},  // a fine-tuned classifier (HF ViTForImageClassification)
    {"head.bias", "classifier.bias"},
};
// Block containers: (official prefix, HF prefix without "vit.").
constexpr std::pair<const char*, const char*> kBlockPrefixes[] = {
    {"blocks.", "encoder.layer."},
    {"decoder_blocks.", "decoder.decoder_layers."},
};

// The HF name without its optional "vit." prefix (decoder and classifier names never carry it).
std::string strip_vit(const std::string& n) { return starts(n, "vit.") ? n.substr(4) : n; }
bool outside_vit(const std::string& hf) { return starts(hf, "decoder.") || starts(hf, "classifier."); }

bool is_official_name(const std::string& n) {
  for (auto& [o, h] : kTopNames)
    if (n == o) return true;
  for (auto& [o, h] : kBlockPrefixes)
    if (starts(n, o)) return true;
  return false;
}
bool is_hf_name(const std::string& n0) {
  const std::string n = strip_vit(n0);
  for (auto& [o, h] : kTopNames)
    if (n == h) return true;
  for (auto& [o, h] : kBlockPrefixes)
    if (starts(n, h)) return true;
  return false;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
  return r + (s.size() == 1 ? ",)" : ")");
}

}  // namespace

NameStyle detect_style(const TensorMap& m, const std::string& where) {
  std::string official, hf;
  for (const auto& [n, t] : m) {
    if (official.empty() && is_official_name(n)) official = n;
    if (hf.empty() && is_hf_name(n)) hf = n;
  }
  if (!official.empty() && !hf.empty())
    fail(where, ": mixes official names ('", official, "') with Hugging Face ones ('", hf, "')");
  return !official.empty() ? NameStyle::Official : !hf.empty() ? NameStyle::HF : NameStyle::Unknown;
}

TensorMap to_official(TensorMap hf, const std::string& where) {
  TensorMap out;
  // q/k/v pieces per block, by official prefix ("blocks.3.") and leaf ("weight"/"bias").
  std::map<std::pair<std::string, std::string>, std::array<Tensor*, 3>> qkv;
  auto put = [&](std::string name, Tensor t) {
    if (out.count(name)) fail(where, ": two tensors map to '", name, "'");
    out.emplace(std::move(name), std::move(t));
  };
  for (auto& [name0, t] : hf) {
    const std::string n = strip_vit(name0);
    bool done = false;
    for (auto& [o, h] : kTopNames)
      if (n == h) put(o, std::move(t)), done = true;
    for (auto& [op, hp] : kBlockPrefixes) {
      std::string index, inner;
      if (done || !starts(n, hp) || !split_index(n.substr(std::strlen(hp)), &index, &inner)) continue;
      const std::string pre = std::string(op) + index + ".";
      for (auto& [o, h] : kBlockNames)
        if (starts(inner, h)) put(pre + o + inner.substr(std::strlen(h)), std::move(t)), done = true;
      for (int k = 0; k < 3 && !done; ++k) {
        const std::string q = std::string("attention.attention.") + kQKV[k] + ".";
        if (starts(inner, q)) {
          auto& slot = qkv[{pre, inner.substr(q.size())}];
          if (slot[k]) fail(where, ": two tensors map to the ", kQKV[k], " part of '", pre, "attn.qkv.", inner.substr(q.size()), "'");
          slot[k] = &t;
          done = true;
        }
      }
    }
    if (!done) put(name0, std::move(t));  // unknown to both schemes: kept as it is
  }
  for (auto& [key, parts] : qkv) {
    const auto& [pre, leaf] = key;
    for (int k = 0; k < 3; ++k)
      if (!parts[k])
        fail(where, ": block '", pre, "' has no attention ", kQKV[k], ".", leaf, " (query, key and value come together)");
    const Tensor &q = *parts[0], &k = *parts[1], &v = *parts[2];
    if (q.shape != k.shape || q.shape != v.shape || q.shape.empty() || !q.is_float() || !k.is_float() || !v.is_float())
      fail(where, ": block '", pre, "' attention query/key/value.", leaf, " have shapes ", shape_text(q.shape), ", ",
           shape_text(k.shape), ", ", shape_text(v.shape), ": they must be equal float tensors to stack into qkv");
    Tensor cat;
    cat.dtype = q.dtype;
    cat.shape = q.shape;
    cat.shape[0] *= 3;  // rows: q [0, D), k [D, 2D), v [2D, 3D)
    cat.f.reserve(q.f.size() * 3);
    for (const Tensor* p : parts) cat.f.insert(cat.f.end(), p->f.begin(), p->f.end());
    put(pre + "attn.qkv." + leaf, std::move(cat));
  }
  return out;
}

TensorMap to_hf(TensorMap official, const std::string& where) {
  TensorMap out;
  auto put = [&](std::string name, Tensor t) {
    if (out.count(name)) fail(where, ": two tensors map to '", name, "'");
    out.emplace(std::move(name), std::move(t));
  };
  for (auto& [n, t] : official) {
    bool done = false;
    for (auto& [o, h] : kTopNames)
      if (n == o) put(outside_vit(h) ? h : std::string("vit.") + h, std::move(t)), done = true;
    for (auto& [op, hp] : kBlockPrefixes) {
      std::string index, inner;
      if (done || !starts(n, op) || !split_index(n.substr(std::strlen(op)), &index, &inner)) continue;
      const std::string pre = (outside_vit(hp) ? std::string() : "vit.") + hp + index + ".";
      for (auto& [o, h] : kBlockNames)
        if (starts(inner, o)) put(pre + h + inner.substr(std::strlen(o)), std::move(t)), done = true;
      if (!done && starts(inner, "attn.qkv.")) {
        const std::string leaf = inner.substr(9);
        if (t.shape.empty() || t.shape[0] % 3 != 0 || !t.is_float())
          fail(where, ": '", n, "' has shape ", shape_text(t.shape), ": cannot split it into query, key and value");
        const size_t third = t.f.size() / 3;
        for (int k = 0; k < 3; ++k) {
          Tensor part;
          part.dtype = t.dtype;
          part.shape = t.shape;
          part.shape[0] /= 3;
          part.f.assign(t.f.begin() + static_cast<std::ptrdiff_t>(k * third),
                        t.f.begin() + static_cast<std::ptrdiff_t>((k + 1) * third));
          put(pre + "attention.attention." + kQKV[k] + "." + leaf, std::move(part));
        }
        done = true;
      }
    }
    if (!done) put(n, std::move(t));
  }
  return out;
}

}  // namespace mae::io
