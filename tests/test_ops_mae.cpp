// The MAE-specific ops (attention core, patches, encoder/decoder embedding, loss) in both backends:
//   (1) ref backward vs central finite differences in double, on odd shapes;
//   (2) cpu vs ref (double: tight; float: ~1e-5) on odd and realistic shapes;
//   (3) exact index semantics on hand-written tiny cases;
//   (4) the accumulate rule (+= into pre-filled gradients) and nullptr gradient outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "gradcheck.h"
#include "ops/ops.h"

namespace mae::test {
namespace {

// One backend's MAE ops for element type T, so a test body can run against ref and cpu alike.
template <class T> struct Ops {
  const char* name;
  decltype(&ref::attention_forward<T>) attention_forward;
  decltype(&ref::attention_backward<T>) attention_backward;
  decltype(&ref::im2patch_cij<T>) im2patch_cij;
  decltype(&ref::im2patch_cij_backward<T>) im2patch_cij_backward;
  decltype(&ref::patchify_ijc<T>) patchify_ijc;
  decltype(&ref::unpatchify_ijc<T>) unpatchify_ijc;
  decltype(&ref::encoder_embed_forward<T>) encoder_embed_forward;
  decltype(&ref::encoder_embed_backward<T>) encoder_embed_backward;
  decltype(&ref::decoder_embed_forward<T>) decoder_embed_forward;
  decltype(&ref::decoder_embed_backward<T>) decoder_embed_backward;
  decltype(&ref::normalize_target<T>) normalize_target;
  decltype(&ref::masked_mse_forward<T>) masked_mse_forward;
  decltype(&ref::masked_mse_backward<T>) masked_mse_backward;
};
#define MAE_OPS(ns, T)                                                                                          \
  Ops<T> {                                                                                                      \
    #ns, ns::attention_forward<T>, ns::attention_backward<T>, ns::im2patch_cij<T>, ns::im2patch_cij_backward<T>, \
        ns::patchify_ijc<T>, ns::unpatchify_ijc<T>, ns::encoder_embed_forward<T>, ns::encoder_embed_backward<T>, \
        ns::decoder_embed_forward<T>, ns::decoder_embed_backward<T>, ns::normalize_target<T>,                    \
        ns::masked_mse_forward<T>, ns::masked_mse_backward<T>                                                    \
  }
template <class T> Ops<T> ref_ops() { return MAE_OPS(ref, T); }
template <class T> Ops<T> cpu_ops() { return MAE_OPS(cpu, T); }
#undef MAE_OPS

using Outputs = std::map<std::string, Vec>;

template <class T> Vec to_vec(const std::vector<T>& v) { return Vec(v.begin(), v.end()); }

// Random values that are exactly representable in T, so a double reference sees the same inputs as a float run.
template <class T> Vec rnd(size_t n, unsigned seed, double scale = 1.0) { return to_vec(cast<T>(randn(n, seed, scale))); }

double maxabs(const Vec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Official random masking: ids_shuffle = argsort(noise), ids_restore = argsort(ids_shuffle), mask 1 = removed.
struct Masking {
  std::vector<int> ids_shuffle, ids_restore;
  Vec mask;
};
Masking make_masking(int B, int L, int K, unsigned seed) {
  Masking m;
  const Vec noise = randn(size_t(B) * L, seed);
  m.ids_shuffle.resize(size_t(B) * L);
  m.ids_restore.resize(size_t(B) * L);
  m.mask.resize(size_t(B) * L);
  for (int b = 0; b < B; ++b) {
    int* s = m.ids_shuffle.data() + size_t(b) * L;
    std::iota(s, s + L, 0);
    std::sort(s, s + L, [&](int i, int j) { return noise[size_t(b) * L + i] < noise[size_t(b) * L + j]; });
    for (int k = 0; k < L; ++k) m.ids_restore[size_t(b) * L + s[k]] = k;
    for (int l = 0; l < L; ++l) m.mask[size_t(b) * L + l] = m.ids_restore[size_t(b) * L + l] >= K ? 1.0 : 0.0;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Op runners: every output and gradient of one op for given inputs, on one backend, returned in double.
// Backward gradients start from `g0` (pre-filled buffers) when given, else from zero.

template <class T>
Outputs run_attention(const Ops<T>& o, const Vec& qkv, const Vec& dout, int B, int Tn, int D, int H,
                      const Vec* g0 = nullptr) {
  const auto q = cast<T>(qkv), g = cast<T>(dout);
  std::vector<T> out(size_t(B) * Tn * D), att(size_t(B) * H * Tn * Tn), scratch(att.size(), T(7));
  std::vector<T> dqkv = g0 ? cast<T>(*g0) : std::vector<T>(q.size(), T(0));
  o.attention_forward(out.data(), att.data(), q.data(), B, Tn, D, H);
  o.attention_backward(dqkv.data(), scratch.data(), g.data(), q.data(), att.data(), B, Tn, D, H);
  return {{"out", to_vec(out)}, {"att", to_vec(att)}, {"dqkv", to_vec(dqkv)}};
}

template <class T>
Outputs run_patches(const Ops<T>& o, const Vec& imgs, const Vec& dout, int B, int C, int H, int W, int p,
                    const Vec* g0 = nullptr) {
  const auto x = cast<T>(imgs), g = cast<T>(dout);
  std::vector<T> cij(x.size()), ijc(x.size()), back(x.size()), unp(x.size());
  std::vector<T> dimgs = g0 ? cast<T>(*g0) : std::vector<T>(x.size(), T(0));
  o.im2patch_cij(cij.data(), x.data(), B, C, H, W, p);
  o.im2patch_cij_backward(dimgs.data(), g.data(), B, C, H, W, p);
  o.patchify_ijc(ijc.data(), x.data(), B, C, H, W, p);
  o.unpatchify_ijc(unp.data(), g.data(), B, C, H, W, p);
  return {{"cij", to_vec(cij)}, {"dimgs", to_vec(dimgs)}, {"ijc", to_vec(ijc)}, {"unpatchify", to_vec(unp)}};
}

struct EmbedIn {
  Vec tok, cls, pos, dx, y, mask_token, dpos, dz;
  Masking m;
};
EmbedIn make_embed_in(int B, int L, int K, int D, int E, unsigned seed) {
  return {rnd<float>(size_t(B) * L * D, seed),           rnd<float>(D, seed + 1),
          rnd<float>(size_t(1 + L) * D, seed + 2),       rnd<float>(size_t(B) * (1 + K) * D, seed + 3),
          rnd<float>(size_t(B) * (1 + K) * E, seed + 4), rnd<float>(E, seed + 5),
          rnd<float>(size_t(1 + L) * E, seed + 6),       rnd<float>(size_t(B) * (1 + L) * E, seed + 7),
          make_masking(B, L, K, seed + 8)};
}

template <class T>
Outputs run_embed(const Ops<T>& o, const EmbedIn& in, int B, int L, int K, int D, int E, const Outputs* g0 = nullptr) {
  auto tok = cast<T>(in.tok), cls = cast<T>(in.cls), pos = cast<T>(in.pos), dx = cast<T>(in.dx);
  auto y = cast<T>(in.y), mt = cast<T>(in.mask_token), dpos = cast<T>(in.dpos), dz = cast<T>(in.dz);
  const int* shuf = in.m.ids_shuffle.data();
  const int* rest = in.m.ids_restore.data();
  auto start = [&](const char* k, size_t n) { return g0 ? cast<T>(g0->at(k)) : std::vector<T>(n, T(0)); };
  std::vector<T> x(size_t(B) * (1 + K) * D), z(size_t(B) * (1 + L) * E);
  std::vector<T> dtok = start("dtok", tok.size()), dcls = start("dcls", D), dy = start("dy", y.size()),
                 dmt = start("dmask_token", E);
  o.encoder_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), shuf, B, L, K, D);
  o.encoder_embed_backward(dtok.data(), dcls.data(), dx.data(), shuf, B, L, K, D);
  o.decoder_embed_forward(z.data(), y.data(), mt.data(), dpos.data(), rest, B, L, K, E);
  o.decoder_embed_backward(dy.data(), dmt.data(), dz.data(), rest, B, L, K, E);
  return {{"x", to_vec(x)},       {"dtok", to_vec(dtok)}, {"dcls", to_vec(dcls)},
          {"z", to_vec(z)},       {"dy", to_vec(dy)},     {"dmask_token", to_vec(dmt)}};
}

template <class T>
Outputs run_loss(const Ops<T>& o, const Vec& pred, const Vec& target, const Vec& mask, double dloss, int B, int L,
                 int P, const Vec* g0 = nullptr) {
  const auto pr = cast<T>(pred), tg = cast<T>(target), m = cast<T>(mask);
  std::vector<T> norm(tg.size()), inplace = tg;
  std::vector<T> dpred = g0 ? cast<T>(*g0) : std::vector<T>(pr.size(), T(0));
  o.normalize_target(norm.data(), tg.data(), B * L, P);
  o.normalize_target(inplace.data(), inplace.data(), B * L, P);
  const T loss = o.masked_mse_forward(pr.data(), tg.data(), m.data(), B, L, P);
  const T loss_norm = o.masked_mse_forward(pr.data(), norm.data(), m.data(), B, L, P);
  o.masked_mse_backward(dpred.data(), T(dloss), pr.data(), tg.data(), m.data(), B, L, P);
  return {{"normalize", to_vec(norm)},        {"normalize_inplace", to_vec(inplace)}, {"loss", Vec{double(loss)}},
          {"loss_norm", Vec{double(loss_norm)}}, {"dpred", to_vec(dpred)}};
}

// cpu<T> and ref<T> against ref<double> on the same (T-representable) inputs.
template <class T, class Run> void compare_backends(const Run& run, const std::string& what) {
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const Outputs want = run(ref_ops<double>());
  for (const Outputs& got : {run(cpu_ops<T>()), run(ref_ops<T>())})
    for (const auto& [k, w] : want) {
      SCOPED_TRACE(what + " " + k + (std::is_same_v<T, float> ? " float" : " double"));
      ASSERT_TRUE(got.count(k));
      expect_close(got.at(k), w, tol, tol * std::max(maxabs(w), 1e-30), k);
      EXPECT_LE(rel_l2(got.at(k), w), tol) << k;
    }
}

// The accumulate rule: starting from pre-filled gradients g0 gives g0 + (result from zero), for every gradient.
template <class Run> void check_accumulates(const Run& run, const Outputs& g0, const std::string& what) {
  for (const auto& ops : {ref_ops<double>(), cpu_ops<double>()}) {
    const Outputs fresh = run(ops, nullptr), acc = run(ops, &g0);
    for (const auto& [k, g] : g0) {
      SCOPED_TRACE(what + " " + k + " " + ops.name);
      Vec want(g.size());
      for (size_t i = 0; i < g.size(); ++i) want[i] = g[i] + fresh.at(k)[i];
      expect_close(acc.at(k), want, 1e-13, 1e-13, k);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Attention

TEST(Attention, RefGradientMatchesFiniteDifferences) {
  for (auto [B, Tn, D, H] : {std::array{2, 7, 15, 3}, std::array{1, 5, 8, 1}, std::array{3, 1, 6, 2}}) {
    SCOPED_TRACE(testing::Message() << "B " << B << " Tn " << Tn << " D " << D << " H " << H);
    Vec qkv = randn(size_t(B) * Tn * 3 * D, 1), r = randn(size_t(B) * Tn * D, 2);
    std::vector<double> out(r.size()), att(size_t(B) * H * Tn * Tn), scratch(att.size());
    auto f = [&] {
      ref::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
      return dot(r, out);
    };
    const Vec num = numeric_grad(qkv, f);
    f();
    Vec dqkv(qkv.size(), 0.0);
    ref::attention_backward(dqkv.data(), scratch.data(), r.data(), qkv.data(), att.data(), B, Tn, D, H);
    expect_close(dqkv, num, 1e-6, 1e-8, "dqkv");
  }
}

TEST(Attention, RowsAreSoftmaxOfScaledScores) {
  // One head, two tokens, written out: scores = q·k / √hd, att row = softmax, out = att · v.
  const int B = 1, Tn = 2, D = 4, H = 1;
  const Vec qkv = {1, 0, 2, 0, /*k*/ 1, 1, 0, 0, /*v*/ 1, 2, 3, 4,  // token 0
                   0, 1, 0, 1, /*k*/ 0, 0, 2, 2, /*v*/ 5, 6, 7, 8};  // token 1
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec out(Tn * D), att(Tn * Tn);
    o.attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
    // q0·k0 = 1, q0·k1 = 4, q1·k0 = 1, q1·k1 = 2; scale 1/2
    const double a01 = 1 / (1 + std::exp(0.5 - 2.0)), a11 = 1 / (1 + std::exp(0.5 - 1.0));
    expect_close(att, Vec{1 - a01, a01, 1 - a11, a11}, 1e-14, 1e-15, std::string(o.name) + " att");
    Vec want(Tn * D);
    for (int d = 0; d < D; ++d) {
      want[d] = (1 - a01) * (1 + d) + a01 * (5 + d);
      want[D + d] = (1 - a11) * (1 + d) + a11 * (5 + d);
    }
    expect_close(out, want, 1e-14, 1e-14, std::string(o.name) + " out");
  }
}

TEST(Attention, HeadsAreContiguousSlices) {
  // With H heads, head h must see only columns [h·hd, (h+1)·hd) of q, k, v and write the same columns of out:
  // compare against H separate single-head runs on the sliced data.
  const int B = 2, Tn = 5, D = 12, H = 3, hd = D / H;
  const Vec qkv = randn(size_t(B) * Tn * 3 * D, 3);
  Vec out(size_t(B) * Tn * D), att(size_t(B) * H * Tn * Tn);
  ref::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
  for (int h = 0; h < H; ++h) {
    Vec q1(size_t(B) * Tn * 3 * hd), o1(size_t(B) * Tn * hd), a1(size_t(B) * Tn * Tn);
    for (int t = 0; t < B * Tn; ++t)
      for (int s = 0; s < 3; ++s)
        for (int d = 0; d < hd; ++d) q1[(size_t(t) * 3 + s) * hd + d] = qkv[size_t(t) * 3 * D + s * D + h * hd + d];
    ref::attention_forward(o1.data(), a1.data(), q1.data(), B, Tn, hd, 1);
    for (int t = 0; t < B * Tn; ++t)
      for (int d = 0; d < hd; ++d) EXPECT_DOUBLE_EQ(out[size_t(t) * D + h * hd + d], o1[size_t(t) * hd + d]);
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < Tn * Tn; ++i)
        EXPECT_DOUBLE_EQ(att[(size_t(b) * H + h) * Tn * Tn + i], a1[size_t(b) * Tn * Tn + i]);
  }
}

template <class T> void attention_backends(int B, int Tn, int D, int H) {
  const Vec qkv = rnd<T>(size_t(B) * Tn * 3 * D, 11), dout = rnd<T>(size_t(B) * Tn * D, 12);
  compare_backends<T>([&](const auto& o) { return run_attention(o, qkv, dout, B, Tn, D, H); },
                      "attention B" + std::to_string(B) + " Tn" + std::to_string(Tn) + " D" + std::to_string(D));
}
TEST(Attention, CpuMatchesRef) {
  for (auto [B, Tn, D, H] : {std::array{2, 7, 15, 3}, std::array{3, 1, 6, 2}, std::array{4, 50, 192, 3},
                             std::array{2, 13, 128, 4}}) {
    attention_backends<double>(B, Tn, D, H);
    attention_backends<float>(B, Tn, D, H);
  }
}
TEST(Attention, RealisticShapeFloat) { attention_backends<float>(1, 197, 192, 3); }

TEST(Attention, AccumulatesAndSkipsNull) {
  const int B = 2, Tn = 7, D = 15, H = 3;
  const Vec qkv = randn(size_t(B) * Tn * 3 * D, 21), dout = randn(size_t(B) * Tn * D, 22);
  check_accumulates([&](const auto& o, const Outputs* g0) {
    return run_attention(o, qkv, dout, B, Tn, D, H, g0 ? &g0->at("dqkv") : nullptr);
  }, {{"dqkv", randn(qkv.size(), 23)}}, "attention");
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec att(size_t(B) * H * Tn * Tn), out(dout.size()), scratch(att.size());
    o.attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
    o.attention_backward(nullptr, scratch.data(), dout.data(), qkv.data(), att.data(), B, Tn, D, H);  // no crash
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Patches

TEST(Patches, OneChannelTwoByTwoPatches) {
  // 4×4 image 0..15, p 2: patches in raster order, pixels row by row inside each (both orders agree for C = 1).
  const Vec img = [] { Vec v(16); std::iota(v.begin(), v.end(), 0.0); return v; }();
  const Vec want = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15};
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec cij(16), ijc(16);
    o.im2patch_cij(cij.data(), img.data(), 1, 1, 4, 4, 2);
    o.patchify_ijc(ijc.data(), img.data(), 1, 1, 4, 4, 2);
    EXPECT_EQ(cij, want) << o.name;
    EXPECT_EQ(ijc, want) << o.name;
  }
}

TEST(Patches, ThreeChannelOrders) {
  // imgs[c, y, x] = 100c + 10y + x, 4×4, p 2. Patch 1 is (hi 0, wi 1): x in {2, 3}, y in {0, 1}.
  Vec img(3 * 16);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) img[(c * 4 + y) * 4 + x] = 100 * c + 10 * y + x;
  const Vec cij1 = {2, 3, 12, 13, 102, 103, 112, 113, 202, 203, 212, 213};  // (c, i, j): channel planes
  const Vec ijc1 = {2, 102, 202, 3, 103, 203, 12, 112, 212, 13, 113, 213};  // (i, j, c): pixels, channels inner
  const Vec cij2 = {20, 21, 30, 31, 120, 121, 130, 131, 220, 221, 230, 231};  // patch 2 = (hi 1, wi 0)
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec cij(48), ijc(48);
    o.im2patch_cij(cij.data(), img.data(), 1, 3, 4, 4, 2);
    o.patchify_ijc(ijc.data(), img.data(), 1, 3, 4, 4, 2);
    EXPECT_EQ(Vec(cij.begin() + 12, cij.begin() + 24), cij1) << o.name;
    EXPECT_EQ(Vec(ijc.begin() + 12, ijc.begin() + 24), ijc1) << o.name;
    EXPECT_EQ(Vec(cij.begin() + 24, cij.begin() + 36), cij2) << o.name;
  }
}

TEST(Patches, NonSquareGridIsRasterOrder) {
  // 2 samples, 2 channels, H 4 × W 6, p 2: grid 2 × 3, l = hi·3 + wi.
  const int B = 2, C = 2, H = 4, W = 6, p = 2, L = 6, P = C * p * p;
  Vec img(size_t(B) * C * H * W);
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) img[((b * C + c) * H + y) * W + x] = 1000 * b + 100 * c + 10 * y + x;
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec cij(img.size()), ijc(img.size());
    o.im2patch_cij(cij.data(), img.data(), B, C, H, W, p);
    o.patchify_ijc(ijc.data(), img.data(), B, C, H, W, p);
    // sample 1, patch 4 = (hi 1, wi 1): y in {2, 3}, x in {2, 3}
    const double* a = cij.data() + (1 * L + 4) * P;
    EXPECT_EQ(Vec(a, a + P), (Vec{1022, 1023, 1032, 1033, 1122, 1123, 1132, 1133})) << o.name;
    const double* b = ijc.data() + (1 * L + 4) * P;
    EXPECT_EQ(Vec(b, b + P), (Vec{1022, 1122, 1023, 1123, 1032, 1132, 1033, 1133})) << o.name;
    // sample 0, patch 2 = (hi 0, wi 2): x in {4, 5}
    const double* c = cij.data() + 2 * P;
    EXPECT_EQ(Vec(c, c + P), (Vec{4, 5, 14, 15, 104, 105, 114, 115})) << o.name;
  }
}

