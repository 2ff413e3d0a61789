// CUDA backend against the CPU backend (float): every op of op_decls.inc on odd shapes, forward and backward
// (gradient outputs start non-zero, so the += rule is checked too), the bf16 GEMM path, the one-kernel AdamW, and
// the whole model on CudaBackend against the committed PyTorch fixtures (as test_parity does on the CPU).
// Tolerances: fp32 ‖cuda − cpu‖ / ‖cpu‖ ≤ 1e-5; bf16 GEMMs ≤ 1e-2.
// Without a device (or a driver) every test is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>

#include "gradcheck.h"
#include "io/safetensors.h"
#include "model/inference_model.h"
#include "model/mae.h"
#include "model/vit.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "ops/cuda/backend_cuda.h"
#include "train/adamw.h"
#include "train/step_graph.h"

using namespace mae;
using mae::test::rel_l2;

namespace {

using F = std::vector<float>;
constexpr double kTol = 1e-5, kTolBf16 = 1e-2;

F rnd(size_t n, unsigned seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  F v(n);
  for (auto& x : v) x = d(g);
  return v;
}
F uni(size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  F v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// A device copy of a host vector; host() reads it back.
template <class T> struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    p = CudaMemory::alloc<T>(n);
    CudaMemory::upload(p, h.data(), n);
  }
  ~Dev() { CudaMemory::release(p); }
  Dev(const Dev&) = delete;
  std::vector<T> host() const {
    std::vector<T> h(n);
    CudaMemory::download(h.data(), p, n);
    return h;
  }
  operator T*() const { return p; }
};
using DF = Dev<float>;

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cuda::set_precision(cuda::Precision::fp32);
  }
  void TearDown() override {
    if (cuda::device_count() > 0) cuda::set_precision(cuda::Precision::fp32);
    cuda::set_attention_impl(cuda::AttentionImpl::fused);
  }
};

#define EXPECT_REL(got, want, tol) EXPECT_LE(rel_l2(got, want), tol) << #got

// random permutation rows per sample (ids_shuffle) and their inverse (ids_restore)
void perms(std::vector<int>& shuf, std::vector<int>& rest, int B, int L, unsigned seed) {
  std::mt19937 g(seed);
  shuf.resize(size_t(B) * L), rest.resize(size_t(B) * L);
  for (int b = 0; b < B; ++b) {
    int* s = shuf.data() + size_t(b) * L;
    std::iota(s, s + L, 0);
    std::shuffle(s, s + L, g);
    for (int i = 0; i < L; ++i) rest[size_t(b) * L + s[i]] = i;
  }
}

TEST_F(Cuda, DeviceInfo) {
  const std::string name = cuda::device_name();
  EXPECT_FALSE(name.empty());
  std::printf("device: %s\n", name.c_str());
}

void linear_case(int N, int I, int O, bool bias, double tol) {
  const F in = rnd(size_t(N) * I, 1), W = rnd(size_t(O) * I, 2, 0.3f), b = rnd(O, 3), dout = rnd(size_t(N) * O, 4);
  F out(size_t(N) * O), din = rnd(size_t(N) * I, 5), dW = rnd(W.size(), 6), db = rnd(O, 7);
  DF d_in(in), d_W(W), d_b(b), d_dout(dout), d_out(out), d_din(din), d_dW(dW), d_db(db);
  cpu::linear_forward(out.data(), in.data(), W.data(), bias ? b.data() : nullptr, N, I, O);
  cuda::linear_forward(d_out.p, d_in.p, d_W.p, bias ? d_b.p : nullptr, N, I, O);
  cpu::linear_backward(din.data(), dW.data(), bias ? db.data() : nullptr, dout.data(), in.data(), W.data(), N, I, O);
  cuda::linear_backward(d_din.p, d_dW.p, bias ? d_db.p : nullptr, d_dout.p, d_in.p, d_W.p, N, I, O);
  EXPECT_REL(d_out.host(), out, tol);
  EXPECT_REL(d_din.host(), din, tol);
  EXPECT_REL(d_dW.host(), dW, tol);
  EXPECT_REL(d_db.host(), db, tol);
}

TEST_F(Cuda, Linear) {
  linear_case(37, 29, 23, true, kTol);
  linear_case(5, 3, 1, false, kTol);
  linear_case(301, 97, 131, true, kTol);
}

TEST_F(Cuda, LinearBf16) {
  cuda::set_precision(cuda::Precision::bf16);
  linear_case(37, 29, 23, true, kTolBf16);
  linear_case(301, 96, 384, true, kTolBf16);  // aligned shapes: the cuBLASLt path
}

