// The MAE and ViT token ops (attention core, patches, encoder/decoder embedding, loss, residual with drop-path scale,
// ViT embedding, token pooling): exact index semantics and values on hand-written tiny cases, the official orders
// and formulas, and invariants across ops (unpatchify ∘ patchify, decoder ∘ encoder embedding, im2patch · conv
// weight = the conv). Gradients, cpu vs ref, the += rule, guards and aliasing: the op × backend harness
// (tests/op_cases.h). Both host backends run each test through for_host_backends.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "op_cases.h"

namespace mae::test {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Attention core

TEST(Attention, RowsAreSoftmaxOfScaledScores) {
  // One head, two tokens, written out: scores = q·k / √hd, att row = softmax, out = att · v.
  const int B = 1, Tn = 2, D = 4, H = 1;
  const Vec qkv = {1, 0, 2, 0, /*k*/ 1, 1, 0, 0, /*v*/ 1, 2, 3, 4,  // token 0
                   0, 1, 0, 1, /*k*/ 0, 0, 2, 2, /*v*/ 5, 6, 7, 8};  // token 1
  for_host_backends<double>([&]<class Bk>() {
    Vec out(Tn * D), att(Tn * Tn);
    Bk::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
    // q0·k0 = 1, q0·k1 = 4, q1·k0 = 1, q1·k1 = 2; scale 1/2
    const double a01 = 1 / (1 + std::exp(0.5 - 2.0)), a11 = 1 / (1 + std::exp(0.5 - 1.0));
    expect_close(att, Vec{1 - a01, a01, 1 - a11, a11}, 1e-14, 1e-15, std::string(Bk::name) + " att");
    Vec want(Tn * D);
    for (int d = 0; d < D; ++d) {
      want[d] = (1 - a01) * (1 + d) + a01 * (5 + d);
      want[D + d] = (1 - a11) * (1 + d) + a11 * (5 + d);
    }
    expect_close(out, want, 1e-14, 1e-14, std::string(Bk::name) + " out");
  });
}

TEST(Attention, HeadsAreContiguousSlices) {
  // With H heads, head h must see only columns [h·hd, (h+1)·hd) of q, k, v and write the same columns of out:
  // compare against H separate single-head runs on the sliced data.
  const int B = 2, Tn = 5, D = 12, H = 3, hd = D / H;
  const Vec qkv = randn(size_t(B) * Tn * 3 * D, 3);
  for_host_backends<double>([&]<class Bk>() {
    Vec out(size_t(B) * Tn * D), att(size_t(B) * H * Tn * Tn);
    Bk::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
    for (int h = 0; h < H; ++h) {
      Vec q1(size_t(B) * Tn * 3 * hd), o1(size_t(B) * Tn * hd), a1(size_t(B) * Tn * Tn);
      for (int t = 0; t < B * Tn; ++t)
        for (int s = 0; s < 3; ++s)
          for (int d = 0; d < hd; ++d) q1[(size_t(t) * 3 + s) * hd + d] = qkv[size_t(t) * 3 * D + s * D + h * hd + d];
      Bk::attention_forward(o1.data(), a1.data(), q1.data(), B, Tn, hd, 1);
      for (int t = 0; t < B * Tn; ++t)
        for (int d = 0; d < hd; ++d)
          EXPECT_DOUBLE_EQ(out[size_t(t) * D + h * hd + d], o1[size_t(t) * hd + d]) << Bk::name;
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < Tn * Tn; ++i)
          EXPECT_DOUBLE_EQ(att[(size_t(b) * H + h) * Tn * Tn + i], a1[size_t(b) * Tn * Tn + i]) << Bk::name;
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Patches

TEST(Patches, OneChannelTwoByTwoPatches) {
  // 4×4 image 0..15, p 2: patches in raster order, pixels row by row inside each (both orders agree for C = 1).
  const Vec img = [] { Vec v(16); std::iota(v.begin(), v.end(), 0.0); return v; }();
  const Vec want = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15};
  for_host_backends<double>([&]<class Bk>() {
    Vec cij(16), ijc(16);
    Bk::im2patch_cij(cij.data(), img.data(), 1, 1, 4, 4, 2);
    Bk::patchify_ijc(ijc.data(), img.data(), 1, 1, 4, 4, 2);
    EXPECT_EQ(cij, want) << Bk::name;
    EXPECT_EQ(ijc, want) << Bk::name;
  });
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
  for_host_backends<double>([&]<class Bk>() {
    Vec cij(48), ijc(48);
    Bk::im2patch_cij(cij.data(), img.data(), 1, 3, 4, 4, 2);
    Bk::patchify_ijc(ijc.data(), img.data(), 1, 3, 4, 4, 2);
    EXPECT_EQ(Vec(cij.begin() + 12, cij.begin() + 24), cij1) << Bk::name;
    EXPECT_EQ(Vec(ijc.begin() + 12, ijc.begin() + 24), ijc1) << Bk::name;
    EXPECT_EQ(Vec(cij.begin() + 24, cij.begin() + 36), cij2) << Bk::name;
  });
}

TEST(Patches, NonSquareGridIsRasterOrder) {
  // 2 samples, 2 channels, H 4 × W 6, p 2: grid 2 × 3, l = hi·3 + wi.
  const int B = 2, C = 2, H = 4, W = 6, p = 2, L = 6, P = C * p * p;
  Vec img(size_t(B) * C * H * W);
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) img[((b * C + c) * H + y) * W + x] = 1000 * b + 100 * c + 10 * y + x;
  for_host_backends<double>([&]<class Bk>() {
    Vec cij(img.size()), ijc(img.size());
    Bk::im2patch_cij(cij.data(), img.data(), B, C, H, W, p);
    Bk::patchify_ijc(ijc.data(), img.data(), B, C, H, W, p);
    // sample 1, patch 4 = (hi 1, wi 1): y in {2, 3}, x in {2, 3}
    const double* a = cij.data() + (1 * L + 4) * P;
    EXPECT_EQ(Vec(a, a + P), (Vec{1022, 1023, 1032, 1033, 1122, 1123, 1132, 1133})) << Bk::name;
    const double* b = ijc.data() + (1 * L + 4) * P;
    EXPECT_EQ(Vec(b, b + P), (Vec{1022, 1122, 1023, 1123, 1032, 1132, 1033, 1133})) << Bk::name;
    // sample 0, patch 2 = (hi 0, wi 2): x in {4, 5}
    const double* c = cij.data() + 2 * P;
    EXPECT_EQ(Vec(c, c + P), (Vec{4, 5, 14, 15, 104, 105, 114, 115})) << Bk::name;
  });
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
  for_host_backends<double>([&]<class Bk>() {
    Vec patches(img.size()), back(img.size(), -1.0), again(img.size());
    Bk::patchify_ijc(patches.data(), img.data(), B, C, H, W, p);
    Bk::unpatchify_ijc(back.data(), patches.data(), B, C, H, W, p);
    EXPECT_EQ(back, img) << Bk::name;
    Bk::patchify_ijc(again.data(), back.data(), B, C, H, W, p);
    EXPECT_EQ(again, patches) << Bk::name;
  });
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
  for_host_backends<double>([&]<class Bk>() {
    Vec x((1 + K) * D);
    Bk::encoder_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), shuf.data(), B, L, K, D);
    EXPECT_EQ(x, (Vec{0.5, 0.25, 3020, 3021, 1000, 1001})) << Bk::name;
    Vec z((1 + L) * D);
    Bk::decoder_embed_forward(z.data(), y.data(), mt.data(), dpos.data(), rest.data(), B, L, K, D);
    // row 0: cls; l 0 ← y[2]; l 1 mask; l 2 ← y[1]; l 3 mask
    EXPECT_EQ(z, (Vec{7, 8, 0.125, 1.125, -0.75, -1.75, 20.375, 21.375, -0.5, -1.5})) << Bk::name;

    Vec dx = {1, 2, 3, 4, 5, 6}, dtok(L * D, 0.0), dcls(D, 0.0);
    Bk::encoder_embed_backward(dtok.data(), dcls.data(), dx.data(), shuf.data(), B, L, K, D);
    EXPECT_EQ(dtok, (Vec{5, 6, 0, 0, 3, 4, 0, 0})) << Bk::name;
    EXPECT_EQ(dcls, (Vec{1, 2})) << Bk::name;
    Vec dz = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, dy((1 + K) * D, 0.0), dmt(D, 0.0);
    Bk::decoder_embed_backward(dy.data(), dmt.data(), dz.data(), rest.data(), B, L, K, D);
    EXPECT_EQ(dy, (Vec{1, 2, 7, 8, 3, 4})) << Bk::name;
    EXPECT_EQ(dmt, (Vec{5 + 9, 6 + 10})) << Bk::name;
  });
}