TEST(Patches, Im2patchRowsTimesConvWeightIsTheConv) {
  // Conv2d(C, D, p, stride p) out[b, d, hi, wi] = Σ w[d, c, i, j] img[b, c, hi·p + i, wi·p + j]
  // must equal row l = hi·gw + wi of im2patch_cij · (w viewed as (D, C·p·p))ᵀ.
  const int B = 2, C = 3, H = 9, W = 12, p = 3, gh = 3, gw = 4, L = 12, P = C * p * p, Dm = 5;
  const Vec img = randn(size_t(B) * C * H * W, 31), w = randn(size_t(Dm) * P, 32);
  Vec rows(size_t(B) * L * P);
  cpu::im2patch_cij(rows.data(), img.data(), B, C, H, W, p);
  for (int b = 0; b < B; ++b)
    for (int d = 0; d < Dm; ++d)
      for (int hi = 0; hi < gh; ++hi)
        for (int wi = 0; wi < gw; ++wi) {
          double conv = 0, lin = 0;
          for (int c = 0; c < C; ++c)
            for (int i = 0; i < p; ++i)
              for (int j = 0; j < p; ++j)
                conv += w[((d * C + c) * p + i) * p + j] * img[((b * C + c) * H + hi * p + i) * W + wi * p + j];
          for (int k = 0; k < P; ++k) lin += rows[(size_t(b) * L + hi * gw + wi) * P + k] * w[size_t(d) * P + k];
          EXPECT_NEAR(lin, conv, 1e-12);
        }
}