TEST_F(Cuda, LayerNorm) {
  const int N = 33, C = 77;
  F in = rnd(size_t(N) * C, 1, 2.f);
  for (auto& x : in) x += 3.f;  // a non-zero mean
  const F w = rnd(C, 2), b = rnd(C, 3), dout = rnd(in.size(), 4);
  F out(in.size()), mean(N), rstd(N), din = rnd(in.size(), 5), dw = rnd(C, 6), db = rnd(C, 7);
  DF d_in(in), d_w(w), d_b(b), d_dout(dout), d_out(out), d_mean(mean), d_rstd(rstd), d_din(din), d_dw(dw), d_db(db);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), N, C, 1e-6f);
  cuda::layernorm_forward(d_out.p, d_mean.p, d_rstd.p, d_in.p, d_w.p, d_b.p, N, C, 1e-6f);
  EXPECT_REL(d_out.host(), out, kTol);
  EXPECT_REL(d_mean.host(), mean, kTol);
  EXPECT_REL(d_rstd.host(), rstd, kTol);
  cpu::layernorm_backward(din.data(), dw.data(), db.data(), dout.data(), in.data(), w.data(), mean.data(), rstd.data(),
                          N, C);
  cuda::layernorm_backward(d_din.p, d_dw.p, d_db.p, d_dout.p, d_in.p, d_w.p, d_mean.p, d_rstd.p, N, C);
  EXPECT_REL(d_din.host(), din, kTol);
  EXPECT_REL(d_dw.host(), dw, kTol);
  EXPECT_REL(d_db.host(), db, kTol);
}

TEST_F(Cuda, GeluAddResidual) {
  const size_t n = 1001;
  const F x = rnd(n, 1, 2.f), y = rnd(n, 2), dout = rnd(n, 3);
  F out(n), din = rnd(n, 4), da = rnd(n, 5), db = rnd(n, 6);
  DF d_x(x), d_y(y), d_dout(dout), d_out(out), d_din(din), d_da(da), d_db(db);
  cpu::gelu_forward(out.data(), x.data(), n);
  cuda::gelu_forward(d_out.p, d_x.p, n);
  EXPECT_REL(d_out.host(), out, kTol);
  cpu::gelu_backward(din.data(), dout.data(), x.data(), n);
  cuda::gelu_backward(d_din.p, d_dout.p, d_x.p, n);
  EXPECT_REL(d_din.host(), din, kTol);
  cpu::add_forward(out.data(), x.data(), y.data(), n);
  cuda::add_forward(d_out.p, d_x.p, d_y.p, n);
  EXPECT_REL(d_out.host(), out, kTol);
  cpu::add_backward(da.data(), db.data(), dout.data(), n);
  cuda::add_backward(d_da.p, d_db.p, d_dout.p, n);
  EXPECT_REL(d_da.host(), da, kTol);
  EXPECT_REL(d_db.host(), db, kTol);
  // residual with per-sample scale (one dropped sample)
  const int B = 7;
  const size_t per = n / B;
  const F scale = {0.f, 1.25f, 1.25f, 0.f, 1.25f, 1.f, 2.f};
  DF d_scale(scale);
  cpu::residual_scale_forward(out.data(), x.data(), y.data(), scale.data(), B, per);
  cuda::residual_scale_forward(d_out.p, d_x.p, d_y.p, d_scale.p, B, per);
  EXPECT_REL(F(d_out.host().begin(), d_out.host().begin() + B * per), F(out.begin(), out.begin() + B * per), kTol);
  cpu::residual_scale_backward(da.data(), db.data(), dout.data(), scale.data(), B, per);
  cuda::residual_scale_backward(d_da.p, d_db.p, d_dout.p, d_scale.p, B, per);
  EXPECT_REL(d_da.host(), da, kTol);
  EXPECT_REL(d_db.host(), db, kTol);
}

// The fused forward ops against the CPU's (which equal the unfused sequences bit for bit: test_ops_fused.cpp).
void residual_layernorm_case(int B, int Tn, int C, bool with_scale, bool alias) {
  const size_t n = size_t(B) * Tn * C, rows = size_t(B) * Tn;
  const F x = rnd(n, 1, 1.5f), br = rnd(n, 2), w = rnd(C, 3), b = rnd(C, 4);
  F scale;
  for (int i = 0; i < B; ++i) scale.push_back(i % 3 == 1 ? 0.f : 1.25f);
  F sum(n), out(n), mean(rows), rstd(rows), brc = br;
  DF d_x(x), d_br(br), d_w(w), d_b(b), d_scale(scale), d_sum(sum), d_out(out), d_mean(mean), d_rstd(rstd);
  const float* sc = with_scale ? scale.data() : nullptr;
  cpu::residual_layernorm_forward(alias ? brc.data() : sum.data(), out.data(), mean.data(), rstd.data(), x.data(),
                                  brc.data(), sc, w.data(), b.data(), B, Tn, C, 1e-6f);
  cuda::residual_layernorm_forward(alias ? d_br.p : d_sum.p, d_out.p, d_mean.p, d_rstd.p, d_x.p, d_br.p,
                                   with_scale ? d_scale.p : nullptr, d_w.p, d_b.p, B, Tn, C, 1e-6f);
  EXPECT_REL(alias ? d_br.host() : d_sum.host(), alias ? brc : sum, kTol) << " B " << B << " C " << C;
  EXPECT_REL(d_out.host(), out, kTol);
  EXPECT_REL(d_mean.host(), mean, kTol);
  EXPECT_REL(d_rstd.host(), rstd, kTol);
}

