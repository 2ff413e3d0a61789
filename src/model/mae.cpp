#include "model/mae.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "model/masking.h"
#include "model/pos_embed.h"
#include "ops/backend.h"
#include "ops/staged.h"

namespace mae {

template <class Bk>
MaeModel<Bk>::MaeModel(const ModelConfig& cfg, int batch, double mask_ratio, ModelMode mode, T* shared_params)
    : cfg_(cfg), mode_(mode), plist_(make_mae_params(cfg)), B_(batch), mask_ratio_(mask_ratio) {
  MAE_CHECK(!shared_params || (mode == ModelMode::inference && kHostBk<Bk>),
            "shared weights are for inference on the host");
  cfg_.validate("model");
  if (!(mask_ratio >= 0.0 && mask_ratio < 1.0)) fail("mask_ratio must be in [0, 1), got ", mask_ratio);
  L_ = cfg.num_patches();
  check_batch_rows(batch, 1 + L_);  // the decoder's sequences: the longest
  K_ = cfg.len_keep(mask_ratio);
  P_ = cfg.patch_dim();
  if (K_ < 1) fail("mask_ratio ", mask_ratio, " keeps no patch of ", L_, " (len_keep = int(L·(1−ratio)) = 0)");
  const int D = cfg.embed_dim, E = cfg.decoder_embed_dim, C = cfg.in_chans;
  const size_t B = B_, L = L_, K = K_, P = P_;

  own_params_ = !shared_params;
  params_ = own_params_ ? Bk::template alloc<T>(plist_.total) : shared_params;
  const bool train = mode == ModelMode::train;
  if (train) grads_ = Bk::template alloc<T>(plist_.total);
  auto pp = [&](const char* n) { return params_ + plist_.find(n).offset; };
  auto gp = [&](const char* n) { return train ? grads_ + plist_.find(n).offset : nullptr; };
  patch_w_ = pp("patch_embed.proj.weight"), g_patch_w_ = gp("patch_embed.proj.weight");
  patch_b_ = pp("patch_embed.proj.bias"), g_patch_b_ = gp("patch_embed.proj.bias");
  cls_ = pp("cls_token"), g_cls_ = gp("cls_token");
  norm_w_ = pp("norm.weight"), g_norm_w_ = gp("norm.weight");
  norm_b_ = pp("norm.bias"), g_norm_b_ = gp("norm.bias");
  dembed_w_ = pp("decoder_embed.weight"), g_dembed_w_ = gp("decoder_embed.weight");
  dembed_b_ = pp("decoder_embed.bias"), g_dembed_b_ = gp("decoder_embed.bias");
  mask_tok_ = pp("mask_token"), g_mask_tok_ = gp("mask_token");
  dnorm_w_ = pp("decoder_norm.weight"), g_dnorm_w_ = gp("decoder_norm.weight");
  dnorm_b_ = pp("decoder_norm.bias"), g_dnorm_b_ = gp("decoder_norm.bias");
  pred_w_ = pp("decoder_pred.weight"), g_pred_w_ = gp("decoder_pred.weight");
  pred_b_ = pp("decoder_pred.bias"), g_pred_b_ = gp("decoder_pred.bias");

  enc_.bind(plist_, "blocks.", cfg.depth, params_, grads_, D, cfg.num_heads, cfg.mlp_hidden(), cfg.ln_eps);
  dec_.bind(plist_, "decoder_blocks.", cfg.decoder_depth, params_, grads_, E, cfg.decoder_num_heads,
            cfg.decoder_mlp_hidden(), cfg.ln_eps);

  // One arena for every activation and backward scratch buffer: sizes first, then pointers.
  ArenaRequests<T> req;
  req.push_back({&pos_, (1 + L) * D});
  req.push_back({&dpos_, (1 + L) * E});
  req.push_back({&patches_, B * L * C * cfg.patch_size * cfg.patch_size});
  req.push_back({&tok_, B * L * D});
  req.push_back({&x0_, B * (1 + K) * D});
  enc_.plan(req, B_, 1 + K_, mode);
  req.push_back({&enc_out_, B * (1 + K) * D});
  req.push_back({&enc_mean_, B * (1 + K)});
  req.push_back({&enc_rstd_, B * (1 + K)});
  req.push_back({&y_, B * (1 + K) * E});
  req.push_back({&z0_, B * (1 + L) * E});
  dec_.plan(req, B_, 1 + L_, mode);
  req.push_back({&dn_, B * (1 + L) * E});
  req.push_back({&dn_mean_, B * (1 + L)});
  req.push_back({&dn_rstd_, B * (1 + L)});
  req.push_back({&pred_, B * (1 + L) * P});
  req.push_back({&target_, B * L * P});
  req.push_back({&mask_, B * L});
  // block scratch (forward too) and backward buffers, shared by both streams (max of the two)
  const size_t nE = B * (1 + K), nD = B * (1 + L);
  auto need = enc_.scratch_size();
  need.merge(dec_.scratch_size());
  scratch_.plan(req, need);
  if (train) {
    req.push_back({&d_res_, need.nd});
    req.push_back({&d_pred_, nD * P});
    req.push_back({&d_dn_, nD * E});
    req.push_back({&d_y_, nE * E});
    req.push_back({&d_enc_, nE * D});
    req.push_back({&d_tok_, B * L * D});
  }
  arena_ = allocate_arena<Bk>(req, &act_total_);
  enc_.use_scratch(&scratch_);
  dec_.use_scratch(&scratch_);
  ids_shuffle_ = new int[B * L];
  ids_restore_ = new int[B * L];
  ids_shuffle_op_ = Bk::template alloc<int>(B * L);
  ids_restore_op_ = Bk::template alloc<int>(B * L);
  host_mask_.resize(B * L);

  // Fixed sin-cos tables (not trained): pos_embed[0] and decoder_pos_embed[0] are the zero cls rows.
  const auto pe = sincos_pos_embed_2d(D, cfg.grid(), cfg.grid(), true);
  const auto dpe = sincos_pos_embed_2d(E, cfg.grid(), cfg.grid(), true);
  const std::vector<T> pe_t(pe.begin(), pe.end()), dpe_t(dpe.begin(), dpe.end());
  Bk::upload(pos_, pe_t.data(), pe_t.size());
  Bk::upload(dpos_, dpe_t.data(), dpe_t.size());
}

template <class Bk> MaeModel<Bk>::~MaeModel() {
  if (own_params_) Bk::release(params_);
  Bk::release(grads_);
  Bk::release(arena_);
  delete[] ids_shuffle_;
  delete[] ids_restore_;
  Bk::release(ids_shuffle_op_);
  Bk::release(ids_restore_op_);
}

template <class T> void init_mae_weights(const ModelConfig& cfg, const ParamList& plist, uint64_t seed, T* out) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * double(rng() >> 11) * 0x1.0p-53; };
  auto normal = [&]() {  // Box–Muller
    double u1 = 0;
    while (u1 <= 0) u1 = double(rng() >> 11) * 0x1.0p-53;
    const double u2 = double(rng() >> 11) * 0x1.0p-53;
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  };
  const double patch_fan_in = double(cfg.in_chans) * cfg.patch_size * cfg.patch_size;
  for (const auto& s : plist.specs) {
    T* p = out + s.offset;
    switch (s.init) {
      case Init::Xavier: {  // xavier_uniform_ on (fan_out, fan_in) = (shape[0], numel / shape[0])
        const double fan_out = double(s.shape[0]), fan_in = double(s.numel) / fan_out;
        const double a = std::sqrt(6.0 / (fan_in + fan_out));
        for (size_t i = 0; i < s.numel; ++i) p[i] = T(uniform(-a, a));
        break;
      }
      case Init::ConvBias: {  // nn.Conv2d default bias init: U(±1/√fan_in)
        const double a = 1.0 / std::sqrt(patch_fan_in);
        for (size_t i = 0; i < s.numel; ++i) p[i] = T(uniform(-a, a));
        break;
      }
      case Init::Normal002:  // torch.nn.init.normal_(std=.02)
        for (size_t i = 0; i < s.numel; ++i) p[i] = T(0.02 * normal());
        break;
      case Init::One:
        std::fill(p, p + s.numel, T(1));
        break;
      case Init::Zero:
        std::fill(p, p + s.numel, T(0));
        break;
    }
  }
}