TEST(Patches, UnpatchifyInvertsPatchify) {
  const int B = 2, C = 3, H = 9, W = 12, p = 3;
  const Vec img = randn(size_t(B) * C * H * W, 41);
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec patches(img.size()), back(img.size(), -1.0), again(img.size());
    o.patchify_ijc(patches.data(), img.data(), B, C, H, W, p);
    o.unpatchify_ijc(back.data(), patches.data(), B, C, H, W, p);
    EXPECT_EQ(back, img) << o.name;
    o.patchify_ijc(again.data(), back.data(), B, C, H, W, p);
    EXPECT_EQ(again, patches) << o.name;
  }
}

TEST(Patches, Im2patchBackwardIsTheAdjointByFiniteDifferences) {
  const int B = 2, C = 3, H = 9, W = 12, p = 3;
  Vec img = randn(size_t(B) * C * H * W, 51);
  const Vec r = randn(img.size(), 52);
  Vec rows(img.size());
  const Vec num = numeric_grad(img, [&] {
    ref::im2patch_cij(rows.data(), img.data(), B, C, H, W, p);
    return dot(r, rows);
  });
  Vec dimgs(img.size(), 0.0);
  ref::im2patch_cij_backward(dimgs.data(), r.data(), B, C, H, W, p);
  expect_close(dimgs, num, 1e-7, 1e-8, "dimgs");
}

