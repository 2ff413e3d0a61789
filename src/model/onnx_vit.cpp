#include "model/onnx_vit.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mae {

namespace {

using io::onnx::Attribute;
using io::onnx::DataType;
using io::onnx::Initializer;

// Appends nodes and constants to a Model; values are named after the official module path they compute
// ("blocks.3.attn/softmax") so that a graph viewer reads like models_mae.py.
class GraphBuilder {
 public:
  GraphBuilder(io::onnx::Model& m, const StateDict& sd) : m_(m), sd_(sd) {}

  std::string op(const std::string& type, std::vector<std::string> in, const std::string& out,
                 std::vector<Attribute> attrs = {}) {
    m_.nodes.push_back({type, std::move(in), {out}, std::move(attrs)});
    return out;
  }
  std::string constant(const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    m_.initializers.push_back({name, DataType::Float, std::move(dims), std::move(v), {}});
    return name;
  }
  std::string ints(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> v) {
    m_.initializers.push_back({name, DataType::Int64, std::move(dims), {}, std::move(v)});
    return name;
  }
  // A tensor of the checkpoint as it is.
  std::string weight(const std::string& name) {
    const io::Tensor& t = sd_.at(name);
    return constant(name, t.shape, {t.f.begin(), t.f.end()});
  }
  // nn.Linear: x @ weightᵀ + bias, with weightᵀ stored (in, out) so that MatMul broadcasts over (batch, tokens).
  std::string linear(const std::string& x, const std::string& prefix, const std::string& out = "") {
    const io::Tensor& w = sd_.at(prefix + ".weight");
    const int64_t n_out = w.shape[0], n_in = w.shape[1];
    std::vector<float> wt(w.f.size());
    for (int64_t o = 0; o < n_out; ++o)
      for (int64_t i = 0; i < n_in; ++i) wt[size_t(i * n_out + o)] = w.f[size_t(o * n_in + i)];
    const std::string y =
        op("MatMul", {x, constant(prefix + ".weight.T", {n_in, n_out}, std::move(wt))}, prefix + "/matmul");
    return op("Add", {y, weight(prefix + ".bias")}, out.empty() ? prefix : out);
  }
  std::string layer_norm(const std::string& x, const std::string& prefix) {
    return op("LayerNormalization", {x, weight(prefix + ".weight"), weight(prefix + ".bias")}, prefix,
              {Attribute::of_int("axis", -1), Attribute::of_float("epsilon", float(sd_.config.ln_eps))});
  }
  // nn.GELU(): 0.5 · x · (1 + erf(x / √2)), the exact form.
  std::string gelu(const std::string& x, const std::string& prefix) {
    const std::string e = op("Erf", {op("Div", {x, scalar("sqrt2", std::sqrt(2.0f))}, prefix + "/div")}, prefix + "/erf");
    const std::string one_plus = op("Add", {e, scalar("one", 1.0f)}, prefix + "/add");
    return op("Mul", {op("Mul", {x, one_plus}, prefix + "/mul"), scalar("half", 0.5f)}, prefix);
  }
  std::string scalar(const std::string& name, float v) {
    if (!made_.count(name)) made_[name] = constant(name, {}, {v});
    return made_[name];
  }
  std::string index(int64_t k) {  // a 0-d int64 index for Gather (which then drops the axis)
    const std::string name = "index" + std::to_string(k);
    if (!made_.count(name)) made_[name] = ints(name, {}, {k});
    return made_[name];
  }

