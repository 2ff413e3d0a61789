// Dense ops (linear, layernorm, gelu, add, the fused residual + LayerNorm and linear + GELU, adamw): what the op ×
// backend harness (tests/op_cases.h: finite differences, cpu vs ref, the += rule, guards, aliasing) does not check —
// values against their definitions, PyTorch and hand computations, the vectorised float math against libm, the
// fused ops' bits against the unfused sequences, and aliasing of a gradient with dout. Both host backends run each
// test through for_host_backends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "op_harness.h"
#include "ops/cpu/fast_math.h"

namespace mae::test {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// linear

TEST(Linear, NoBiasIsZeroBias) {
  const int N = 5, I = 7, O = 3;
  const Vec in = randn(size_t(N) * I, 20), W = randn(size_t(O) * I, 21), zero(O, 0.0);
  for_host_backends<double>([&]<class Bk>() {
    Vec a(N * O), b(N * O);
    Bk::linear_forward(a.data(), in.data(), W.data(), nullptr, N, I, O);
    Bk::linear_forward(b.data(), in.data(), W.data(), zero.data(), N, I, O);
    expect_close(a, b, 0, 0, std::string("no bias ") + Bk::name);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// layernorm

TEST(LayerNorm, ForwardMatchesDefinition) {
  // Normalised rows have mean 0 and biased variance var/(var+eps) before the affine part (w 1, b 0).
  const int N = 5, C = 11;
  const double eps = 1e-5;
  Vec x = randn(size_t(N) * C, 3);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) x[n * C + c] = 0.5 + 0.3 * n + (1.0 + 0.1 * n) * x[n * C + c];
  const Vec w(C, 1.0), b(C, 0.0);
  for_host_backends<double>([&]<class Bk>() {
    Vec y(x.size()), mean(N), rstd(N);
    Bk::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, eps);
    for (int n = 0; n < N; ++n) {
      double m = 0, v = 0, xm = 0, vy = 0;
      for (int c = 0; c < C; ++c) m += y[n * C + c] / C, xm += x[n * C + c] / C;
      for (int c = 0; c < C; ++c) v += std::pow(x[n * C + c] - xm, 2) / C;
      for (int c = 0; c < C; ++c) vy += std::pow(y[n * C + c], 2) / C;
      EXPECT_NEAR(m, 0.0, 1e-14) << Bk::name;
      EXPECT_NEAR(vy, v / (v + eps), 1e-13) << Bk::name;
      EXPECT_NEAR(mean[n], xm, 1e-13) << Bk::name;
      EXPECT_NEAR(rstd[n], 1 / std::sqrt(v + eps), 1e-12) << Bk::name;
    }
  });
}

TEST(LayerNorm, FloatStatisticsSurviveLargeMean) {
  // A float row with mean 1e4 and spread 1: a one-pass E[x²] − E[x]² in float would lose the variance entirely.
  const int N = 3, C = 192;
  Vec xd = randn(size_t(N) * C, 40);
  for (auto& v : xd) v += 1e4;
  const std::vector<float> x = cast<float>(xd), w(C, 1.0f), b(C, 0.0f);
  std::vector<float> out(x.size()), mean(N), rstd(N);
  std::vector<double> outd(x.size()), meand(N), rstdd(N);
  const Vec xr(x.begin(), x.end()), wd(C, 1.0), bd(C, 0.0);
  cpu::layernorm_forward<float>(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
  ref::layernorm_forward<double>(outd.data(), meand.data(), rstdd.data(), xr.data(), wd.data(), bd.data(), N, C, 1e-5);
  expect_close(rstd, rstdd, 1e-5, 0, "rstd");
  expect_close(out, outd, 0, 1e-3, "out");  // x − mean is exact to float's spacing at 1e4 (~1e-3)
}

// ---------------------------------------------------------------------------------------------------------------
// gelu

TEST(Gelu, ExactErfForm) {
  // Values of x·Φ(x) (not the tanh approximation, which differs by ~1e-4 near |x| = 2).
  const Vec x{-3.0, -1.0, 0.0, 0.5, 2.0};
  const Vec want{-0.00404969409489031, -0.15865525393145707, 0.0, 0.34573123063700656, 1.9544997361036416};
  for_host_backends<double>([&]<class Bk>() {
    Vec out(x.size());
    Bk::gelu_forward(out.data(), x.data(), x.size());
    expect_close(out, want, 1e-14, 1e-16, std::string("gelu ") + Bk::name);
  });
}

// The vectorised float exp and normal CDF behind the CPU float GELU and softmax, against double libm on dense
// grids (every 2^-12 of the range) plus the ends.
TEST(FastMath, ExpMatchesLibm) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 1.0 / 4096) {
    const float xf = float(x);
    const double want = std::exp(double(xf));
    worst = std::max(worst, std::abs(double(cpu::fast_exp(xf)) - want) / want);
  }
  EXPECT_LT(worst, 2e-7) << "fast_exp relative error";
  EXPECT_EQ(cpu::fast_exp(-88.0f), 0.0f);
  EXPECT_EQ(cpu::fast_exp(-1e30f), 0.0f);
  EXPECT_EQ(cpu::fast_exp(0.0f), 1.0f);
  EXPECT_TRUE(std::isfinite(cpu::fast_exp(1e30f)));
}

TEST(FastMath, NormalCdfMatchesErfc) {
  double worst_abs = 0, worst_rel = 0;
  for (double x = -12.0; x <= 12.0; x += 1.0 / 4096) {
    const float xf = float(x);
    const double want = 0.5 * std::erfc(-double(xf) / std::sqrt(2.0)), got = cpu::fast_phi(xf);
    worst_abs = std::max(worst_abs, std::abs(got - want));
    if (xf >= -5.5f) worst_rel = std::max(worst_rel, std::abs(got - want) / want);
  }
  EXPECT_LT(worst_abs, 3e-7) << "fast_phi absolute error";
  EXPECT_LT(worst_rel, 3e-6) << "fast_phi relative error for x >= -5.5";
  EXPECT_EQ(cpu::fast_phi(0.0f), 0.5f);
  EXPECT_EQ(cpu::fast_phi(-100.0f), 0.0f);
  EXPECT_EQ(cpu::fast_phi(100.0f), 1.0f);
}

TEST(Gelu, FloatCloseToDoubleEverywhere) {
  // The float kernel (fast_phi) against the double one (std::erf) across the range, tails included: each output
  // and input gradient within a few float roundings of the exact value.
  const size_t n = 200001;
  std::vector<double> xd(n), outd(n), dind(n, 0.0), doutd(n, 1.0);
  for (size_t i = 0; i < n; ++i) xd[i] = -10.0 + 20.0 * double(i) / double(n - 1);
  std::vector<float> xf = cast<float>(xd), outf(n), dinf(n, 0.0f), doutf(n, 1.0f);
  for (size_t i = 0; i < n; ++i) xd[i] = xf[i];  // compare on the same (float) inputs
  cpu::gelu_forward<double>(outd.data(), xd.data(), n);
  cpu::gelu_backward<double>(dind.data(), doutd.data(), xd.data(), n);
  cpu::gelu_forward<float>(outf.data(), xf.data(), n);
  cpu::gelu_backward<float>(dinf.data(), doutf.data(), xf.data(), n);
  // Error relative to the value, plus 3e-7 absolute: Φ(x) + x·φ(x) crosses zero near x = −0.75 by cancellation
  // of two terms of size ~0.2, so there only float rounding of those terms is meaningful.
  double worst_out = 0, worst_din = 0;
  for (size_t i = 0; i < n; ++i) {
    worst_out = std::max(worst_out, std::abs(outf[i] - outd[i]) / (3e-7 + 2e-6 * std::abs(outd[i])));
    worst_din = std::max(worst_din, std::abs(dinf[i] - dind[i]) / (3e-7 + 2e-6 * std::abs(dind[i])));
  }
  EXPECT_LT(worst_out, 1.0) << "gelu float forward: error / (3e-7 + 2e-6·|value|)";
  EXPECT_LT(worst_din, 1.0) << "gelu float backward: error / (3e-7 + 2e-6·|value|)";
}

TEST(Gelu, BackwardRecomputeIsForwardPlusBackward) {
  // The fused op of the MLP backward: act what gelu_forward writes, din what gelu_backward adds, on every host
  // backend, in float (the vectorised CPU kernel) and double, below and above the OpenMP threshold.
  auto check = [&]<class T>() {
    for_host_backends<T>([&]<class Bk>() {
      for (size_t n : {size_t(7), size_t(40000)}) {
        const std::vector<T> x = cast<T>(randn(n, 11, 2.5)), dout = cast<T>(randn(n, 12));
        const std::vector<T> din0 = cast<T>(randn(n, 13));
        std::vector<T> act(n, T(-7)), din = din0, want_act(n), want_din = din0;
        Bk::gelu_forward(want_act.data(), x.data(), n);
        Bk::gelu_backward(want_din.data(), dout.data(), x.data(), n);
        Bk::gelu_backward_recompute(act.data(), din.data(), dout.data(), x.data(), n);
        const std::string what = std::string(Bk::name) + (sizeof(T) == 4 ? " float" : " double") + " n " +
                                 std::to_string(n);
        // float: the same bits (the same inlined arithmetic); double: the two loops may round a few ulps apart
        // (seen on the CPU backend at n = 40000, the vectorised and OpenMP-split case).
        const double tol = sizeof(T) == 4 ? 0.0 : 1e-14;
        for (size_t i = 0; i < n; ++i) {
          ASSERT_LE(std::abs(double(act[i]) - double(want_act[i])), tol * (1 + std::abs(double(want_act[i]))))
              << what << " act at " << i;
          ASSERT_LE(std::abs(double(din[i]) - double(want_din[i])), tol * (1 + std::abs(double(want_din[i]))))
              << what << " din at " << i;
        }
        std::vector<T> only(n, T(0));  // no din: the recomputation alone
        Bk::gelu_backward_recompute(only.data(), static_cast<T*>(nullptr), dout.data(), x.data(), n);
        for (size_t i = 0; i < n; ++i)
          ASSERT_LE(std::abs(double(only[i]) - double(want_act[i])), tol * (1 + std::abs(double(want_act[i]))))
              << what << " act alone at " << i;
      }
    });
  };
  check.template operator()<float>();
  check.template operator()<double>();
}

// ---------------------------------------------------------------------------------------------------------------
// add

TEST(Add, BackwardGradientAliasesDout) {
  // The skip path of a residual: dx (the same buffer as dout) += dout, the branch's gradient gets dout too.
  for_host_backends<double>([&]<class Bk>() {
    for (size_t n : {size_t(13), size_t(3 * 197 * 192)}) {
      Vec d = randn(n, 52), db(n, 0.0), dwant(n);
      for (size_t i = 0; i < n; ++i) dwant[i] = 2 * d[i];
      const Vec d0 = d;
      Bk::add_backward(d.data(), db.data(), d.data(), n);
      expect_close(d, dwant, 0, 0, std::string("add_backward da aliases dout ") + Bk::name);
      expect_close(db, d0, 0, 0, std::string("add_backward db with da aliasing dout ") + Bk::name);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// fused forward ops: the same bits as the unfused sequences they replace (ref and cpu, float and double), with and
// without a drop-path scale and with the sum aliasing an input, as the blocks call them. (Their named backward,
// the unfused ops' backward, is checked against finite differences by the harness.)

struct Shape {
  int B, Tn, C;
  size_t rows() const { return size_t(B) * Tn; }
  size_t n() const { return rows() * C; }
};

// A per-sample scale with a dropped sample (0) and kept ones (1/keep); empty = no drop path.
template <class T> std::vector<T> drop_scale(int B, bool on) {
  std::vector<T> s;
  if (on)
    for (int b = 0; b < B; ++b) s.push_back(b % 3 == 1 ? T(0) : T(1.25));
  return s;
}

// Fused vs unfused for one backend namespace; alias: 0 = separate sum, 1 = sum aliases branch, 2 = sum aliases x.
template <class T, class Fused, class Unfused>
void residual_ln_identical(const Shape& sh, bool with_scale, int alias, Fused fused, Unfused unfused,
                           const std::string& what) {
  const auto x0 = cast<T>(randn(sh.n(), 1, 1.5)), br0 = cast<T>(randn(sh.n(), 2)), w = cast<T>(randn(sh.C, 3));
  const auto bias = cast<T>(randn(sh.C, 4));
  const auto scale = drop_scale<T>(sh.B, with_scale);
  const T* sc = with_scale ? scale.data() : nullptr;
  std::vector<T> x = x0, br = br0, sum(sh.n()), out(sh.n()), mean(sh.rows()), rstd(sh.rows());
  T* sum_p = alias == 1 ? br.data() : alias == 2 ? x.data() : sum.data();
  fused(sum_p, out.data(), mean.data(), rstd.data(), x.data(), br.data(), sc, w.data(), bias.data(), sh.B, sh.Tn,
        sh.C, T(1e-6));
  std::vector<T> usum(sh.n()), uout(sh.n()), umean(sh.rows()), urstd(sh.rows());
  unfused(usum.data(), uout.data(), umean.data(), urstd.data(), x0.data(), br0.data(), sc, w.data(), bias.data(),
          sh.B, sh.Tn, sh.C, T(1e-6));
  const std::vector<T> got_sum(sum_p, sum_p + sh.n());
  EXPECT_EQ(got_sum, usum) << what << " sum";
  EXPECT_EQ(out, uout) << what << " out";
  EXPECT_EQ(mean, umean) << what << " mean";
  EXPECT_EQ(rstd, urstd) << what << " rstd";
}

template <class T> void residual_ln_all(const Shape& sh) {
  auto cpu_unfused = [](T* sum, T* out, T* mean, T* rstd, const T* x, const T* br, const T* sc, const T* w,
                        const T* b, int B, int Tn, int C, T eps) {
    if (sc) cpu::residual_scale_forward(sum, x, br, sc, B, size_t(Tn) * C);
    else cpu::add_forward(sum, br, x, size_t(B) * Tn * C);  // the order the blocks used: branch + x
    cpu::layernorm_forward(out, mean, rstd, sum, w, b, B * Tn, C, eps);
  };
  auto ref_unfused = [](T* sum, T* out, T* mean, T* rstd, const T* x, const T* br, const T* sc, const T* w,
                        const T* b, int B, int Tn, int C, T eps) {
    if (sc) ref::residual_scale_forward(sum, x, br, sc, B, size_t(Tn) * C);
    else ref::add_forward(sum, x, br, size_t(B) * Tn * C);
    ref::layernorm_forward(out, mean, rstd, sum, w, b, B * Tn, C, eps);
  };
  for (bool with_scale : {false, true})
    for (int alias : {0, 1, 2}) {
      const std::string what = std::string(with_scale ? "scale" : "no scale") + " alias " + std::to_string(alias);
      residual_ln_identical<T>(sh, with_scale, alias, cpu::residual_layernorm_forward<T>, cpu_unfused, "cpu " + what);
      residual_ln_identical<T>(sh, with_scale, alias, ref::residual_layernorm_forward<T>, ref_unfused, "ref " + what);
    }
}

TEST(ResidualLayerNorm, SameBitsAsAddThenLayerNorm) {
  residual_ln_all<double>({3, 5, 7});
  residual_ln_all<float>({3, 5, 7});
  residual_ln_all<float>({7, 50, 97});  // > the OpenMP threshold
}

template <class T> void linear_gelu_identical(int N, int I, int O, bool bias) {
  const auto in = cast<T>(randn(size_t(N) * I, 1)), W = cast<T>(randn(size_t(O) * I, 2, 0.3));
  const auto b = cast<T>(randn(O, 3));
  const T* bp = bias ? b.data() : nullptr;
  std::vector<T> pre(size_t(N) * O), act(pre.size()), upre(pre.size()), uact(pre.size());
  cpu::linear_gelu_forward(pre.data(), act.data(), in.data(), W.data(), bp, N, I, O);
  cpu::linear_forward(upre.data(), in.data(), W.data(), bp, N, I, O);
  cpu::gelu_forward(uact.data(), upre.data(), upre.size());
  EXPECT_EQ(pre, upre) << "cpu pre";
  EXPECT_EQ(act, uact) << "cpu act";
  ref::linear_gelu_forward(pre.data(), act.data(), in.data(), W.data(), bp, N, I, O);
  ref::linear_forward(upre.data(), in.data(), W.data(), bp, N, I, O);
  ref::gelu_forward(uact.data(), upre.data(), upre.size());
  EXPECT_EQ(pre, upre) << "ref pre";
  EXPECT_EQ(act, uact) << "ref act";
}

TEST(LinearGelu, SameBitsAsLinearThenGelu) {
  linear_gelu_identical<float>(37, 29, 23, true);
  linear_gelu_identical<float>(5, 3, 1, false);
  linear_gelu_identical<double>(17, 8, 32, true);
}

// ---------------------------------------------------------------------------------------------------------------
// adamw

template <class Bk>
void adamw(Vec& p, Vec& m, Vec& v, const Vec& g, float lr, float b1, float b2, float eps, float wd, long t) {
  Bk::adamw_update(p.data(), m.data(), v.data(), g.data(), p.size(), lr, b1, b2, eps, wd, t);
}

TEST(AdamW, TwoStepsByHand) {
  // Hyper-parameters exact in binary so the expected values are exact fractions:
  // lr 1/8, β1 1/2, β2 3/4, eps 0, wd 1/2 (decay factor 1 − lr·wd = 15/16).
  // Step 1, p 1, g 1/2:  p = 15/16;  m = 1/4;  v = 1/16;  step_size = (1/8)/(1/2) = 1/4;
  //   denom = sqrt(1/16)/sqrt(1/4) = 1/2;  p = 15/16 − (1/4)(1/4)/(1/2) = 13/16.
  // Step 2, g −1:  p = (13/16)(15/16);  m = 1/8 − 1/2 = −3/8;  v = 3/64 + 1/4 = 19/64;
  //   step_size = (1/8)/(3/4) = 1/6;  denom = sqrt(19/64)/sqrt(7/16) = sqrt(19/28);  p += (1/6)(3/8)/sqrt(19/28).
  const double p1 = 13.0 / 16, p2 = p1 * 15.0 / 16 + (1.0 / 16) / std::sqrt(19.0 / 28);
  for_host_backends<double>([&]<class Bk>() {
    Vec p{1.0}, m{0.0}, v{0.0};
    adamw<Bk>(p, m, v, {0.5}, 0.125f, 0.5f, 0.75f, 0.0f, 0.5f, 1);
    EXPECT_NEAR(p[0], p1, 1e-15) << Bk::name;
    EXPECT_EQ(m[0], 0.25);
    EXPECT_EQ(v[0], 1.0 / 16);
    adamw<Bk>(p, m, v, {-1.0}, 0.125f, 0.5f, 0.75f, 0.0f, 0.5f, 2);
    EXPECT_NEAR(p[0], p2, 1e-15) << Bk::name;
    EXPECT_EQ(m[0], -3.0 / 8);
    EXPECT_EQ(v[0], 19.0 / 64);
  });
}

TEST(AdamW, MatchesTorch) {
  // torch 1.13, float64 params: AdamW([p], lr, betas, eps, weight_decay) with the float32-rounded values of
  // lr 1e-3, β (0.9, 0.95), eps 1e-8, wd 0.05, three steps with the gradients below.
  const std::vector<double> p0{0.5, -1.25, 2.0, 0.0, 3.0};
  const std::vector<std::vector<double>> gs{
      {0.1, -0.2, 0.3, 1e-9, -4.0}, {-0.3, 0.5, 0.0, 2.0, 1.0}, {0.25, 0.25, -1.0, -1.0, 0.5}};
  const std::vector<double> p_want{0.4993184374764791, -1.2498291840516158, 1.9984752143476696,
                                   -0.0010533921942113538, 3.0013146279863507};
  const std::vector<double> m_want{0.006100001740455701, 0.053800012493133445, -0.07570001933574705,
                                   0.08000001438611362, -0.18400002908706337};
  const std::vector<double> v_want{0.00785125180691479, 0.016805003812313035, 0.054061262787282446,
                                   0.24000005483627262, 0.7820001677274661};
  for_host_backends<double>([&]<class Bk>() {
    Vec p = p0, m(5, 0.0), v(5, 0.0);
    for (long t = 1; t <= 3; ++t) adamw<Bk>(p, m, v, gs[t - 1], 1e-3f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
    expect_close(p, p_want, 1e-14, 1e-16, std::string("p ") + Bk::name);
    expect_close(m, m_want, 1e-14, 1e-16, std::string("m ") + Bk::name);
    expect_close(v, v_want, 1e-14, 1e-16, std::string("v ") + Bk::name);
  });
}

TEST(AdamW, DecayIsMultiplicativeAndFirst) {
  for_host_backends<double>([&]<class Bk>() {
    // Zero gradient and zero moments: the Adam step is 0/eps = 0, so only p *= 1 − lr·wd remains.
    Vec p{2.0, -3.0, 0.0}, m(3, 0.0), v(3, 0.0);
    adamw<Bk>(p, m, v, {0.0, 0.0, 0.0}, 0.125f, 0.9f, 0.999f, 1e-8f, 0.5f, 1);
    expect_close(p, std::vector<double>{2.0 * 15 / 16, -3.0 * 15 / 16, 0.0}, 0, 0,
                 std::string("zero-grad decay ") + Bk::name);
    // Zero gradient with moments from earlier steps: decay applies to p before the Adam step is subtracted
    // (p·(1 − lr·wd) − u, not (p − u)·(1 − lr·wd)). lr 1/8, β1 1/2, β2 3/4, eps 0, wd 1/2, t = 2:
    // m = 1/4, v = 3/16, step_size = 1/6, denom = sqrt(3/16)/sqrt(7/16) = sqrt(3/7).
    Vec q{2.0}, mq{0.5}, vq{0.25};
    adamw<Bk>(q, mq, vq, {0.0}, 0.125f, 0.5f, 0.75f, 0.0f, 0.5f, 2);
    const double u = (1.0 / 6) * 0.25 / std::sqrt(3.0 / 7);
    EXPECT_NEAR(q[0], 2.0 * 15 / 16 - u, 1e-15) << Bk::name;
    EXPECT_GT(std::abs(q[0] - (2.0 - u) * 15 / 16), 1e-3);  // the other order is distinguishable here
  });
}

}  // namespace
}  // namespace mae::test