template <class T> void patches_backends(int B, int C, int H, int W, int p) {
  const Vec img = rnd<T>(size_t(B) * C * H * W, 61), dout = rnd<T>(img.size(), 62);
  compare_backends<T>([&](const auto& o) { return run_patches(o, img, dout, B, C, H, W, p); },
                      "patches " + std::to_string(H) + "x" + std::to_string(W));
}
TEST(Patches, CpuMatchesRef) {
  patches_backends<double>(2, 3, 9, 12, 3);
  patches_backends<float>(2, 3, 9, 12, 3);
  patches_backends<double>(1, 1, 28, 28, 4);
  patches_backends<float>(2, 3, 224, 224, 16);
}

TEST(Patches, AccumulatesAndSkipsNull) {
  const int B = 2, C = 3, H = 9, W = 12, p = 3;
  const Vec img = randn(size_t(B) * C * H * W, 71), dout = randn(img.size(), 72);
  check_accumulates([&](const auto& o, const Outputs* g0) {
    return run_patches(o, img, dout, B, C, H, W, p, g0 ? &g0->at("dimgs") : nullptr);
  }, {{"dimgs", randn(img.size(), 73)}}, "patches");
  ref::im2patch_cij_backward<double>(nullptr, dout.data(), B, C, H, W, p);
  cpu::im2patch_cij_backward<double>(nullptr, dout.data(), B, C, H, W, p);
}