template <class Bk> void MaeModel<Bk>::init(uint64_t seed) {
  MAE_CHECK(own_params_, "MaeModel::init on a model whose weights are shared");
  std::vector<T> staging(plist_.total);  // initialised on the host, uploaded once (a copy on the CPU)
  init_mae_weights(cfg_, plist_, seed, staging.data());
  Bk::upload(params_, staging.data(), staging.size());
}

template <class Bk> void MaeModel<Bk>::zero_grad() {
  MAE_CHECK(grads_ != nullptr, "MaeModel::zero_grad on an inference model");
  Bk::zero(grads_, plist_.total);
}

// x, mask, ids_restore = self.random_masking(x, mask_ratio)   (noise given; it depends on nothing else, so it runs
// first and a CUDA graph of the rest sees fixed device buffers). argsort on the host, then the ids and the mask go
// to the backend's memory (a copy of B·L numbers on the CPU).
template <class Bk> void MaeModel<Bk>::set_mask(const float* noise) {
  random_masking(ids_shuffle_, ids_restore_, host_mask_.data(), noise, B_, L_, K_);
  Bk::upload(ids_shuffle_op_, ids_shuffle_, size_t(B_) * L_);
  Bk::upload(ids_restore_op_, ids_restore_, size_t(B_) * L_);
  Bk::upload(mask_, host_mask_.data(), host_mask_.size());
}