TEST_F(Cuda, ResidualLayerNorm) {
  residual_layernorm_case(3, 7, 77, false, false);
  residual_layernorm_case(5, 13, 129, true, false);
  residual_layernorm_case(4, 50, 768, false, true);  // the block's call: sum aliases the branch
  residual_layernorm_case(4, 50, 768, true, true);
}

void linear_gelu_case(int N, int I, int O, bool bias, double tol) {
  const F in = rnd(size_t(N) * I, 1), W = rnd(size_t(O) * I, 2, 0.3f), b = rnd(O, 3);
  F pre(size_t(N) * O), act(pre.size());
  DF d_in(in), d_W(W), d_b(b), d_pre(pre), d_act(act);
  cpu::linear_gelu_forward(pre.data(), act.data(), in.data(), W.data(), bias ? b.data() : nullptr, N, I, O);
  cuda::linear_gelu_forward(d_pre.p, d_act.p, d_in.p, d_W.p, bias ? d_b.p : nullptr, N, I, O);
  EXPECT_REL(d_pre.host(), pre, tol) << " N " << N << " I " << I << " O " << O;
  EXPECT_REL(d_act.host(), act, tol);
}

TEST_F(Cuda, LinearGelu) {
  linear_gelu_case(37, 29, 23, true, kTol);
  linear_gelu_case(5, 3, 1, false, kTol);
  cuda::set_precision(cuda::Precision::bf16);
  linear_gelu_case(37, 29, 23, true, kTolBf16);
  linear_gelu_case(301, 96, 384, true, kTolBf16);
}

void attention_case(int B, int Tn, int D, int H, double tol = kTol) {
  const F qkv = rnd(size_t(B) * Tn * 3 * D, 1), dout = rnd(size_t(B) * Tn * D, 2);
  F out(size_t(B) * Tn * D), att(size_t(B) * H * Tn * Tn), scratch(att.size()), dqkv = rnd(qkv.size(), 3);
  DF d_qkv(qkv), d_dout(dout), d_out(out), d_att(att), d_scr(scratch), d_dqkv(dqkv);
  cpu::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
  cuda::attention_forward(d_out.p, d_att.p, d_qkv.p, B, Tn, D, H);
  EXPECT_REL(d_out.host(), out, tol) << " B " << B << " Tn " << Tn;
  EXPECT_REL(d_att.host(), att, tol);
  cpu::attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B, Tn, D, H);
  cuda::attention_backward(d_dqkv.p, d_scr.p, d_dout.p, d_qkv.p, d_att.p, B, Tn, D, H);
  EXPECT_REL(d_dqkv.host(), dqkv, tol);
}

// Both implementations: the fused one-kernel-per-(b, h) path (≤ 256 tokens, head dim ≤ 128) and cuBLAS batched
// GEMMs + softmax (the fallback for longer sequences, and MAE_CUDA_ATTENTION=cublas).
TEST_F(Cuda, Attention) {
  for (auto impl : {cuda::AttentionImpl::fused, cuda::AttentionImpl::cublas}) {
    SCOPED_TRACE(impl == cuda::AttentionImpl::fused ? "fused" : "cublas");
    cuda::set_attention_impl(impl);
    attention_case(3, 13, 24, 3);
    attention_case(2, 33, 40, 5);    // head dim 8, Tn just past one warp of keys
    attention_case(2, 50, 96, 4);    // 50 tokens: ViT-B/16 encoder at mask 0.75 (+cls)
    attention_case(1, 197, 128, 2);  // 197 tokens: decoder / unmasked; head dim 64
    attention_case(1, 65, 260, 2);   // head dim 130: beyond the fused kernel (fallback)
    attention_case(1, 257, 32, 1);   // 257 tokens: beyond the fused kernel (fallback)
  }
}

// The cuBLAS path under --precision bf16: strided-batched bf16 GEMMs on tensor cores, fp32 softmax and outputs.
TEST_F(Cuda, AttentionCublasBf16) {
  cuda::set_precision(cuda::Precision::bf16);
  cuda::set_attention_impl(cuda::AttentionImpl::cublas);
  attention_case(3, 13, 24, 3, kTolBf16);
  attention_case(2, 50, 96, 4, kTolBf16);
  attention_case(2, 197, 128, 4, kTolBf16);  // decoder-like: head dim 32
}