TEST(Patches, RejectsPartialPatches) {
  Vec img(3 * 10 * 12), out(img.size());
  EXPECT_THROW(ref::patchify_ijc(out.data(), img.data(), 1, 3, 10, 12, 3), mae::Error);
  EXPECT_THROW(cpu::im2patch_cij(out.data(), img.data(), 1, 3, 10, 12, 3), mae::Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder / decoder embedding

TEST(Embed, HandWrittenShuffle) {
  // L 4, K 2, ids_shuffle [2, 0, 3, 1] → kept patches 2 then 0; ids_restore = argsort = [1, 3, 0, 2].
  const int B = 1, L = 4, K = 2, D = 2;
  const std::vector<int> shuf = {2, 0, 3, 1}, rest = {1, 3, 0, 2};
  Vec tok(L * D), pos((1 + L) * D), cls = {0.5, 0.25};
  for (int l = 0; l < L; ++l)
    for (int d = 0; d < D; ++d) tok[l * D + d] = 10 * l + d;
  for (int l = 0; l <= L; ++l)
    for (int d = 0; d < D; ++d) pos[l * D + d] = 1000 * l;
  const Vec y = {7, 8, /*visible 0 = patch 2*/ 20, 21, /*visible 1 = patch 0*/ 0, 1};
  const Vec mt = {-1, -2};
  Vec dpos((1 + L) * D);
  for (int l = 0; l <= L; ++l)
    for (int d = 0; d < D; ++d) dpos[l * D + d] = 0.125 * l;
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec x((1 + K) * D);
    o.encoder_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), shuf.data(), B, L, K, D);
    EXPECT_EQ(x, (Vec{0.5, 0.25, 3020, 3021, 1000, 1001})) << o.name;
    Vec z((1 + L) * D);
    o.decoder_embed_forward(z.data(), y.data(), mt.data(), dpos.data(), rest.data(), B, L, K, D);
    // row 0: cls; l 0 ← y[2]; l 1 mask; l 2 ← y[1]; l 3 mask
    EXPECT_EQ(z, (Vec{7, 8, 0.125, 1.125, -0.75, -1.75, 20.375, 21.375, -0.5, -1.5})) << o.name;

    Vec dx = {1, 2, 3, 4, 5, 6}, dtok(L * D, 0.0), dcls(D, 0.0);
    o.encoder_embed_backward(dtok.data(), dcls.data(), dx.data(), shuf.data(), B, L, K, D);
    EXPECT_EQ(dtok, (Vec{5, 6, 0, 0, 3, 4, 0, 0})) << o.name;
    EXPECT_EQ(dcls, (Vec{1, 2})) << o.name;
    Vec dz = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, dy((1 + K) * D, 0.0), dmt(D, 0.0);
    o.decoder_embed_backward(dy.data(), dmt.data(), dz.data(), rest.data(), B, L, K, D);
    EXPECT_EQ(dy, (Vec{1, 2, 7, 8, 3, 4})) << o.name;
    EXPECT_EQ(dmt, (Vec{5 + 9, 6 + 10})) << o.name;
  }
}