template <class Bk> const typename Bk::T* MaeModel<Bk>::forward_encoder(const T* imgs, const float* noise) {
  set_mask(noise);
  return encode(imgs);
}

template <class Bk> const typename Bk::T* MaeModel<Bk>::encode(const T* imgs) {
  const ModelConfig& c = cfg_;
  const int D = c.embed_dim, p = c.patch_size, C = c.in_chans, Cpp = C * p * p;
  // x = self.patch_embed(imgs): Conv2d(k=p, stride=p) ≡ Linear on (c, i, j)-ordered patches
  Bk::im2patch_cij(patches_, imgs, B_, C, c.img_size, c.img_size, p);  // (B, L, C·p·p)
  Bk::linear_forward(tok_, patches_, patch_w_, patch_b_, B_ * L_, Cpp, D);  // (B, L, D)
  // x = x + self.pos_embed[:, 1:, :]; keep visible; cls_token + pos_embed[:, :1, :] prepended
  Bk::encoder_embed_forward(x0_, tok_, cls_, pos_, ids_shuffle_op_, B_, L_, K_, D);  // (B, 1+K, D)
  // for blk in self.blocks: x = blk(x)
  enc_last_ = enc_.forward(x0_, B_);
  // x = self.norm(x)
  Bk::layernorm_forward(enc_out_, enc_mean_, enc_rstd_, enc_last_, norm_w_, norm_b_, B_ * (1 + K_), D, T(c.ln_eps));
  return enc_out_;
}

template <class Bk> typename Bk::T MaeModel<Bk>::forward(const T* imgs, const float* noise) {
  forward_nowait(imgs, noise);
  return loss_wait();
}

template <class Bk> typename Bk::T MaeModel<Bk>::loss_wait() {
  if (loss_pending_) loss_ = Bk::masked_mse_read();
  loss_pending_ = false;
  return loss_;
}

template <class Bk> void MaeModel<Bk>::forward_nowait(const T* imgs, const float* noise) {
  set_mask(noise);
  forward_masked(imgs);
}

template <class Bk> void MaeModel<Bk>::forward_masked(const T* imgs) {
  const ModelConfig& c = cfg_;
  const int D = c.embed_dim, E = c.decoder_embed_dim, p = c.patch_size, C = c.in_chans;
  encode(imgs);
  // x = self.decoder_embed(x)
  Bk::linear_forward(y_, enc_out_, dembed_w_, dembed_b_, B_ * (1 + K_), D, E);  // (B, 1+K, E)
  // append mask tokens, unshuffle with ids_restore, keep cls first; x = x + self.decoder_pos_embed
  Bk::decoder_embed_forward(z0_, y_, mask_tok_, dpos_, ids_restore_op_, B_, L_, K_, E);  // (B, 1+L, E)
  dec_last_ = dec_.forward(z0_, B_);
  // x = self.decoder_norm(x); x = self.decoder_pred(x)  (the cls row is dropped by the loss)
  Bk::layernorm_forward(dn_, dn_mean_, dn_rstd_, dec_last_, dnorm_w_, dnorm_b_, B_ * (1 + L_), E, T(c.ln_eps));
  Bk::linear_forward(pred_, dn_, pred_w_, pred_b_, B_ * (1 + L_), E, P_);  // (B, 1+L, P)
  // target = self.patchify(imgs); if norm_pix_loss: (target - mean) / (var + 1.e-6)**.5
  Bk::patchify_ijc(target_, imgs, B_, C, c.img_size, c.img_size, p);  // (B, L, P)
  if (c.norm_pix_loss) Bk::normalize_target(target_, target_, B_ * L_, P_);
  // loss = ((pred - target) ** 2).mean(dim=-1); loss = (loss * mask).sum() / mask.sum()
  Bk::masked_mse_enqueue(pred_, target_, mask_, B_, L_, P_);  // read by loss_wait
  loss_pending_ = true;
}