  // timm Block: x = x + attn(norm1(x)); x = x + mlp(norm2(x)).
  std::string block(const std::string& x, const std::string& p) {
    const ModelConfig& c = sd_.config;
    const int64_t D = c.embed_dim, H = c.num_heads, hd = D / H;
    // qkv = self.qkv(x).reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4); q, k, v = qkv[0], qkv[1], qkv[2]
    const std::string h = layer_norm(x, p + ".norm1");
    std::string qkv = linear(h, p + ".attn.qkv");                                       // (B, N, 3D)
    qkv = op("Reshape", {qkv, shape_const("qkv_shape", {0, 0, 3, H, hd})}, p + ".attn/qkv_heads");
    qkv = op("Transpose", {qkv}, p + ".attn/qkv_perm", {Attribute::of_ints("perm", {2, 0, 3, 1, 4})});  // (3, B, H, N, hd)
    const std::string q = op("Gather", {qkv, index(0)}, p + ".attn/q", {Attribute::of_int("axis", 0)});
    const std::string k = op("Gather", {qkv, index(1)}, p + ".attn/k", {Attribute::of_int("axis", 0)});
    const std::string v = op("Gather", {qkv, index(2)}, p + ".attn/v", {Attribute::of_int("axis", 0)});
    // attn = (q @ k.transpose(-2, -1)) * self.scale; attn = attn.softmax(dim=-1)
    const std::string kt = op("Transpose", {k}, p + ".attn/kT", {Attribute::of_ints("perm", {0, 1, 3, 2})});
    std::string a = op("MatMul", {q, kt}, p + ".attn/scores");                          // (B, H, N, N)
    a = op("Mul", {a, scalar("scale", float(1.0 / std::sqrt(double(hd))))}, p + ".attn/scaled");
    a = op("Softmax", {a}, p + ".attn/softmax", {Attribute::of_int("axis", -1)});
    // x = (attn @ v).transpose(1, 2).reshape(B, N, C); x = self.proj(x)
    std::string o = op("MatMul", {a, v}, p + ".attn/context");                          // (B, H, N, hd)
    o = op("Transpose", {o}, p + ".attn/context_perm", {Attribute::of_ints("perm", {0, 2, 1, 3})});
    o = op("Reshape", {o, shape_const("tokens_shape", {0, 0, D})}, p + ".attn/merge_heads");
    const std::string x1 = op("Add", {x, linear(o, p + ".attn.proj")}, p + "/attn_residual");
    const std::string m = gelu(linear(layer_norm(x1, p + ".norm2"), p + ".mlp.fc1"), p + ".mlp.act");
    return op("Add", {x1, linear(m, p + ".mlp.fc2")}, p);
  }

  std::string shape_const(const std::string& name, std::vector<int64_t> v) {
    const int64_t n = int64_t(v.size());  // before v is moved from
    if (!made_.count(name)) made_[name] = ints(name, {n}, std::move(v));
    return made_[name];
  }

 private:
  io::onnx::Model& m_;
  const StateDict& sd_;
  std::map<std::string, std::string> made_;  // shared constants by name
};

}  // namespace