TEST(Embed, DecoderPutsEncoderTokensBackInPlace) {
  // With zero position tables, decoder_embed(encoder_embed(tok)) restores every kept patch to its original index
  // and fills removed ones (mask == 1) with the mask token.
  const int B = 3, L = 12, D = 4;
  for (int K : {1, 5, 11, 12}) {
    const Masking m = make_masking(B, L, K, 80 + K);
    const Vec tok = randn(size_t(B) * L * D, 81), cls = randn(D, 82), mt = randn(D, 83);
    const Vec pos(size_t(1 + L) * D, 0.0);
    for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
      Vec x(size_t(B) * (1 + K) * D), z(size_t(B) * (1 + L) * D);
      o.encoder_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), m.ids_shuffle.data(), B, L, K, D);
      o.decoder_embed_forward(z.data(), x.data(), mt.data(), pos.data(), m.ids_restore.data(), B, L, K, D);
      for (int b = 0; b < B; ++b) {
        for (int d = 0; d < D; ++d) EXPECT_EQ(z[size_t(b) * (1 + L) * D + d], cls[d]);
        for (int l = 0; l < L; ++l)
          for (int d = 0; d < D; ++d)
            EXPECT_EQ(z[(size_t(b) * (1 + L) + 1 + l) * D + d],
                      m.mask[size_t(b) * L + l] ? mt[d] : tok[(size_t(b) * L + l) * D + d])
                << o.name << " K " << K << " b " << b << " l " << l;
      }
    }
  }
}

TEST(Embed, RefGradientsMatchFiniteDifferences) {
  const int B = 2, L = 12, D = 5, E = 3;
  for (int K : {1, 4, 7, 11, 12}) {
    SCOPED_TRACE(testing::Message() << "K " << K);
    EmbedIn in = make_embed_in(B, L, K, D, E, 90 + K);
    const Vec r = randn(size_t(B) * (1 + K) * D, 91), rz = randn(size_t(B) * (1 + L) * E, 92);
    Vec x(r.size()), z(rz.size());
    auto fx = [&] {
      ref::encoder_embed_forward(x.data(), in.tok.data(), in.cls.data(), in.pos.data(), in.m.ids_shuffle.data(), B, L,
                                 K, D);
      return dot(r, x);
    };
    auto fz = [&] {
      ref::decoder_embed_forward(z.data(), in.y.data(), in.mask_token.data(), in.dpos.data(), in.m.ids_restore.data(),
                                 B, L, K, E);
      return dot(rz, z);
    };
    const Vec ntok = numeric_grad(in.tok, fx), ncls = numeric_grad(in.cls, fx);
    const Vec ny = numeric_grad(in.y, fz), nmt = numeric_grad(in.mask_token, fz);
    Vec dtok(in.tok.size(), 0.0), dcls(D, 0.0), dy(in.y.size(), 0.0), dmt(E, 0.0);
    ref::encoder_embed_backward(dtok.data(), dcls.data(), r.data(), in.m.ids_shuffle.data(), B, L, K, D);
    ref::decoder_embed_backward(dy.data(), dmt.data(), rz.data(), in.m.ids_restore.data(), B, L, K, E);
    expect_close(dtok, ntok, 1e-7, 1e-8, "dtok");
    expect_close(dcls, ncls, 1e-7, 1e-8, "dcls");
    expect_close(dy, ny, 1e-7, 1e-8, "dy");
    expect_close(dmt, nmt, 1e-7, 1e-8, "dmask_token");
  }
}