template <class Bk> void MaeModel<Bk>::backward(T dloss) {
  MAE_CHECK(mode_ == ModelMode::train, "MaeModel::backward on an inference model");
  const ModelConfig& c = cfg_;
  const int D = c.embed_dim, E = c.decoder_embed_dim, p = c.patch_size, C = c.in_chans, Cpp = C * p * p;
  const int nE = B_ * (1 + K_), nD = B_ * (1 + L_);
  // loss → pred
  Bk::zero(d_pred_, size_t(nD) * P_);
  Bk::masked_mse_backward(d_pred_, dloss, pred_, target_, mask_, B_, L_, P_);
  // decoder_pred, decoder_norm
  Bk::zero(d_dn_, size_t(nD) * E);
  Bk::linear_backward(d_dn_, g_pred_w_, g_pred_b_, d_pred_, dn_, pred_w_, nD, E, P_);
  Bk::zero(d_res_, size_t(nD) * E);
  Bk::layernorm_backward(d_res_, g_dnorm_w_, g_dnorm_b_, d_dn_, dec_last_, dnorm_w_, dn_mean_, dn_rstd_, nD, E);
  // decoder blocks
  dec_.backward(z0_, d_res_, B_);
  // unshuffle / mask tokens (decoder_pos_embed is fixed: no gradient)
  Bk::zero(d_y_, size_t(nE) * E);
  Bk::decoder_embed_backward(d_y_, g_mask_tok_, d_res_, ids_restore_op_, B_, L_, K_, E);
  // decoder_embed
  Bk::zero(d_enc_, size_t(nE) * D);
  Bk::linear_backward(d_enc_, g_dembed_w_, g_dembed_b_, d_y_, enc_out_, dembed_w_, nE, D, E);
  // encoder norm
  Bk::zero(d_res_, size_t(nE) * D);
  Bk::layernorm_backward(d_res_, g_norm_w_, g_norm_b_, d_enc_, enc_last_, norm_w_, enc_mean_, enc_rstd_, nE, D);
  enc_.backward(x0_, d_res_, B_);
  // cls token, gather of visible tokens
  Bk::zero(d_tok_, size_t(B_) * L_ * D);
  Bk::encoder_embed_backward(d_tok_, g_cls_, d_res_, ids_shuffle_op_, B_, L_, K_, D);
  // patch embedding (images need no gradient)
  Bk::linear_backward(nullptr, g_patch_w_, g_patch_b_, d_tok_, patches_, patch_w_, B_ * L_, Cpp, D);
}

#ifndef MAE_MODEL_TEMPLATES_ONLY  // defined once, in mae.cpp's own object
double encoder_flops(const ModelConfig& c, int batch, int kept) {
  const double B = batch, L = c.num_patches(), K = kept, D = c.embed_dim;
  const double Cpp = double(c.in_chans) * c.patch_size * c.patch_size;
  return 2 * B * L * Cpp * D + blocks_flops(B, 1 + K, D, c.mlp_hidden(), c.depth);  // patch embed, blocks
}
#endif

template <class Bk> double MaeModel<Bk>::forward_flops() const {
  const double B = B_, L = L_, P = P_, D = cfg_.embed_dim, E = cfg_.decoder_embed_dim;
  double f = encoder_flops(cfg_, B_, K_);
  f += 2 * B * (1 + K_) * D * E;  // decoder_embed
  f += blocks_flops(B, 1 + L, E, cfg_.decoder_mlp_hidden(), cfg_.decoder_depth);
  f += 2 * B * (1 + L) * E * P;  // decoder_pred
  return f;
}

#ifndef MAE_MODEL_TEMPLATES_ONLY  // set by model/model_cuda.cpp, which instantiates the CUDA model
template void init_mae_weights<float>(const ModelConfig&, const ParamList&, uint64_t, float*);
template void init_mae_weights<double>(const ModelConfig&, const ParamList&, uint64_t, double*);
template class MaeModel<CpuBackend<float>>;
template class MaeModel<CpuBackend<double>>;
template class MaeModel<RefBackend<float>>;
template class MaeModel<RefBackend<double>>;
#endif

}  // namespace mae