TEST(Embed, DecoderPutsEncoderTokensBackInPlace) {
  // With zero position tables, decoder_embed(encoder_embed(tok)) restores every kept patch to its original index
  // and fills removed ones (mask == 1) with the mask token.
  const int B = 3, L = 12, D = 4;
  for (int K : {1, 5, 11, 12}) {
    const Masking m = masking(B, L, K);
    const std::vector<int> shuf(m.ids_shuffle.begin(), m.ids_shuffle.end());
    const std::vector<int> rest(m.ids_restore.begin(), m.ids_restore.end());
    const Vec tok = randn(size_t(B) * L * D, 81), cls = randn(D, 82), mt = randn(D, 83);
    const Vec pos(size_t(1 + L) * D, 0.0);
    for_host_backends<double>([&]<class Bk>() {
      Vec x(size_t(B) * (1 + K) * D), z(size_t(B) * (1 + L) * D);
      Bk::encoder_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), shuf.data(), B, L, K, D);
      Bk::decoder_embed_forward(z.data(), x.data(), mt.data(), pos.data(), rest.data(), B, L, K, D);
      for (int b = 0; b < B; ++b) {
        for (int d = 0; d < D; ++d) EXPECT_EQ(z[size_t(b) * (1 + L) * D + d], cls[d]);
        for (int l = 0; l < L; ++l)
          for (int d = 0; d < D; ++d)
            EXPECT_EQ(z[(size_t(b) * (1 + L) + 1 + l) * D + d],
                      m.mask[size_t(b) * L + l] ? mt[d] : tok[(size_t(b) * L + l) * D + d])
                << Bk::name << " K " << K << " b " << b << " l " << l;
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loss

TEST(Loss, NormalizeTargetIsUnbiasedWithEpsInsideSqrt) {
  for_host_backends<double>([&]<class Bk>() {
    Vec row = {1, 2, 3, 4}, out(4);
    Bk::normalize_target(out.data(), row.data(), 1, 4);
    const double s = std::sqrt(5.0 / 3.0 + 1e-6);  // torch.var([1,2,3,4]) = 5/3
    expect_close(out, Vec{-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, 1e-15, 1e-15, std::string(Bk::name) + " hand");
    // A constant patch: var 0, so (x − mean) / sqrt(1e-6) = 0, no NaN.
    Vec flat = {3, 3, 3}, fo(3, 9.0);
    Bk::normalize_target(fo.data(), flat.data(), 1, 3);
    EXPECT_EQ(fo, (Vec{0, 0, 0})) << Bk::name;
  });
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
  for_host_backends<double>([&]<class Bk>() {
    Vec out(x.size()), in = x;
    Bk::normalize_target(out.data(), x.data(), N, P);
    Bk::normalize_target(in.data(), in.data(), N, P);
    expect_close(out, want, 1e-13, 1e-13, std::string(Bk::name) + " formula");
    expect_close(in, want, 1e-13, 1e-13, std::string(Bk::name) + " in place");
  });
}

TEST(Loss, HandWrittenMaskedMean) {
  // B 1, L 3, P 2; mask [1, 0, 1]: loss = (mean((p1 − t0)²) + mean((p3 − t2)²)) / 2; cls row and kept row ignored.
  const Vec pred = {1e6, -1e6, /*l0*/ 1, 2, /*l1*/ 100, 100, /*l2*/ 0, 4};
  const Vec target = {0, 0, 0, 0, 1, 1};
  const Vec mask = {1, 0, 1};
  const double want = ((1.0 + 4.0) / 2 + (1.0 + 9.0) / 2) / 2;
  for_host_backends<double>([&]<class Bk>() {
    EXPECT_DOUBLE_EQ(Bk::masked_mse_forward(pred.data(), target.data(), mask.data(), 1, 3, 2), want) << Bk::name;
    Vec dpred(pred.size(), 0.0);
    Bk::masked_mse_backward(dpred.data(), 2.0, pred.data(), target.data(), mask.data(), 1, 3, 2);
    // ∂/∂pred = dloss · 2 (pred − target) / (P · Σmask) = (pred − target) on removed rows
    EXPECT_EQ(dpred, (Vec{0, 0, 1, 2, 0, 0, -1, 3})) << Bk::name;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// ViT classifier ops

TEST(ResidualScale, HandCase) {
  // B = 2, n = 3: sample 0 kept with 1/(1-0.25), sample 1 dropped
  const Vec x = {1, 2, 3, 4, 5, 6}, br = {10, 20, 30, 40, 50, 60}, s = {4.0 / 3.0, 0.0};
  for_host_backends<double>([&]<class Bk>() {
    Vec out(6);
    Bk::residual_scale_forward(out.data(), x.data(), br.data(), s.data(), 2, 3);
    EXPECT_DOUBLE_EQ(out[0], 1 + 40.0 / 3.0) << Bk::name;
    EXPECT_DOUBLE_EQ(out[2], 3 + 40.0) << Bk::name;
    EXPECT_EQ(out[3], 4) << Bk::name;
    EXPECT_EQ(out[5], 6) << Bk::name;
  });
}

TEST(VitEmbed, HandCase) {
  // B = 2, L = 2, D = 1: x[b] = [cls + pos0, tok[b,0] + pos1, tok[b,1] + pos2]
  const Vec tok = {1, 2, 3, 4}, cls = {10}, pos = {100, 200, 300}, dx = {1, 2, 3, 4, 5, 6};
  for_host_backends<double>([&]<class Bk>() {
    Vec x(6), dtok(4, 0), dcls(1, 0), dpos(3, 0);
    Bk::vit_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), 2, 2, 1);
    EXPECT_EQ(x, (Vec{110, 201, 302, 110, 203, 304})) << Bk::name;
    Bk::vit_embed_backward(dtok.data(), dcls.data(), dpos.data(), dx.data(), 2, 2, 1);
    EXPECT_EQ(dtok, (Vec{2, 3, 5, 6})) << Bk::name;
    EXPECT_EQ(dcls[0], 5) << Bk::name;
    EXPECT_EQ(dpos, (Vec{5, 7, 9})) << Bk::name;
  });
}

TEST(TokenPool, HandCase) {
  // B = 1, Tn = 3, D = 2: mean of rows 1, 2 (not the cls row 0), or row 0
  const Vec x = {100, 200, 1, 2, 3, 6}, g = {2, 4};
  for_host_backends<double>([&]<class Bk>() {
    Vec out(2), dx(6, 1);
    Bk::token_pool_forward(out.data(), x.data(), 1, 3, 2, true);
    EXPECT_EQ(out, (Vec{2, 4})) << Bk::name;
    Bk::token_pool_forward(out.data(), x.data(), 1, 3, 2, false);
    EXPECT_EQ(out, (Vec{100, 200})) << Bk::name;
    Bk::token_pool_backward(dx.data(), g.data(), 1, 3, 2, true);
    EXPECT_EQ(dx, (Vec{1, 1, 2, 3, 2, 3})) << Bk::name;
  });
}

}  // namespace
}  // namespace mae::test