template <class T> void embed_backends(int B, int L, int K, int D, int E) {
  const EmbedIn in = make_embed_in(B, L, K, D, E, 100 + K);
  compare_backends<T>([&](const auto& o) { return run_embed(o, in, B, L, K, D, E); },
                      "embed L" + std::to_string(L) + " K" + std::to_string(K));
}
TEST(Embed, CpuMatchesRef) {
  for (int K : {1, 4, 11, 12}) {
    embed_backends<double>(2, 12, K, 15, 7);
    embed_backends<float>(2, 12, K, 15, 7);
  }
  embed_backends<double>(4, 196, 49, 192, 128);
  embed_backends<float>(4, 196, 49, 192, 128);
  embed_backends<float>(3, 49, 12, 128, 200);  // E > the cpu reduction's column block
}

TEST(Embed, AccumulatesAndSkipsNull) {
  const int B = 2, L = 12, K = 5, D = 15, E = 70;
  const EmbedIn in = make_embed_in(B, L, K, D, E, 110);
  const Outputs g0 = {{"dtok", randn(size_t(B) * L * D, 111)},
                      {"dcls", randn(D, 112)},
                      {"dy", randn(size_t(B) * (1 + K) * E, 113)},
                      {"dmask_token", randn(E, 114)}};
  check_accumulates([&](const auto& o, const Outputs* g) { return run_embed(o, in, B, L, K, D, E, g); }, g0, "embed");
  // Each gradient output alone (the other nullptr) gives the same values as both together.
  const Outputs full = run_embed(ref_ops<double>(), in, B, L, K, D, E);
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec dtok(g0.at("dtok").size(), 0.0), dcls(D, 0.0), dy(g0.at("dy").size(), 0.0), dmt(E, 0.0);
    o.encoder_embed_backward(dtok.data(), nullptr, in.dx.data(), in.m.ids_shuffle.data(), B, L, K, D);
    o.encoder_embed_backward(nullptr, dcls.data(), in.dx.data(), in.m.ids_shuffle.data(), B, L, K, D);
    o.decoder_embed_backward(dy.data(), nullptr, in.dz.data(), in.m.ids_restore.data(), B, L, K, E);
    o.decoder_embed_backward(nullptr, dmt.data(), in.dz.data(), in.m.ids_restore.data(), B, L, K, E);
    o.encoder_embed_backward(nullptr, nullptr, in.dx.data(), in.m.ids_shuffle.data(), B, L, K, D);
    o.decoder_embed_backward(nullptr, nullptr, in.dz.data(), in.m.ids_restore.data(), B, L, K, E);
    EXPECT_EQ(dtok, full.at("dtok")) << o.name;
    EXPECT_EQ(dcls, full.at("dcls")) << o.name;
    EXPECT_EQ(dy, full.at("dy")) << o.name;
    EXPECT_EQ(dmt, full.at("dmask_token")) << o.name;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loss

TEST(Loss, NormalizeTargetIsUnbiasedWithEpsInsideSqrt) {
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec row = {1, 2, 3, 4}, out(4);
    o.normalize_target(out.data(), row.data(), 1, 4);
    const double s = std::sqrt(5.0 / 3.0 + 1e-6);  // torch.var([1,2,3,4]) = 5/3
    expect_close(out, Vec{-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, 1e-15, 1e-15, std::string(o.name) + " hand");
    // A constant patch: var 0, so (x − mean) / sqrt(1e-6) = 0, no NaN.
    Vec flat = {3, 3, 3}, fo(3, 9.0);
    o.normalize_target(fo.data(), flat.data(), 1, 3);
    EXPECT_EQ(fo, (Vec{0, 0, 0})) << o.name;
  }
  // Direct formula on random rows, both backends, out-of-place and in place.
  const int N = 11, P = 27;
  const Vec x = randn(size_t(N) * P, 121, 3.0);
  Vec want(x.size());
  for (int n = 0; n < N; ++n) {
    double mean = 0, var = 0;
    for (int p = 0; p < P; ++p) mean += x[n * P + p] / P;
    for (int p = 0; p < P; ++p) var += (x[n * P + p] - mean) * (x[n * P + p] - mean) / (P - 1);
    for (int p = 0; p < P; ++p) want[n * P + p] = (x[n * P + p] - mean) / std::sqrt(var + 1e-6);
  }
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    Vec out(x.size()), in = x;
    o.normalize_target(out.data(), x.data(), N, P);
    o.normalize_target(in.data(), in.data(), N, P);
    expect_close(out, want, 1e-13, 1e-13, std::string(o.name) + " formula");
    expect_close(in, want, 1e-13, 1e-13, std::string(o.name) + " in place");
  }
}