TEST_F(Cuda, Patches) {
  const int B = 2, C = 3, H = 12, W = 8, p = 4, L = (H / p) * (W / p), P = C * p * p;
  const F imgs = rnd(size_t(B) * C * H * W, 1), rows = rnd(size_t(B) * L * P, 2);
  F out(rows.size()), dimgs = rnd(imgs.size(), 3), back(imgs.size());
  DF d_imgs(imgs), d_rows(rows), d_out(out), d_dimgs(dimgs), d_back(back);
  cpu::im2patch_cij(out.data(), imgs.data(), B, C, H, W, p);
  cuda::im2patch_cij(d_out.p, d_imgs.p, B, C, H, W, p);
  EXPECT_EQ(d_out.host(), out);
  cpu::patchify_ijc(out.data(), imgs.data(), B, C, H, W, p);
  cuda::patchify_ijc(d_out.p, d_imgs.p, B, C, H, W, p);
  EXPECT_EQ(d_out.host(), out);
  cpu::unpatchify_ijc(back.data(), rows.data(), B, C, H, W, p);
  cuda::unpatchify_ijc(d_back.p, d_rows.p, B, C, H, W, p);
  EXPECT_EQ(d_back.host(), back);
  cpu::im2patch_cij_backward(dimgs.data(), rows.data(), B, C, H, W, p);
  cuda::im2patch_cij_backward(d_dimgs.p, d_rows.p, B, C, H, W, p);
  EXPECT_REL(d_dimgs.host(), dimgs, kTol);
}

TEST_F(Cuda, EncoderDecoderEmbed) {
  const int B = 3, L = 11, K = 4, D = 37, E = 19;
  std::vector<int> shuf, rest;
  perms(shuf, rest, B, L, 9);
  Dev<int> d_shuf(shuf), d_rest(rest);
  const F tok = rnd(size_t(B) * L * D, 1), cls = rnd(D, 2), pos = rnd(size_t(1 + L) * D, 3);
  F x(size_t(B) * (1 + K) * D), dtok = rnd(tok.size(), 4), dcls = rnd(D, 5);
  const F dx = rnd(x.size(), 6);
  DF d_tok(tok), d_cls(cls), d_pos(pos), d_x(x), d_dtok(dtok), d_dcls(dcls), d_dx(dx);
  cpu::encoder_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), shuf.data(), B, L, K, D);
  cuda::encoder_embed_forward(d_x.p, d_tok.p, d_cls.p, d_pos.p, d_shuf.p, B, L, K, D);
  EXPECT_REL(d_x.host(), x, kTol);
  cpu::encoder_embed_backward(dtok.data(), dcls.data(), dx.data(), shuf.data(), B, L, K, D);
  cuda::encoder_embed_backward(d_dtok.p, d_dcls.p, d_dx.p, d_shuf.p, B, L, K, D);
  EXPECT_REL(d_dtok.host(), dtok, kTol);
  EXPECT_REL(d_dcls.host(), dcls, kTol);

  const F y = rnd(size_t(B) * (1 + K) * E, 7), mt = rnd(E, 8), dpos = rnd(size_t(1 + L) * E, 9);
  F z(size_t(B) * (1 + L) * E), dy = rnd(y.size(), 10), dmt = rnd(E, 11);
  const F dz = rnd(z.size(), 12);
  DF d_y(y), d_mt(mt), d_dpos(dpos), d_z(z), d_dy(dy), d_dmt(dmt), d_dz(dz);
  cpu::decoder_embed_forward(z.data(), y.data(), mt.data(), dpos.data(), rest.data(), B, L, K, E);
  cuda::decoder_embed_forward(d_z.p, d_y.p, d_mt.p, d_dpos.p, d_rest.p, B, L, K, E);
  EXPECT_REL(d_z.host(), z, kTol);
  cpu::decoder_embed_backward(dy.data(), dmt.data(), dz.data(), rest.data(), B, L, K, E);
  cuda::decoder_embed_backward(d_dy.p, d_dmt.p, d_dz.p, d_rest.p, B, L, K, E);
  EXPECT_REL(d_dy.host(), dy, kTol);
  EXPECT_REL(d_dmt.host(), dmt, kTol);
}

TEST_F(Cuda, Loss) {
  const int B = 3, L = 17, P = 45;
  F target = rnd(size_t(B) * L * P, 1, 3.f);
  for (auto& t : target) t += 1.f;
  const F pred = rnd(size_t(B) * (1 + L) * P, 2);
  F mask(size_t(B) * L);
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7 % 5) < 3 ? 1.f : 0.f;
  F norm(target.size()), dpred = rnd(pred.size(), 3);
  DF d_target(target), d_pred(pred), d_mask(mask), d_norm(norm), d_dpred(dpred);
  cpu::normalize_target(norm.data(), target.data(), B * L, P);
  cuda::normalize_target(d_norm.p, d_target.p, B * L, P);
  EXPECT_REL(d_norm.host(), norm, kTol);
  cuda::normalize_target(d_target.p, d_target.p, B * L, P);  // in place
  EXPECT_REL(d_target.host(), norm, kTol);
  const float want = cpu::masked_mse_forward(pred.data(), norm.data(), mask.data(), B, L, P);
  const float got = cuda::masked_mse_forward(d_pred.p, d_norm.p, d_mask.p, B, L, P);
  EXPECT_LE(std::abs(got - want), kTol * std::abs(want)) << got << " vs " << want;
  cpu::masked_mse_backward(dpred.data(), 0.5f, pred.data(), norm.data(), mask.data(), B, L, P);
  cuda::masked_mse_backward(d_dpred.p, 0.5f, d_pred.p, d_norm.p, d_mask.p, B, L, P);
  EXPECT_REL(d_dpred.host(), dpred, kTol);
}

