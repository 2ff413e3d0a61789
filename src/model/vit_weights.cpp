#include "model/vit_weights.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/weights.h"

namespace mae {

namespace {

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// torch's UpSampleBicubic2d.h helpers with A = −0.75, in float as its CPU kernel computes for float tensors.
float cubic1(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }      // |x| ≤ 1
float cubic2(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }  // 1 < |x| < 2
float cubic_interp1d(float x0, float x1, float x2, float x3, float t) {
  const float A = -0.75f;
  const float u = 1.0f - t;  // get_cubic_upsample_coefficients: the opposite side from x2 = 1 − t
  const float c0 = cubic2(t + 1.0f, A), c1 = cubic1(t, A), c2 = cubic1(u, A), c3 = cubic2(u + 1.0f, A);
  return x0 * c0 + x1 * c1 + x2 * c2 + x3 * c3;
}

}  // namespace

std::vector<float> interpolate_pos_embed(const float* src, int extra, int gs, int ng, int D) {
  std::vector<float> out(size_t(extra + ng * ng) * D);
  std::copy(src, src + size_t(extra) * D, out.begin());  // extra_tokens = pos_embed_checkpoint[:, :num_extra_tokens]
  const float* grid = src + size_t(extra) * D;         // (gs, gs, D): the permute to (D, gs, gs) is only a view
  // area_pixel_compute_scale (align_corners=False, no scale_factor): input / output; source index
  // scale · (dst + 0.5) − 0.5, not clamped for cubic; taps at floor(.) − 1 .. + 2 clamped to the edge.
  const float scale = float(gs) / float(ng);
  auto at = [&](int y, int x, int d) {
    y = std::min(std::max(y, 0), gs - 1);
    x = std::min(std::max(x, 0), gs - 1);
    return grid[(size_t(y) * gs + x) * D + d];
  };
  for (int oy = 0; oy < ng; ++oy) {
    const float ry = float(double(scale) * (oy + 0.5) - 0.5);  // in double, rounded once, as torch
    const int iy = int(std::floor(ry));
    const float ty = ry - float(iy);
    for (int ox = 0; ox < ng; ++ox) {
      const float rx = float(double(scale) * (ox + 0.5) - 0.5);
      const int ix = int(std::floor(rx));
      const float tx = rx - float(ix);
      float* o = out.data() + (size_t(extra) + size_t(oy) * ng + ox) * D;
      for (int d = 0; d < D; ++d) {
        float c[4];
        for (int k = 0; k < 4; ++k)
          c[k] = cubic_interp1d(at(iy - 1 + k, ix - 1, d), at(iy - 1 + k, ix, d), at(iy - 1 + k, ix + 1, d),
                                at(iy - 1 + k, ix + 2, d), tx);
        o[d] = cubic_interp1d(c[0], c[1], c[2], c[3], ty);
      }
    }
  }
  return out;
}

FinetuneInit load_finetune_weights(const LoadedWeights& w, const ModelConfig& m, const ParamList& list,
                                   float* dst) {
  const ModelConfig& k = w.config;
  auto differ = [&](const char* what, double a, double b) {
    if (a != b)
      fail(w.path, ": the checkpoint's ", what, " is ", a, " (config from ", w.config_source,
           ") but the model's is ", b, ": give the --model the checkpoint was trained with");
  };
  differ("embed_dim", k.embed_dim, m.embed_dim);
  differ("depth", k.depth, m.depth);
  differ("num_heads", k.num_heads, m.num_heads);
  differ("patch_size", k.patch_size, m.patch_size);
  differ("mlp_ratio", k.mlp_ratio, m.mlp_ratio);
  differ("in_chans", k.in_chans, m.in_chans);

  FinetuneInit r;
  for (const ParamSpec& s : list.specs) {
    auto it = w.tensors.find(s.name);
    const bool optional = starts(s.name, "head.") || starts(s.name, "fc_norm.") || s.name == "pos_embed";
    if (it == w.tensors.end()) {
      // official: assert set(msg.missing_keys) == {'head.weight', 'head.bias'} (+ 'fc_norm.*' with global_pool)
      if (!optional)
        fail(w.path, ": missing tensor '", s.name, "' ", shape_str(s.shape), ": not an MAE encoder for this model",
             s.name.rfind("norm.", 0) == 0 ? " (--cls_token needs the encoder's final norm)" : "");
      r.missing.push_back(s.name);
      if (s.name == "pos_embed") r.pos_note = "no pos_embed in the file: the sin-cos table";
      continue;
    }
    const io::Tensor& t = it->second;
    if (!t.is_float()) fail(w.path, ": tensor '", s.name, "' holds ", io::dtype_name(t.dtype), ", not floating point");
    if (s.name == "pos_embed") {
      // interpolate_pos_embed(model, checkpoint_model)
      const int64_t D = m.embed_dim, L = m.num_patches(), extra = 1;
      if (t.shape.size() != 3 || t.shape[0] != 1 || t.shape[2] != D || t.shape[1] <= extra)
        fail(w.path, ": pos_embed has shape ", shape_str(t.shape), ", expected (1, 1 + grid², ", D, ")");
      const int gs = int(std::lround(std::sqrt(double(t.shape[1] - extra))));
      if (int64_t(gs) * gs != t.shape[1] - extra)
        fail(w.path, ": pos_embed has ", t.shape[1] - extra, " patch rows: not a square grid");
      const int ng = m.grid();
      if (gs == ng) {
        std::copy(t.f.begin(), t.f.end(), dst + s.offset);
      } else {
        const auto v = interpolate_pos_embed(t.f.data(), int(extra), gs, ng, int(D));
        MAE_CHECK(v.size() == size_t(1 + L) * D);
        std::copy(v.begin(), v.end(), dst + s.offset);
        r.pos_note = "interpolated " + std::to_string(gs) + "x" + std::to_string(gs) + " -> " + std::to_string(ng) +
                     "x" + std::to_string(ng);
      }
      r.loaded.push_back(s.name);
      continue;
    }
    if (t.shape != s.shape) {
      // official: del checkpoint_model[k] for head.* of another shape (another number of classes)
      if (starts(s.name, "head.")) {
        r.missing.push_back(s.name);
        continue;
      }
      fail(w.path, ": tensor '", s.name, "' has shape ", shape_str(t.shape), " but the model expects ",
           shape_str(s.shape));
    }
    std::copy(t.f.begin(), t.f.end(), dst + s.offset);
    r.loaded.push_back(s.name);
  }
  for (const auto& [n, t] : w.tensors)
    if (!list.try_find(n)) r.ignored.push_back(n);
  return r;
}

nlohmann::json classifier_to_json(const ClassifierConfig& cc) {
  return {{"nb_classes", cc.nb_classes}, {"global_pool", cc.global_pool}, {"drop_path", cc.drop_path}};
}

void save_classifier(const std::string& path, const ModelConfig& cfg, const ClassifierConfig& cc,
                     const ParamList& list, const float* params, const std::vector<NamedBuffer>& extra,
                     std::map<std::string, std::string> meta) {
  std::vector<io::TensorOut> out;
  for (const auto& s : list.specs) out.push_back({s.name, io::DType::F32, s.shape, params + s.offset});
  for (const auto& e : extra) out.push_back({e.name, io::DType::F32, e.shape, e.data});
  meta["config"] = config_to_json(cfg).dump();
  meta["classifier"] = classifier_to_json(cc).dump();
  meta["format"] = "pt";
  io::write_safetensors(path, out, meta);
}

void read_classifier_config(const io::SafeTensorsReader& f, ModelConfig* cfg, ClassifierConfig* cc) {
  auto it = f.metadata().find("classifier");
  if (it == f.metadata().end() || !f.has("head.weight"))
    fail(f.path(), ": not a fine-tuned classifier (no head.weight and no \"classifier\" metadata",
         f.has("decoder_embed.weight") || f.has("blocks.0.norm1.weight") ? "; it looks like an MAE checkpoint" : "",
         "): fine-tune it first with `mae finetune --finetune ", f.path(), "`");
  *cfg = read_config(f);
  try {
    const auto j = nlohmann::json::parse(it->second);
    cc->nb_classes = j.at("nb_classes").get<int>();
    cc->global_pool = j.at("global_pool").get<bool>();
    cc->drop_path = j.value("drop_path", 0.0);
  } catch (const nlohmann::json::exception& e) {
    fail(f.path(), ": malformed \"classifier\" metadata: ", e.what());
  }
  if (cc->nb_classes < 1) fail(f.path(), ": \"classifier\" metadata has nb_classes ", cc->nb_classes);
}

}  // namespace mae
