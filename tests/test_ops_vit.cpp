// The ViT classifier ops (residual with per-sample drop-path scale, cls + learned pos embedding, token pooling) in
// both backends: ref backward vs central finite differences in double on odd shapes, cpu vs ref, hand-written
// tiny cases, the accumulate rule and nullptr gradient outputs.
#include <gtest/gtest.h>

#include <vector>

#include "gradcheck.h"
#include "ops/ops.h"

namespace mae::test {
namespace {

template <class T> Vec to_vec(const std::vector<T>& v) { return Vec(v.begin(), v.end()); }

// ---------------------------------------------------------------------------------------------- residual_scale

TEST(ResidualScale, HandCase) {
  // B = 2, n = 3: sample 0 kept with 1/(1-0.25), sample 1 dropped
  std::vector<double> x = {1, 2, 3, 4, 5, 6}, br = {10, 20, 30, 40, 50, 60}, s = {4.0 / 3.0, 0.0}, out(6);
  ref::residual_scale_forward(out.data(), x.data(), br.data(), s.data(), 2, 3);
  EXPECT_DOUBLE_EQ(out[0], 1 + 40.0 / 3.0);
  EXPECT_DOUBLE_EQ(out[2], 3 + 40.0);
  EXPECT_EQ(out[3], 4);
  EXPECT_EQ(out[5], 6);
}

TEST(ResidualScale, FiniteDifferencesAndBackends) {
  const int B = 3;
  const size_t n = 7;
  Vec x = randn(B * n, 1), br = randn(B * n, 2), r = randn(B * n, 3);
  const Vec s = {1.25, 0.0, 0.7};
  auto f = [&] {
    Vec out(B * n);
    ref::residual_scale_forward(out.data(), x.data(), br.data(), s.data(), B, n);
    return dot(r, out);
  };
  Vec dx(B * n, 0.5), dbr(B * n, -0.25);  // pre-filled: backward accumulates
  ref::residual_scale_backward(dx.data(), dbr.data(), r.data(), s.data(), B, n);
  Vec gx = numeric_grad(x, f), gb = numeric_grad(br, f);
  for (auto& v : gx) v += 0.5;
  for (auto& v : gb) v -= 0.25;
  expect_close(dx, gx, 1e-7, 1e-8, "dx");
  expect_close(dbr, gb, 1e-7, 1e-8, "dbranch");

  // cpu == ref (exactly: same element-wise expression), in place (out aliases branch) and with nullptr outputs
  Vec o_ref(B * n), o_cpu = br;
  ref::residual_scale_forward(o_ref.data(), x.data(), br.data(), s.data(), B, n);
  cpu::residual_scale_forward(o_cpu.data(), x.data(), o_cpu.data(), s.data(), B, n);
  expect_close(o_cpu, o_ref, 0, 0, "forward cpu (in place) vs ref");
  Vec c_dx(B * n, 0.5), c_dbr(B * n, -0.25);
  cpu::residual_scale_backward(c_dx.data(), c_dbr.data(), r.data(), s.data(), B, n);
  expect_close(c_dx, dx, 0, 0, "cpu dx");
  expect_close(c_dbr, dbr, 0, 0, "cpu dbranch");
  Vec only(B * n, 0);
  cpu::residual_scale_backward<double>(nullptr, only.data(), r.data(), s.data(), B, n);
  for (size_t i = 0; i < only.size(); ++i) EXPECT_EQ(only[i], s[i / n] * r[i]);
}

TEST(ResidualScale, FloatCpuMatchesRefOnLargeTensor) {  // big enough for the OpenMP path
  const int B = 5;
  const size_t n = 40000;
  auto x = cast<float>(randn(B * n, 4)), br = cast<float>(randn(B * n, 5)), g = cast<float>(randn(B * n, 6));
  std::vector<float> s = {1.1f, 0.f, 1.f, 2.f, 0.5f}, a(B * n), b(B * n), da(B * n, 0), db(B * n, 0), ea(B * n, 0),
                     eb(B * n, 0);
  ref::residual_scale_forward(a.data(), x.data(), br.data(), s.data(), B, n);
  cpu::residual_scale_forward(b.data(), x.data(), br.data(), s.data(), B, n);
  expect_close(b, a, 0, 0, "float forward");
  ref::residual_scale_backward(da.data(), db.data(), g.data(), s.data(), B, n);
  cpu::residual_scale_backward(ea.data(), eb.data(), g.data(), s.data(), B, n);
  expect_close(ea, da, 0, 0, "float dx");
  expect_close(eb, db, 0, 0, "float dbranch");
}

// ---------------------------------------------------------------------------------------------------- vit_embed

TEST(VitEmbed, HandCase) {
  // B = 2, L = 2, D = 1: x[b] = [cls + pos0, tok[b,0] + pos1, tok[b,1] + pos2]
  std::vector<double> tok = {1, 2, 3, 4}, cls = {10}, pos = {100, 200, 300}, x(6);
  ref::vit_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), 2, 2, 1);
  EXPECT_EQ(x, (std::vector<double>{110, 201, 302, 110, 203, 304}));
  std::vector<double> dx = {1, 2, 3, 4, 5, 6}, dtok(4, 0), dcls(1, 0), dpos(3, 0);
  ref::vit_embed_backward(dtok.data(), dcls.data(), dpos.data(), dx.data(), 2, 2, 1);
  EXPECT_EQ(dtok, (std::vector<double>{2, 3, 5, 6}));
  EXPECT_EQ(dcls[0], 5);
  EXPECT_EQ(dpos, (std::vector<double>{5, 7, 9}));
}