TEST_F(Cuda, AdamW) {
  const size_t n = 10007;
  F p = rnd(n, 1), m = rnd(n, 2, 0.1f), v = uni(n, 3, 0.f, 0.01f);
  const F g = rnd(n, 4);
  DF d_p(p), d_m(m), d_v(v), d_g(g);
  for (long t = 1; t <= 3; ++t) {
    cpu::adamw_update(p.data(), m.data(), v.data(), g.data(), n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
    cuda::adamw_update(d_p.p, d_m.p, d_v.p, d_g.p, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
  }
  EXPECT_REL(d_p.host(), p, kTol);
  EXPECT_REL(d_m.host(), m, kTol);
  EXPECT_REL(d_v.host(), v, kTol);
}

TEST_F(Cuda, AdamWFlatMatchesPerTensor) {
  ModelConfig cfg = preset("mae_vit_fmnist");
  const ParamList pl = make_mae_params(cfg);
  F p = rnd(pl.total, 1), m(pl.total, 0.f), v(pl.total, 0.f);
  const F g = rnd(pl.total, 2);
  DF d_p(p), d_m(m), d_v(v), d_g(g);
  for (long t = 1; t <= 3; ++t) {
    adamw_step<CpuBackend<float>>(pl, p.data(), m.data(), v.data(), g.data(), 1e-3f, AdamWConfig{}, t);
    adamw_step<CudaBackend<float>>(pl, d_p.p, d_m.p, d_v.p, d_g.p, 1e-3f, AdamWConfig{}, t);
  }
  EXPECT_REL(d_p.host(), p, kTol);
  EXPECT_REL(d_v.host(), v, kTol);
  double ss = 0;
  for (float x : g) ss += double(x) * x;
  EXPECT_NEAR(cuda::sum_squares(d_g.p, pl.total), ss, 1e-9 * ss);
}

TEST_F(Cuda, ClassifierOps) {
  const int N = 19, C = 13;
  const F logits = rnd(size_t(N) * C, 1, 2.f);
  F targets = uni(logits.size(), 2, 0.f, 1.f);
  for (int n = 0; n < N; ++n) {
    float s = 0;
    for (int c = 0; c < C; ++c) s += targets[n * C + c];
    for (int c = 0; c < C; ++c) targets[n * C + c] /= s;
  }
  F probs(logits.size()), dl = rnd(logits.size(), 3);
  DF d_logits(logits), d_targets(targets), d_probs(probs), d_dl(dl);
  const float want = cpu::softmax_xent_forward(probs.data(), logits.data(), targets.data(), N, C);
  const float got = cuda::softmax_xent_forward(d_probs.p, d_logits.p, d_targets.p, N, C);
  EXPECT_LE(std::abs(got - want), kTol * std::abs(want));
  EXPECT_REL(d_probs.host(), probs, kTol);
  cpu::softmax_xent_backward(dl.data(), 0.7f, probs.data(), targets.data(), N, C);
  cuda::softmax_xent_backward(d_dl.p, 0.7f, d_probs.p, d_targets.p, N, C);
  EXPECT_REL(d_dl.host(), dl, kTol);

  // BatchNorm1d: train forward (running stats), eval forward, backward
  const F in = rnd(size_t(N) * C, 4, 2.f), dout = rnd(in.size(), 5);
  F out(in.size()), mean(C), rstd(C), rm = rnd(C, 6), rv = uni(C, 7, 0.5f, 2.f), din = rnd(in.size(), 8);
  DF d_in(in), d_dout(dout), d_out(out), d_mean(mean), d_rstd(rstd), d_rm(rm), d_rv(rv), d_din(din);
  cpu::batchnorm1d_train_forward(out.data(), mean.data(), rstd.data(), rm.data(), rv.data(), in.data(), N, C, 1e-6f,
                                 0.1f);
  cuda::batchnorm1d_train_forward(d_out.p, d_mean.p, d_rstd.p, d_rm.p, d_rv.p, d_in.p, N, C, 1e-6f, 0.1f);
  EXPECT_REL(d_out.host(), out, kTol);
  EXPECT_REL(d_rm.host(), rm, kTol);
  EXPECT_REL(d_rv.host(), rv, kTol);
  cpu::batchnorm1d_backward(din.data(), dout.data(), in.data(), mean.data(), rstd.data(), N, C);
  cuda::batchnorm1d_backward(d_din.p, d_dout.p, d_in.p, d_mean.p, d_rstd.p, N, C);
  EXPECT_REL(d_din.host(), din, kTol);
  cpu::batchnorm1d_eval_forward(out.data(), in.data(), rm.data(), rv.data(), N, C, 1e-6f);
  cuda::batchnorm1d_eval_forward(d_out.p, d_in.p, d_rm.p, d_rv.p, N, C, 1e-6f);
  EXPECT_REL(d_out.host(), out, kTol);

  // ViT embedding and pooling
  const int B = 3, L = 7, D = 11;
  const F tok = rnd(size_t(B) * L * D, 9), cls = rnd(D, 10), pos = rnd(size_t(1 + L) * D, 11);
  const F dx = rnd(size_t(B) * (1 + L) * D, 12), dpool = rnd(size_t(B) * D, 13);
  F x(dx.size()), dtok = rnd(tok.size(), 14), dcls = rnd(D, 15), dpos = rnd(pos.size(), 16), pool(size_t(B) * D);
  F dxx = rnd(dx.size(), 17);
  DF d_tok(tok), d_cls(cls), d_pos(pos), d_dx(dx), d_dpool(dpool), d_x(x), d_dtok(dtok), d_dcls(dcls), d_dpos(dpos),
      d_pool(pool), d_dxx(dxx);
  cpu::vit_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), B, L, D);
  cuda::vit_embed_forward(d_x.p, d_tok.p, d_cls.p, d_pos.p, B, L, D);
  EXPECT_REL(d_x.host(), x, kTol);
  cpu::vit_embed_backward(dtok.data(), dcls.data(), dpos.data(), dx.data(), B, L, D);
  cuda::vit_embed_backward(d_dtok.p, d_dcls.p, d_dpos.p, d_dx.p, B, L, D);
  EXPECT_REL(d_dtok.host(), dtok, kTol);
  EXPECT_REL(d_dcls.host(), dcls, kTol);
  EXPECT_REL(d_dpos.host(), dpos, kTol);
  for (bool mean_pool : {true, false}) {
    cpu::token_pool_forward(pool.data(), dx.data(), B, 1 + L, D, mean_pool);
    cuda::token_pool_forward(d_pool.p, d_dx.p, B, 1 + L, D, mean_pool);
    EXPECT_REL(d_pool.host(), pool, kTol);
    cpu::token_pool_backward(dxx.data(), dpool.data(), B, 1 + L, D, mean_pool);
    cuda::token_pool_backward(d_dxx.p, d_dpool.p, B, 1 + L, D, mean_pool);
    EXPECT_REL(d_dxx.host(), dxx, kTol);
  }
}

