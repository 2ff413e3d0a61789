#include "model/vit.h"

#include <cmath>

#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "model/pos_embed.h"
#include "ops/backend.h"

namespace mae {

#ifndef MAE_MODEL_TEMPLATES_ONLY  // model_cuda.cpp includes this file for the templates only
ParamList make_vit_params(const ModelConfig& c, const ClassifierConfig& cc) {
  const int64_t D = c.embed_dim, p = c.patch_size, C = c.in_chans, L = c.num_patches();
  const int top = c.depth + 1;
  std::vector<ParamSpec> v;
  // self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)); self.pos_embed = nn.Parameter(torch.zeros(1,
  // num_patches + 1, embed_dim)): both in no_weight_decay() = {'pos_embed', 'cls_token', 'dist_token'}
  v.push_back({"cls_token", {1, 1, D}, false, 0, Init::Normal002});
  v.push_back({"pos_embed", {1, 1 + L, D}, false, 0, Init::Zero});  // set from the sin-cos table by init()
  // self.patch_embed = PatchEmbed(...): Conv2d default init, weight and bias U(±1/√fan_in)
  v.push_back({"patch_embed.proj.weight", {D, C, p, p}, true, 0, Init::ConvBias});
  v.push_back({"patch_embed.proj.bias", {D}, false, 0, Init::ConvBias});
  for (int i = 0; i < c.depth; ++i)
    add_block_params(v, "blocks." + std::to_string(i) + ".", D, c.mlp_hidden(), i + 1);
  // timm _init_weights: trunc_normal_(Linear.weight, std=.02). Normal002 here means that truncated normal (cut at
  // ±2 absolute, which a std of .02 never reaches: the same as a plain normal).
  for (auto& s : v)
    if (s.init == Init::Xavier) s.init = Init::Normal002;
  if (!cc.global_pool) {
    v.push_back({"norm.weight", {D}, false, top, Init::One});
    v.push_back({"norm.bias", {D}, false, top, Init::Zero});
  }
  v.push_back({"head.weight", {cc.nb_classes, D}, true, top, Init::Normal002});
  v.push_back({"head.bias", {cc.nb_classes}, false, top, Init::Zero});
  if (cc.global_pool) {  // models_vit: self.fc_norm = norm_layer(embed_dim); del self.norm
    v.push_back({"fc_norm.weight", {D}, false, top, Init::One});
    v.push_back({"fc_norm.bias", {D}, false, top, Init::Zero});
  }
  return make_param_list(std::move(v));
}

std::vector<double> layer_lr_scales(int depth, double layer_decay) {
  // num_layers = len(model.blocks) + 1; layer_scales = [layer_decay ** (num_layers - i) for i in range(num_layers+1)]
  const int num_layers = depth + 1;
  std::vector<double> s(size_t(num_layers) + 1);
  for (int i = 0; i <= num_layers; ++i) s[size_t(i)] = std::pow(layer_decay, num_layers - i);
  return s;
}
#endif

template <class Bk>
VitClassifier<Bk>::VitClassifier(const ModelConfig& cfg, const ClassifierConfig& cc, int batch, ModelMode mode)
    : cfg_(cfg), cc_(cc), mode_(mode), B_(batch) {
  cfg_.validate("model");
  check_batch_rows(batch, 1 + int64_t(cfg_.num_patches()));
  if (cc.nb_classes < 1 || cc.nb_classes > limits::kClasses)
    fail("--nb_classes must be in [1, ", limits::kClasses, "], got ", cc.nb_classes);
  if (!(cc.drop_path >= 0 && cc.drop_path < 1)) fail("--drop_path must be in [0, 1), got ", cc.drop_path);
  plist_ = make_vit_params(cfg_, cc_);
  L_ = cfg_.num_patches(), D_ = cfg_.embed_dim, NC_ = cc.nb_classes;
  const size_t B = B_, L = L_, D = D_, NC = NC_;
  const size_t Cpp = size_t(cfg_.in_chans) * cfg_.patch_size * cfg_.patch_size;

  const bool train = mode == ModelMode::train;
  params_ = Bk::template alloc<T>(plist_.total);
  if (train) grads_ = Bk::template alloc<T>(plist_.total);
  auto pp = [&](const std::string& n) { return params_ + plist_.find(n).offset; };
  auto gp = [&](const std::string& n) { return train ? grads_ + plist_.find(n).offset : nullptr; };
  const std::string nrm = cc.global_pool ? "fc_norm." : "norm.";
  patch_w_ = pp("patch_embed.proj.weight"), g_patch_w_ = gp("patch_embed.proj.weight");
  patch_b_ = pp("patch_embed.proj.bias"), g_patch_b_ = gp("patch_embed.proj.bias");
  cls_ = pp("cls_token"), g_cls_ = gp("cls_token");
  pos_ = pp("pos_embed"), g_pos_ = gp("pos_embed");
  norm_w_ = pp(nrm + "weight"), g_norm_w_ = gp(nrm + "weight");
  norm_b_ = pp(nrm + "bias"), g_norm_b_ = gp(nrm + "bias");
  head_w_ = pp("head.weight"), g_head_w_ = gp("head.weight");
  head_b_ = pp("head.bias"), g_head_b_ = gp("head.bias");

  blocks_.bind(plist_, "blocks.", cfg_.depth, params_, grads_, D_, cfg_.num_heads, cfg_.mlp_hidden(), cfg_.ln_eps);
  blocks_.set_drop_path_rate(cc.drop_path);

  ArenaRequests<T> req;
  req.push_back({&patches_, B * L * Cpp});
  req.push_back({&tok_, B * L * D});
  req.push_back({&x0_, B * (1 + L) * D});
  blocks_.plan(req, B_, 1 + L_, mode);
  req.push_back({&pooled_, B * D});
  req.push_back({&feat_, B * D});
  req.push_back({&feat_mean_, B});
  req.push_back({&feat_rstd_, B});
  req.push_back({&logits_, B * NC});
  req.push_back({&probs_, B * NC});
  const auto need = blocks_.scratch_size();
  scratch_.plan(req, need);
  if (train) {
    req.push_back({&d_logits_, B * NC});
    req.push_back({&d_feat_, B * D});
    req.push_back({&d_pooled_, B * D});
    req.push_back({&d_res_, need.nd});
    req.push_back({&d_tok_, B * L * D});
  }
  arena_ = allocate_arena<Bk>(req, &act_total_);
  blocks_.use_scratch(&scratch_);
}

template <class Bk> VitClassifier<Bk>::~VitClassifier() {
  Bk::release(params_);
  Bk::release(grads_);
  Bk::release(arena_);
}

template <class Bk> void VitClassifier<Bk>::init(uint64_t key) {
  Rng rng(key);
  std::vector<T> host(plist_.total, T(0));
  const double fan_in = double(cfg_.in_chans) * cfg_.patch_size * cfg_.patch_size;
  for (const auto& s : plist_.specs) {
    T* p = host.data() + s.offset;
    switch (s.init) {
      case Init::Normal002:  // trunc_normal_(std=.02)
        for (size_t i = 0; i < s.numel; ++i) {
          double v;
          do v = 0.02 * rng.normal();
          while (v < -2 || v > 2);
          p[i] = T(v);
        }
        break;
      case Init::ConvBias: {
        const double a = 1.0 / std::sqrt(fan_in);
        for (size_t i = 0; i < s.numel; ++i) p[i] = T(rng.uniform(-a, a));
        break;
      }
      case Init::Xavier: {
        const double fo = double(s.shape[0]), fi = double(s.numel) / fo, a = std::sqrt(6.0 / (fi + fo));
        for (size_t i = 0; i < s.numel; ++i) p[i] = T(rng.uniform(-a, a));
        break;
      }
      case Init::One:
        for (size_t i = 0; i < s.numel; ++i) p[i] = T(1);
        break;
      case Init::Zero:
        break;
    }
  }
  const auto pe = sincos_pos_embed_2d(D_, cfg_.grid(), cfg_.grid(), true);
  T* pos = host.data() + plist_.find("pos_embed").offset;
  for (size_t i = 0; i < pe.size(); ++i) pos[i] = T(pe[i]);
  Bk::upload(params_, host.data(), host.size());
}

template <class Bk> void VitClassifier<Bk>::init_head(uint64_t key, double std) {
  Rng rng(key);
  std::vector<T> w(size_t(NC_) * D_);
  for (auto& x : w) {  // trunc_normal_(std, a=-2, b=2): the cut is absolute, so at std 2e-5 never reached
    double v;
    do v = std * rng.normal();
    while (v < -2 || v > 2);
    x = T(v);
  }
  Bk::upload(head_w_, w.data(), w.size());
}

template <class Bk> void VitClassifier<Bk>::zero_grad() {
  MAE_CHECK(grads_ != nullptr, "VitClassifier::zero_grad on an inference model");
  Bk::zero(grads_, plist_.total);
}

template <class Bk> const typename Bk::T* VitClassifier<Bk>::forward(const T* imgs, int B) {
  MAE_CHECK(B >= 1 && B <= B_, "VitClassifier::forward batch ", B, " (capacity ", B_, ")");
  const ModelConfig& c = cfg_;
  const int p = c.patch_size, C = c.in_chans, Cpp = C * p * p;
  // x = self.patch_embed(x): Conv2d(k=p, stride=p) ≡ Linear on (c, i, j)-ordered patches
  Bk::im2patch_cij(patches_, imgs, B, C, c.img_size, c.img_size, p);          // (B, L, C·p·p)
  Bk::linear_forward(tok_, patches_, patch_w_, patch_b_, B * L_, Cpp, D_);    // (B, L, D)
  // x = torch.cat((cls_tokens, x), dim=1); x = x + self.pos_embed   (pos_drop: p = 0)
  Bk::vit_embed_forward(x0_, tok_, cls_, pos_, B, L_, D_);                    // (B, 1+L, D)
  // for blk in self.blocks: x = blk(x)
  last_ = blocks_.forward(x0_, B);
  // global_pool: x = x[:, 1:, :].mean(dim=1); outcome = self.fc_norm(x)
  // else:        x = self.norm(x); outcome = x[:, 0]   (LayerNorm is per token: norm of the cls row alone)
  Bk::token_pool_forward(pooled_, last_, B, 1 + L_, D_, cc_.global_pool);   // (B, D)
  Bk::layernorm_forward(feat_, feat_mean_, feat_rstd_, pooled_, norm_w_, norm_b_, B, D_, T(c.ln_eps));
  // x = self.head(x)
  Bk::linear_forward(logits_, feat_, head_w_, head_b_, B, D_, NC_);          // (B, nb_classes)
  return logits_;
}

template <class Bk> typename Bk::T VitClassifier<Bk>::loss(const T* targets, int B) {
  // SoftTargetCrossEntropy: torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1).mean()
  targets_ = targets;
  return Bk::softmax_xent_forward(probs_, logits_, targets, B, NC_);
}

template <class Bk> void VitClassifier<Bk>::backward(T dloss, int B) {
  MAE_CHECK(mode_ == ModelMode::train, "VitClassifier::backward on an inference model");
  Bk::zero(d_logits_, size_t(B) * NC_);
  // ∂loss/∂logits = dloss · (softmax − targets) / B with the targets loss() was given (still alive)
  Bk::softmax_xent_backward(d_logits_, dloss, probs_, targets_, B, NC_);
  backward_from_dlogits(B);
}

template <class Bk> void VitClassifier<Bk>::backward_logits(const T* dlogits, int B) {
  MAE_CHECK(mode_ == ModelMode::train, "VitClassifier::backward_logits on an inference model");
  Bk::zero(d_logits_, size_t(B) * NC_);
  Bk::add_backward(d_logits_, nullptr, dlogits, size_t(B) * NC_);  // d_logits_ += dlogits
  backward_from_dlogits(B);
}

template <class Bk> void VitClassifier<Bk>::backward_from_dlogits(int B) {
  const int p = cfg_.patch_size, Cpp = cfg_.in_chans * p * p;
  // head
  Bk::zero(d_feat_, size_t(B) * D_);
  Bk::linear_backward(d_feat_, g_head_w_, g_head_b_, d_logits_, feat_, head_w_, B, D_, NC_);
  // fc_norm / norm
  Bk::zero(d_pooled_, size_t(B) * D_);
  Bk::layernorm_backward(d_pooled_, g_norm_w_, g_norm_b_, d_feat_, pooled_, norm_w_, feat_mean_, feat_rstd_, B, D_);
  // pooling
  Bk::zero(d_res_, size_t(B) * (1 + L_) * D_);
  Bk::token_pool_backward(d_res_, d_pooled_, B, 1 + L_, D_, cc_.global_pool);
  // blocks
  blocks_.backward(x0_, d_res_, B);
  // cls token, pos_embed (learned), patch tokens
  Bk::zero(d_tok_, size_t(B) * L_ * D_);
  Bk::vit_embed_backward(d_tok_, g_cls_, g_pos_, d_res_, B, L_, D_);
  // patch embedding (images need no gradient)
  Bk::linear_backward(nullptr, g_patch_w_, g_patch_b_, d_tok_, patches_, patch_w_, B * L_, Cpp, D_);
}

template <class Bk> double VitClassifier<Bk>::forward_flops(int B) const {
  const double Cpp = double(cfg_.in_chans) * cfg_.patch_size * cfg_.patch_size;
  return 2.0 * B * L_ * Cpp * D_ + blocks_.forward_flops(B) + 2.0 * B * D_ * NC_;
}

#ifndef MAE_MODEL_TEMPLATES_ONLY  // set by model/model_cuda.cpp, which instantiates the CUDA model
template class VitClassifier<CpuBackend<float>>;
template class VitClassifier<CpuBackend<double>>;
template class VitClassifier<RefBackend<float>>;
template class VitClassifier<RefBackend<double>>;
#endif

}  // namespace mae