template <class T> void embed_backends(int B, int L, int D, double tol) {
  auto tok = cast<T>(randn(size_t(B) * L * D, 11)), cls = cast<T>(randn(D, 12)), pos = cast<T>(randn((1 + L) * D, 13));
  auto dx = cast<T>(randn(size_t(B) * (1 + L) * D, 14));
  std::vector<T> a(dx.size()), b(dx.size());
  ref::vit_embed_forward(a.data(), tok.data(), cls.data(), pos.data(), B, L, D);
  cpu::vit_embed_forward(b.data(), tok.data(), cls.data(), pos.data(), B, L, D);
  expect_close(b, a, 0, 0, "embed forward");
  std::vector<T> rt(tok.size(), T(1)), rc(D, T(1)), rp(pos.size(), T(1));
  auto ct = rt, cc = rc, cp = rp;
  ref::vit_embed_backward(rt.data(), rc.data(), rp.data(), dx.data(), B, L, D);
  cpu::vit_embed_backward(ct.data(), cc.data(), cp.data(), dx.data(), B, L, D);
  expect_close(ct, rt, tol, tol, "dtok");
  expect_close(cc, rc, tol, tol, "dcls");
  expect_close(cp, rp, tol, tol, "dpos");
}

TEST(VitEmbed, FiniteDifferencesAndBackends) {
  const int B = 3, L = 5, D = 7;
  Vec tok = randn(size_t(B) * L * D, 1), cls = randn(D, 2), pos = randn((1 + L) * D, 3);
  Vec r = randn(size_t(B) * (1 + L) * D, 4);
  auto f = [&] {
    Vec x(r.size());
    ref::vit_embed_forward(x.data(), tok.data(), cls.data(), pos.data(), B, L, D);
    return dot(r, x);
  };
  Vec dtok(tok.size(), 0), dcls(D, 0), dpos(pos.size(), 0);
  ref::vit_embed_backward(dtok.data(), dcls.data(), dpos.data(), r.data(), B, L, D);
  expect_close(dtok, numeric_grad(tok, f), 1e-7, 1e-8, "dtok");
  expect_close(dcls, numeric_grad(cls, f), 1e-7, 1e-8, "dcls");
  expect_close(dpos, numeric_grad(pos, f), 1e-7, 1e-8, "dpos");
  // nullptr outputs are skipped
  Vec only(pos.size(), 0);
  cpu::vit_embed_backward<double>(nullptr, nullptr, only.data(), r.data(), B, L, D);
  expect_close(only, dpos, 1e-12, 1e-12, "dpos alone");
  embed_backends<double>(B, L, D, 1e-12);
  embed_backends<float>(9, 196, 40, 1e-5);  // OpenMP path
}

// --------------------------------------------------------------------------------------------------- token_pool

TEST(TokenPool, HandCase) {
  // B = 1, Tn = 3, D = 2: mean of rows 1, 2 (not the cls row 0), or row 0
  std::vector<double> x = {100, 200, 1, 2, 3, 6}, out(2);
  ref::token_pool_forward(out.data(), x.data(), 1, 3, 2, true);
  EXPECT_EQ(out, (std::vector<double>{2, 4}));
  ref::token_pool_forward(out.data(), x.data(), 1, 3, 2, false);
  EXPECT_EQ(out, (std::vector<double>{100, 200}));
  std::vector<double> g = {2, 4}, dx(6, 1);
  ref::token_pool_backward(dx.data(), g.data(), 1, 3, 2, true);
  EXPECT_EQ(dx, (std::vector<double>{1, 1, 2, 3, 2, 3}));
}

TEST(TokenPool, FiniteDifferencesAndBackends) {
  for (bool mean : {true, false}) {
    const int B = 3, Tn = 6, D = 5;
    Vec x = randn(size_t(B) * Tn * D, 7), r = randn(size_t(B) * D, 8);
    auto f = [&] {
      Vec o(size_t(B) * D);
      ref::token_pool_forward(o.data(), x.data(), B, Tn, D, mean);
      return dot(r, o);
    };
    Vec dx(x.size(), 0.125);
    ref::token_pool_backward(dx.data(), r.data(), B, Tn, D, mean);
    Vec num = numeric_grad(x, f);
    for (auto& v : num) v += 0.125;
    expect_close(dx, num, 1e-7, 1e-8, mean ? "mean dx" : "cls dx");
    Vec a(size_t(B) * D), b(size_t(B) * D), cdx(x.size(), 0.125);
    ref::token_pool_forward(a.data(), x.data(), B, Tn, D, mean);
    cpu::token_pool_forward(b.data(), x.data(), B, Tn, D, mean);
    expect_close(b, a, 0, 0, "pool forward cpu vs ref");
    cpu::token_pool_backward(cdx.data(), r.data(), B, Tn, D, mean);
    expect_close(cdx, dx, 0, 0, "pool backward cpu vs ref");
  }
  // float, OpenMP path
  const int B = 8, Tn = 197, D = 48;
  auto x = cast<float>(randn(size_t(B) * Tn * D, 9));
  std::vector<float> a(size_t(B) * D), b(size_t(B) * D);
  ref::token_pool_forward(a.data(), x.data(), B, Tn, D, true);
  cpu::token_pool_forward(b.data(), x.data(), B, Tn, D, true);
  expect_close(b, a, 0, 0, "float pool");
}

}  // namespace
}  // namespace mae::test