// ---- the model on CudaBackend against the PyTorch fixtures (same tolerances as test_parity) ----
std::string fixture_dir() {
  const char* e = std::getenv("MAE_FIXTURE_DIR");
  return e && *e ? e : std::string(MAE_SOURCE_DIR) + "/tests/fixtures";
}

struct ModelRun {
  double loss;
  F pred, mask, grads;
};

template <class Bk> ModelRun run_model(const std::string& stem, bool norm_pix, double ratio) {
  io::SafeTensorsReader wf(stem + ".weights.safetensors"), in(stem + ".input.safetensors");
  ModelConfig cfg = read_config(wf);
  cfg.norm_pix_loss = norm_pix;
  std::vector<int64_t> ishape;
  const auto imgs = in.read_f32("imgs", &ishape);
  const auto noise = in.read_f32("noise");
  const int B = int(ishape[0]);
  MaeModel<Bk> m(cfg, B, ratio);
  F host(m.params().total, 0.f);
  load_params(wf, m.params(), host.data());
  Bk::upload(m.params_data(), host.data(), host.size());
  float* dimgs = Bk::template alloc<float>(imgs.size());
  Bk::upload(dimgs, imgs.data(), imgs.size());
  ModelRun r;
  r.loss = m.forward(dimgs, noise.data());
  m.zero_grad();
  m.backward();
  const int L = cfg.num_patches(), P = cfg.patch_dim();
  r.pred.resize(size_t(B) * (1 + L) * P);
  Bk::download(r.pred.data(), m.pred(), r.pred.size());
  r.mask.resize(size_t(B) * L);
  Bk::download(r.mask.data(), m.mask(), r.mask.size());
  r.grads.resize(m.params().total);
  Bk::download(r.grads.data(), m.grads_data(), r.grads.size());
  Bk::release(dimgs);
  return r;
}