io::onnx::Model build_onnx_vit(const StateDict& sd) {
  const ModelConfig& c = sd.config;
  const int64_t D = c.embed_dim, L = c.num_patches(), S = c.img_size, C = c.in_chans, p = c.patch_size;
  const bool classifier = sd.kind == ModelKind::Classifier;
  io::onnx::Model m;
  m.producer_version = "0.1";
  m.graph_name = classifier ? "mae_vit_classifier" : "mae_vit_features";
  GraphBuilder g(m, sd);
  const io::onnx::Dim batch{0, "batch"};
  m.inputs.push_back({"images", DataType::Float, {batch, {C, ""}, {S, ""}, {S, ""}},
                      "normalised images (batch, C, S, S): pixels in [0, 1], then (x - mean[c]) / std[c] with the "
                      "metadata's mae.normalize_mean / mae.normalize_std"});

  // x = self.patch_embed(x): Conv2d(C, D, k=p, stride=p), flatten(2).transpose(1, 2)   (B, L, D)
  std::string x = g.op("Conv", {"images", g.weight("patch_embed.proj.weight"), g.weight("patch_embed.proj.bias")},
                       "patch_embed.proj",
                       {Attribute::of_ints("kernel_shape", {p, p}), Attribute::of_ints("strides", {p, p})});
  x = g.op("Reshape", {x, g.shape_const("patches_shape", {0, D, L})}, "patch_embed/flatten");
  x = g.op("Transpose", {x}, "patch_embed", {Attribute::of_ints("perm", {0, 2, 1})});
  // x = x + pos_embed[:, 1:, :]; cls = cls_token + pos_embed[:, :1, :], expanded over the batch, prepended.
  const io::Tensor& pos = sd.at("pos_embed");
  const io::Tensor& cls = sd.at("cls_token");
  std::vector<float> pos_patches(pos.f.begin() + D, pos.f.end());
  std::vector<float> cls_row(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) cls_row[size_t(d)] = cls.f[size_t(d)] + pos.f[size_t(d)];
  x = g.op("Add", {x, g.constant("pos_embed.patches", {1, L, D}, std::move(pos_patches))}, "pos_embed/add");
  const std::string n = g.op("Shape", {"images"}, "batch_size", {Attribute::of_int("start", 0), Attribute::of_int("end", 1)});
  const std::string cls_shape = g.op("Concat", {n, g.shape_const("one_d", {1, D})}, "cls_shape", {Attribute::of_int("axis", 0)});
  const std::string cls_b = g.op("Expand", {g.constant("cls_token.plus_pos", {1, 1, D}, std::move(cls_row)), cls_shape}, "cls_token/expand");
  x = g.op("Concat", {cls_b, x}, "tokens", {Attribute::of_int("axis", 1)});          // (B, 1+L, D)
  for (int i = 0; i < c.depth; ++i) x = g.block(x, "blocks." + std::to_string(i));

  // The patch tokens x[:, 1:, :] averaged over the tokens: (B, D).
  auto patch_mean = [&](const std::string& t, const std::string& out) {
    const std::string s = g.op("Slice", {t, g.shape_const("slice_start", {1}), g.shape_const("slice_end", {1 + L}),
                                         g.shape_const("slice_axis", {1})}, out + "/patches");
    return g.op("ReduceMean", {s}, out, {Attribute::of_ints("axes", {1}), Attribute::of_int("keepdims", 0)});
  };
  auto cls_of = [&](const std::string& t, const std::string& out) {
    return g.op("Gather", {t, g.index(0)}, out, {Attribute::of_int("axis", 1)});
  };
  const io::onnx::Dim Dd{D, ""};
  nlohmann::json outputs;
  if (!classifier) {
    const std::string z = g.layer_norm(x, "norm");
    cls_of(z, "cls");
    patch_mean(z, "mean");
    m.outputs.push_back({"cls", DataType::Float, {batch, Dd}, "cls token of the latent after the encoder's norm"});
    m.outputs.push_back({"mean", DataType::Float, {batch, Dd}, "mean of the patch tokens of that latent"});
    outputs = {{"cls", "cls token of the encoder's latent after its final norm (mae embed)"},
               {"mean", "mean of the patch tokens of that latent (mae embed --global_pool)"}};
  } else {
    const ClassifierConfig& cc = sd.classifier;
    const std::string feat = cc.global_pool ? g.layer_norm(patch_mean(x, "pool"), "fc_norm")
                                            : cls_of(g.layer_norm(x, "norm"), "pool");
    g.linear(feat, "head", "logits");
    m.outputs.push_back({"logits", DataType::Float, {batch, {cc.nb_classes, ""}}, "class scores (before softmax)"});
    outputs = {{"logits", cc.global_pool ? "head(fc_norm(mean of the patch tokens))" : "head(norm(x)[:, 0])"}};
  }

  auto list = [](const std::vector<float>& v) { return nlohmann::json(v).dump(); };
  m.doc = std::string("mae ") + (classifier ? "ViT classifier" : "ViT encoder features") + " from " + sd.path;
  m.metadata = {{"mae.kind", classifier ? "classifier" : "features"},
                {"mae.input", "images float32 (batch, " + std::to_string(C) + ", " + std::to_string(S) + ", " +
                                  std::to_string(S) + "): pixels scaled to [0, 1], then (x - mean[c]) / std[c]"},
                {"mae.normalize_mean", list(sd.norm.mean)},
                {"mae.normalize_std", list(sd.norm.std)},
                {"mae.normalize_source", sd.norm_source},
                {"mae.outputs", outputs.dump()},
                {"mae.config", config_to_json(c).dump()},
                {"mae.layer_norm_eps", nlohmann::json(c.ln_eps).dump()},
                {"mae.source", sd.path}};
  if (classifier)
    m.metadata.push_back({"mae.classifier", nlohmann::json{{"nb_classes", sd.classifier.nb_classes},
                                                           {"global_pool", sd.classifier.global_pool}}.dump()});
  return m;
}

}  // namespace mae