TEST(Loss, HandWrittenMaskedMean) {
  // B 1, L 3, P 2; mask [1, 0, 1]: loss = (mean((p1 − t0)²) + mean((p3 − t2)²)) / 2; cls row and kept row ignored.
  const Vec pred = {1e6, -1e6, /*l0*/ 1, 2, /*l1*/ 100, 100, /*l2*/ 0, 4};
  const Vec target = {0, 0, 0, 0, 1, 1};
  const Vec mask = {1, 0, 1};
  const double want = ((1.0 + 4.0) / 2 + (1.0 + 9.0) / 2) / 2;
  for (const auto& o : {ref_ops<double>(), cpu_ops<double>()}) {
    EXPECT_DOUBLE_EQ(o.masked_mse_forward(pred.data(), target.data(), mask.data(), 1, 3, 2), want) << o.name;
    Vec dpred(pred.size(), 0.0);
    o.masked_mse_backward(dpred.data(), 2.0, pred.data(), target.data(), mask.data(), 1, 3, 2);
    // ∂/∂pred = dloss · 2 (pred − target) / (P · Σmask) = (pred − target) on removed rows
    EXPECT_EQ(dpred, (Vec{0, 0, 1, 2, 0, 0, -1, 3})) << o.name;
  }
}

TEST(Loss, RefGradientMatchesFiniteDifferences) {
  // Target = patchify(imgs) (C 3, 9 × 12, p 3: L 12, P 27), with and without norm_pix_loss.
  const int B = 2, C = 3, H = 9, W = 12, p = 3, L = 12, P = 27;
  const Vec imgs = randn(size_t(B) * C * H * W, 131);
  Vec target(imgs.size());
  ref::patchify_ijc(target.data(), imgs.data(), B, C, H, W, p);
  for (bool norm_pix : {false, true}) {
    if (norm_pix) ref::normalize_target(target.data(), target.data(), B * L, P);
    for (int K : {3, 9}) {
      SCOPED_TRACE(testing::Message() << "norm_pix " << norm_pix << " K " << K);
      const Vec mask = make_masking(B, L, K, 132 + K).mask;
      Vec pred = randn(size_t(B) * (1 + L) * P, 133);
      const Vec num = numeric_grad(pred, [&] {
        return ref::masked_mse_forward(pred.data(), target.data(), mask.data(), B, L, P);
      });
      Vec dpred(pred.size(), 0.0);
      ref::masked_mse_backward(dpred.data(), 0.7, pred.data(), target.data(), mask.data(), B, L, P);
      for (auto& g : dpred) g /= 0.7;
      expect_close(dpred, num, 1e-6, 1e-9, "dpred");
      for (int b = 0; b < B; ++b)
        for (int q = 0; q < P; ++q) EXPECT_EQ(dpred[size_t(b) * (1 + L) * P + q], 0.0);  // cls rows
    }
  }
}

template <class T> void loss_backends(int B, int L, int P, int K) {
  const Vec pred = rnd<T>(size_t(B) * (1 + L) * P, 141), target = rnd<T>(size_t(B) * L * P, 142, 2.0);
  const Vec mask = make_masking(B, L, K, 143).mask;
  compare_backends<T>([&](const auto& o) { return run_loss(o, pred, target, mask, 0.375, B, L, P); },
                      "loss L" + std::to_string(L) + " P" + std::to_string(P));
}
TEST(Loss, CpuMatchesRef) {
  loss_backends<double>(2, 12, 27, 3);
  loss_backends<float>(2, 12, 27, 3);
  loss_backends<double>(3, 49, 16, 12);
  loss_backends<float>(4, 196, 768, 49);
}

TEST(Loss, AccumulatesAndSkipsNull) {
  const int B = 2, L = 12, P = 27;
  const Vec pred = randn(size_t(B) * (1 + L) * P, 151), target = randn(size_t(B) * L * P, 152);
  const Vec mask = make_masking(B, L, 3, 153).mask;
  check_accumulates([&](const auto& o, const Outputs* g0) {
    return run_loss(o, pred, target, mask, 1.5, B, L, P, g0 ? &g0->at("dpred") : nullptr);
  }, {{"dpred", randn(pred.size(), 154)}}, "loss");
  ref::masked_mse_backward<double>(nullptr, 1.0, pred.data(), target.data(), mask.data(), B, L, P);
  cpu::masked_mse_backward<double>(nullptr, 1.0, pred.data(), target.data(), mask.data(), B, L, P);
}

}  // namespace
}  // namespace mae::test