TEST_F(Cuda, ModelMatchesPyTorchFixtures) {
  for (const std::string cfgname : {"cfgA", "cfgB"})
    for (int np : {0, 1})
      for (int pct : {75, 50}) {
        const std::string stem = fixture_dir() + "/" + cfgname;
        const std::string exp_path =
            stem + "_np" + std::to_string(np) + "_mr" + std::to_string(pct) + ".expected.safetensors";
        ASSERT_TRUE(std::filesystem::exists(exp_path)) << exp_path;
        SCOPED_TRACE(exp_path);
        io::SafeTensorsReader ex(exp_path), wf(stem + ".weights.safetensors");
        ModelConfig cfg = read_config(wf);
        const ModelRun r = run_model<CudaBackend<float>>(stem, np != 0, pct / 100.0);
        const double want_loss = ex.read_f32("loss")[0];
        EXPECT_LE(std::abs(r.loss - want_loss), 1e-5 * std::abs(want_loss)) << r.loss << " vs " << want_loss;
        const auto want_pred = ex.read_f32("pred");
        const int L = cfg.num_patches(), P = cfg.patch_dim(), B = int(want_pred.size() / (size_t(L) * P));
        double worst = 0;
        for (int b = 0; b < B; ++b)
          for (int i = 0; i < L * P; ++i)
            worst = std::max(worst, double(std::abs(r.pred[(size_t(b) * (1 + L) + 1) * P + i] -
                                                    want_pred[size_t(b) * L * P + i])));
        EXPECT_LE(worst, 1e-4) << "pred max abs error";
        EXPECT_EQ(r.mask, ex.read_f32("mask"));
        const ParamList pl = make_mae_params(cfg);
        for (const auto& s : pl.specs) {
          F want(s.numel);
          ex.read_f32("grad." + s.name, want.data(), s.shape);
          F got(r.grads.begin() + s.offset, r.grads.begin() + s.offset + s.numel);
          if (s.name.find("attn.qkv.bias") != std::string::npos) {  // k slice: analytically zero (test_parity)
            const size_t D = s.numel / 3;
            for (size_t i = D; i < 2 * D; ++i) got[i] = want[i] = 0.f;
          }
          EXPECT_LE(rel_l2(got, want), 1e-4) << "grad." << s.name;
        }
      }
}

// The model with the cuBLAS attention path gives the same numbers as with the fused kernel.
TEST_F(Cuda, ModelAttentionImplsAgree) {
  const std::string stem = fixture_dir() + "/cfgA";
  const ModelRun a = run_model<CudaBackend<float>>(stem, true, 0.75);
  cuda::set_attention_impl(cuda::AttentionImpl::cublas);
  const ModelRun b = run_model<CudaBackend<float>>(stem, true, 0.75);
  EXPECT_LE(std::abs(a.loss - b.loss), 1e-5 * std::abs(b.loss));
  EXPECT_LE(rel_l2(a.grads, b.grads), 1e-4);
}

// The bf16 GEMM path: the same model's loss and gradients close to fp32 (bf16 has 8 bits of mantissa).
TEST_F(Cuda, ModelBf16CloseToFp32) {
  const std::string stem = fixture_dir() + "/cfgB";
  const ModelRun a = run_model<CudaBackend<float>>(stem, true, 0.75);
  cuda::set_precision(cuda::Precision::bf16);
  const ModelRun b = run_model<CudaBackend<float>>(stem, true, 0.75);
  EXPECT_LE(std::abs(a.loss - b.loss), 1e-2 * std::abs(a.loss));
  EXPECT_LE(rel_l2(b.pred, a.pred), 1e-2);
  EXPECT_LE(rel_l2(b.grads, a.grads), 5e-2);  // gradients go through ~2·depth bf16 GEMMs
}

// GraphedStep (train/step_graph.h: eager at the first call, captured at the second, replayed after; recaptured when
// dloss changes) gives the same bits as forward_nowait + backward: the same kernels in the same order.
TEST_F(Cuda, ModelGraphStepMatchesEager) {
  for (auto prec : {cuda::Precision::fp32, cuda::Precision::bf16}) {
    cuda::set_precision(prec);
    const std::string stem = fixture_dir() + "/cfgA";
    io::SafeTensorsReader wf(stem + ".weights.safetensors"), in(stem + ".input.safetensors");
    ModelConfig cfg = read_config(wf);
    cfg.norm_pix_loss = true;
    std::vector<int64_t> ishape;
    const auto imgs = in.read_f32("imgs", &ishape);
    const auto noise0 = in.read_f32("noise");
    const int B = int(ishape[0]);
    using Bk = CudaBackend<float>;
    MaeModel<Bk> eager(cfg, B, 0.75), graph(cfg, B, 0.75);
    F host(eager.params().total, 0.f);
    load_params(wf, eager.params(), host.data());
    Bk::upload(eager.params_data(), host.data(), host.size());
    Bk::upload(graph.params_data(), host.data(), host.size());
    DF dimgs(imgs);
    GraphedStep<Bk> step(graph);
    // it 0 eager (warm), 1 capture, 2–3 replay; dloss changes at 4: eager again, 5 recapture, 6 replay
    for (int it = 0; it < 7; ++it) {
      SCOPED_TRACE("iteration " + std::to_string(it) + (prec == cuda::Precision::bf16 ? " bf16" : " fp32"));
      F noise = noise0;  // a different mask every iteration
      std::rotate(noise.begin(), noise.begin() + (it * 7) % noise.size(), noise.end());
      const float dloss = it < 4 ? 1.f : 0.5f;
      eager.zero_grad();
      eager.forward_nowait(dimgs.p, noise.data());
      eager.backward(dloss);
      const float eager_loss = eager.loss_wait();  // before the other model's step: one loss in flight at a time
      graph.zero_grad();
      step.run(dimgs.p, noise.data(), dloss);
      EXPECT_EQ(eager_loss, graph.loss_wait());
      F ge(eager.params().total), gg(ge.size());
      Bk::download(ge.data(), eager.grads_data(), ge.size());
      Bk::download(gg.data(), graph.grads_data(), gg.size());
      EXPECT_EQ(ge, gg);
    }
  }
}

// The ViT classifier (fine-tuning) on CUDA against the CPU: logits, loss and every gradient, with drop path on
// (explicit per-sample scales, one sample dropped in some blocks).
TEST_F(Cuda, ClassifierModelMatchesCpu) {
  ModelConfig cfg;
  cfg.img_size = 16, cfg.patch_size = 4, cfg.in_chans = 3, cfg.embed_dim = 48, cfg.depth = 3, cfg.num_heads = 4;
  for (bool gp : {true, false}) {
    SCOPED_TRACE(gp ? "global pool" : "cls token");
    ClassifierConfig cc;
    cc.nb_classes = 7, cc.global_pool = gp, cc.drop_path = 0.2;
    const int B = 5;
    VitClassifier<CpuBackend<float>> c(cfg, cc, B);
    VitClassifier<CudaBackend<float>> g(cfg, cc, B);
    c.init(11), g.init(11);
    c.init_head(12, 0.02), g.init_head(12, 0.02);
    c.set_training(true), g.set_training(true);
    F scales(size_t(cfg.depth) * 2 * B, 1.25f);
    scales[3] = scales[2 * B + 1] = 0.f;
    c.blocks().set_drop_scales(scales.data(), B), g.blocks().set_drop_scales(scales.data(), B);
    const F imgs = rnd(size_t(B) * 3 * 16 * 16, 1);
    F targets(size_t(B) * cc.nb_classes, 0.f);
    for (int b = 0; b < B; ++b) targets[size_t(b) * cc.nb_classes + b % cc.nb_classes] = 1.f;
    DF d_imgs(imgs), d_targets(targets);
    const float* lc = c.forward(imgs.data(), B);
    const F want_logits(lc, lc + size_t(B) * cc.nb_classes);
    g.forward(d_imgs.p, B);
    F got_logits(want_logits.size());
    CudaMemory::download(got_logits.data(), g.logits(), got_logits.size());
    EXPECT_REL(got_logits, want_logits, kTol);
    const float lcpu = c.loss(targets.data(), B), lgpu = g.loss(d_targets.p, B);
    EXPECT_LE(std::abs(lcpu - lgpu), 1e-5 * std::abs(lcpu));
    c.zero_grad(), g.zero_grad();
    c.backward(0.5f, B), g.backward(0.5f, B);
    const size_t np = c.params().total;
    F gg(np);
    CudaMemory::download(gg.data(), g.grads_data(), np);
    EXPECT_REL(gg, F(c.grads_data(), c.grads_data() + np), 1e-4);
  }
}

// The evaluation commands' model (InferenceModel) on CUDA gives the CPU's latent, predictions and mask.
TEST_F(Cuda, InferenceModelMatchesCpu) {
  ModelConfig cfg;
  cfg.img_size = 16, cfg.patch_size = 4, cfg.in_chans = 3, cfg.embed_dim = 32, cfg.depth = 2, cfg.num_heads = 4;
  cfg.decoder_embed_dim = 16, cfg.decoder_depth = 1, cfg.decoder_num_heads = 2, cfg.norm_pix_loss = true;
  const int B = 3, L = cfg.num_patches();
  for (double ratio : {0.0, 0.75}) {
    auto c = make_inference_model(cfg, B, ratio, DeviceSpec{}), g = make_inference_model(cfg, B, ratio, DeviceSpec{Device::cuda});
    c->init(5), g->init(5);
    const F imgs = rnd(size_t(B) * 3 * 16 * 16, 2), noise = uni(size_t(B) * L, 3, 0.f, 1.f);
    const size_t nl = size_t(B) * (1 + c->len_keep()) * cfg.embed_dim;
    const float* lc = c->forward_encoder(imgs.data(), noise.data());
    const F want(lc, lc + nl);
    const float* lg = g->forward_encoder(imgs.data(), noise.data());
    EXPECT_REL(F(lg, lg + nl), want, 1e-5);
    if (ratio == 0.0) continue;  // nothing masked: the loss is 0/0
    const float loss_c = c->forward(imgs.data(), noise.data()), loss_g = g->forward(imgs.data(), noise.data());
    EXPECT_LE(std::abs(loss_c - loss_g), 1e-5 * std::abs(loss_c));
    const size_t np = size_t(B) * (1 + L) * cfg.patch_dim();
    EXPECT_REL(F(g->pred(), g->pred() + np), F(c->pred(), c->pred() + np), 1e-5);
    EXPECT_EQ(F(g->mask(), g->mask() + size_t(B) * L), F(c->mask(), c->mask() + size_t(B) * L));
  }
}

}  // namespace
