// Dense ops (linear, layernorm, gelu, add, adamw) in both backends:
//   1. the ref backward against central finite differences (double, odd shapes, every gradient output);
//   2. cpu against ref in double and float, forward outputs, saved statistics and gradients, odd and larger shapes;
//   3. the gradient rule: backward accumulates into pre-filled buffers, and nullptr outputs are skipped;
//   4. AdamW against hand-computed steps and against torch.optim.AdamW numbers.
// Each op is a small struct (inputs, forward, backward over either backend) driven by the same checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "ops/cpu/fast_math.h"
#include "ops/ops.h"

namespace mae::test {
namespace {

enum class Be { Ref, Cpu };
const char* be_name(Be be) { return be == Be::Ref ? "ref" : "cpu"; }

// Calls mae::ref::fn<T> or mae::cpu::fn<T>; T must name the element type at the call site.
#define MAE_DISPATCH(be, fn, ...) ((be) == Be::Ref ? ::mae::ref::fn<T>(__VA_ARGS__) : ::mae::cpu::fn<T>(__VA_ARGS__))

template <class T> using Tens = std::vector<std::vector<T>>;

template <class T> Tens<T> cast_all(const Tens<double>& v) {
  Tens<T> r;
  for (const auto& t : v) r.push_back(cast<T>(t));
  return r;
}

template <class T> std::vector<T*> ptrs(Tens<T>& v) {
  std::vector<T*> p;
  for (auto& t : v) p.push_back(t.data());
  return p;
}

// Backend comparison: elementwise rtol, plus an atol of tol·max|want| so elements that cancel to near zero
// (GEMM outputs, row means) are judged against the tensor's scale rather than their own.
template <class A, class B> void expect_near(const A& got, const B& want, double tol, const std::string& what) {
  double scale = 0;
  for (const auto& w : want) scale = std::max(scale, std::abs(double(w)));
  expect_close(got, want, tol, tol * scale + 1e-300, what);
}

// ---------------------------------------------------------------------------------------------------------------
// Op descriptions. inputs(): the (differentiable) inputs in the order of grads; forward(): {out, saved stats...};
// backward(): grads in the order of inputs, nullptr = skip.

struct LinearOp {
  int N, I, O;
  bool bias = true;
  std::string name() const {
    return "linear N=" + std::to_string(N) + " I=" + std::to_string(I) + " O=" + std::to_string(O) +
           (bias ? "" : " no-bias");
  }
  std::vector<std::string> input_names() const { return {"in", "W", "b"}; }
  Tens<double> inputs(unsigned seed) const {
    Tens<double> x{randn(size_t(N) * I, seed), randn(size_t(O) * I, seed + 1, 1.0 / std::sqrt(double(I)))};
    if (bias) x.push_back(randn(O, seed + 2));
    return x;
  }
  template <class T> Tens<T> forward(Be be, const Tens<T>& x) const {
    std::vector<T> out(size_t(N) * O);
    MAE_DISPATCH(be, linear_forward, out.data(), x[0].data(), x[1].data(), bias ? x[2].data() : nullptr, N, I, O);
    return {out};
  }
  template <class T>
  void backward(Be be, const std::vector<T*>& g, const std::vector<T>& dout, const Tens<T>& x, const Tens<T>&) const {
    MAE_DISPATCH(be, linear_backward, g[0], g[1], bias ? g[2] : nullptr, dout.data(), x[0].data(), x[1].data(), N, I,
                 O);
  }
};

struct LayerNormOp {
  int N, C;
  double eps = 1e-5;
  std::string name() const { return "layernorm N=" + std::to_string(N) + " C=" + std::to_string(C); }
  std::vector<std::string> input_names() const { return {"in", "w", "b"}; }
  Tens<double> inputs(unsigned seed) const {
    // Rows with a non-zero mean and different spreads, and weights around 1, as in a trained network.
    Vec x = randn(size_t(N) * C, seed);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) x[size_t(n) * C + c] = 0.5 + 0.3 * n + (1.0 + 0.1 * (n % 7)) * x[size_t(n) * C + c];
    Vec w = randn(C, seed + 1, 0.2);
    for (auto& v : w) v += 1.0;
    return {x, w, randn(C, seed + 2, 0.2)};
  }
  template <class T> Tens<T> forward(Be be, const Tens<T>& x) const {
    std::vector<T> out(size_t(N) * C), mean(N), rstd(N);
    MAE_DISPATCH(be, layernorm_forward, out.data(), mean.data(), rstd.data(), x[0].data(), x[1].data(), x[2].data(), N,
                 C, T(eps));
    return {out, mean, rstd};
  }
  template <class T>
  void backward(Be be, const std::vector<T*>& g, const std::vector<T>& dout, const Tens<T>& x, const Tens<T>& y) const {
    MAE_DISPATCH(be, layernorm_backward, g[0], g[1], g[2], dout.data(), x[0].data(), x[1].data(), y[1].data(),
                 y[2].data(), N, C);
  }
};

struct GeluOp {
  size_t n;
  std::string name() const { return "gelu n=" + std::to_string(n); }
  std::vector<std::string> input_names() const { return {"in"}; }
  Tens<double> inputs(unsigned seed) const {
    Vec x = randn(n, seed, 2.0);
    const double special[] = {0.0, 1e-3, -1e-3, 5.0, -5.0, 8.0, -8.0};  // the origin and both tails
    for (size_t i = 0; i < std::min(n, std::size(special)); ++i) x[i] = special[i];
    return {x};
  }
  template <class T> Tens<T> forward(Be be, const Tens<T>& x) const {
    std::vector<T> out(n);
    MAE_DISPATCH(be, gelu_forward, out.data(), x[0].data(), n);
    return {out};
  }
  template <class T>
  void backward(Be be, const std::vector<T*>& g, const std::vector<T>& dout, const Tens<T>& x, const Tens<T>&) const {
    if (g[0]) MAE_DISPATCH(be, gelu_backward, g[0], dout.data(), x[0].data(), n);  // din is not optional
  }
};

struct AddOp {
  size_t n;
  std::string name() const { return "add n=" + std::to_string(n); }
  std::vector<std::string> input_names() const { return {"a", "b"}; }
  Tens<double> inputs(unsigned seed) const { return {randn(n, seed), randn(n, seed + 1)}; }
  template <class T> Tens<T> forward(Be be, const Tens<T>& x) const {
    std::vector<T> out(n);
    MAE_DISPATCH(be, add_forward, out.data(), x[0].data(), x[1].data(), n);
    return {out};
  }
  template <class T>
  void backward(Be be, const std::vector<T*>& g, const std::vector<T>& dout, const Tens<T>&, const Tens<T>&) const {
    MAE_DISPATCH(be, add_backward, g[0], g[1], dout.data(), n);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// The checks, generic over the op.

// 1. ref backward == central differences of f(x) = Σ r ⊙ forward(x)[0], for every input.
template <class Op> void check_finite_differences(const Op& op, unsigned seed) {
  SCOPED_TRACE(op.name());
  Tens<double> x = op.inputs(seed);
  const Tens<double> y = op.template forward<double>(Be::Ref, x);
  const Vec r = randn(y[0].size(), seed + 100);
  Tens<double> g;
  for (const auto& t : x) g.emplace_back(t.size(), 0.0);
  op.template backward<double>(Be::Ref, ptrs(g), r, x, y);
  for (size_t k = 0; k < x.size(); ++k) {
    const Vec num = numeric_grad(x[k], [&] { return dot(r, op.template forward<double>(Be::Ref, x)[0]); });
    expect_close(g[k], num, 1e-7, 1e-8, op.name() + ": d" + op.input_names()[k] + " vs finite differences");
  }
}

// 2. cpu == ref: every forward output (saved statistics included) and every gradient, starting from the same
//    pre-filled gradient buffers; each backend's backward consumes its own saved statistics.
template <class T, class Op> void check_backends(const Op& op, unsigned seed, double tol) {
  const std::string tag = op.name() + (sizeof(T) == 4 ? " float" : " double");
  SCOPED_TRACE(tag);
  const Tens<T> x = cast_all<T>(op.inputs(seed));
  const Tens<T> yr = op.template forward<T>(Be::Ref, x), yc = op.template forward<T>(Be::Cpu, x);
  ASSERT_EQ(yr.size(), yc.size());
  for (size_t j = 0; j < yr.size(); ++j) expect_near(yc[j], yr[j], tol, tag + ": forward output " + std::to_string(j));
  const std::vector<T> dout = cast<T>(randn(yr[0].size(), seed + 100));
  Tens<T> gr;
  for (size_t k = 0; k < x.size(); ++k) gr.push_back(cast<T>(randn(x[k].size(), seed + 200 + k)));
  Tens<T> gc = gr;
  op.template backward<T>(Be::Ref, ptrs(gr), dout, x, yr);
  op.template backward<T>(Be::Cpu, ptrs(gc), dout, x, yc);
  for (size_t k = 0; k < x.size(); ++k) expect_near(gc[k], gr[k], tol, tag + ": d" + op.input_names()[k]);
}

// 3. The gradient rule: backward(g0 + ·) = g0 + backward(0 + ·); a gradient computed alone (the others nullptr)
//    equals the one computed with all; all-nullptr is a no-op that does not crash.
template <class T, class Op> void check_accumulate(const Op& op, Be be, unsigned seed, double tol) {
  const std::string tag = op.name() + " " + be_name(be) + (sizeof(T) == 4 ? " float" : " double");
  SCOPED_TRACE(tag);
  const Tens<T> x = cast_all<T>(op.inputs(seed));
  const Tens<T> y = op.template forward<T>(be, x);
  const std::vector<T> dout = cast<T>(randn(y[0].size(), seed + 100));
  Tens<T> gz, g0;
  for (size_t k = 0; k < x.size(); ++k) {
    gz.emplace_back(x[k].size(), T(0));
    g0.push_back(cast<T>(randn(x[k].size(), seed + 300 + k, 10.0)));
  }
  Tens<T> gacc = g0;
  op.template backward<T>(be, ptrs(gz), dout, x, y);
  op.template backward<T>(be, ptrs(gacc), dout, x, y);
  for (size_t k = 0; k < x.size(); ++k) {
    std::vector<T> want(x[k].size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = g0[k][i] + gz[k][i];
    expect_near(gacc[k], want, tol, tag + ": accumulate into d" + op.input_names()[k]);
  }
  for (size_t k = 0; k < x.size(); ++k) {
    std::vector<T> only(x[k].size(), T(0));
    std::vector<T*> p(x.size(), nullptr);
    p[k] = only.data();
    op.template backward<T>(be, p, dout, x, y);
    expect_near(only, gz[k], tol, tag + ": d" + op.input_names()[k] + " alone");
  }
  op.template backward<T>(be, std::vector<T*>(x.size(), nullptr), dout, x, y);
}

template <class Op> void check_all_backends(const Op& op, unsigned seed) {
  check_backends<double>(op, seed, 1e-12);
  check_backends<float>(op, seed, 1e-5);
}

template <class Op> void check_all_accumulate(const Op& op, unsigned seed) {
  for (Be be : {Be::Ref, Be::Cpu}) {
    check_accumulate<double>(op, be, seed, 1e-14);
    check_accumulate<float>(op, be, seed, 1e-6);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// linear

TEST(Linear, BackwardMatchesFiniteDifferences) {
  check_finite_differences(LinearOp{5, 7, 3}, 1);
  check_finite_differences(LinearOp{5, 7, 3, false}, 2);
  check_finite_differences(LinearOp{1, 1, 1}, 3);
}

TEST(Linear, CpuMatchesRef) {
  check_all_backends(LinearOp{5, 7, 3}, 10);
  check_all_backends(LinearOp{5, 7, 3, false}, 11);
  check_all_backends(LinearOp{197, 192, 576}, 12);  // timm tiny: qkv of 196 patches + cls
  check_all_backends(LinearOp{197, 192, 576, false}, 13);
}

TEST(Linear, NoBiasIsZeroBias) {
  using T = double;
  const LinearOp op{5, 7, 3, false};
  Tens<T> x = op.inputs(20);
  const std::vector<T> zero(op.O, 0.0);
  for (Be be : {Be::Ref, Be::Cpu}) {
    std::vector<T> a(op.N * op.O), b(op.N * op.O);
    MAE_DISPATCH(be, linear_forward, a.data(), x[0].data(), x[1].data(), nullptr, op.N, op.I, op.O);
    MAE_DISPATCH(be, linear_forward, b.data(), x[0].data(), x[1].data(), zero.data(), op.N, op.I, op.O);
    expect_close(a, b, 0, 0, std::string("no bias ") + be_name(be));
  }
}

TEST(Linear, BackwardAccumulatesAndSkipsNull) {
  check_all_accumulate(LinearOp{5, 7, 3}, 30);
  check_all_accumulate(LinearOp{197, 192, 576}, 31);
}

// ---------------------------------------------------------------------------------------------------------------
// layernorm

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  check_finite_differences(LayerNormOp{5, 11}, 1);
  check_finite_differences(LayerNormOp{3, 1}, 2);  // C = 1: output is b, din is 0
}

TEST(LayerNorm, ForwardMatchesDefinition) {
  // Normalised rows have mean 0 and biased variance var/(var+eps) before the affine part.
  LayerNormOp op{5, 11};
  Tens<double> x = op.inputs(3);
  x[1].assign(op.C, 1.0);
  x[2].assign(op.C, 0.0);
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    const Tens<double> y = op.forward<double>(be, x);
    for (int n = 0; n < op.N; ++n) {
      double m = 0, v = 0, xm = 0;
      for (int c = 0; c < op.C; ++c) m += y[0][n * op.C + c] / op.C, xm += x[0][n * op.C + c] / op.C;
      for (int c = 0; c < op.C; ++c) v += std::pow(x[0][n * op.C + c] - xm, 2) / op.C;
      double vy = 0;
      for (int c = 0; c < op.C; ++c) vy += std::pow(y[0][n * op.C + c], 2) / op.C;
      EXPECT_NEAR(m, 0.0, 1e-14) << be_name(be);
      EXPECT_NEAR(vy, v / (v + op.eps), 1e-13) << be_name(be);
      EXPECT_NEAR(y[1][n], xm, 1e-13) << be_name(be);
      EXPECT_NEAR(y[2][n], 1 / std::sqrt(v + op.eps), 1e-12) << be_name(be);
    }
    (void)sizeof(T);
  }
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

TEST(LayerNorm, CpuMatchesRef) {
  check_all_backends(LayerNormOp{5, 11}, 10);
  check_all_backends(LayerNormOp{197, 192}, 11);
}

TEST(LayerNorm, BackwardAccumulatesAndSkipsNull) {
  check_all_accumulate(LayerNormOp{5, 11}, 30);
  check_all_accumulate(LayerNormOp{197, 192}, 31);
}

// ---------------------------------------------------------------------------------------------------------------
// gelu

TEST(Gelu, BackwardMatchesFiniteDifferences) { check_finite_differences(GeluOp{13}, 1); }

TEST(Gelu, ExactErfForm) {
  // Values of x·Φ(x) (not the tanh approximation, which differs by ~1e-4 near |x| = 2).
  const std::vector<double> x{-3.0, -1.0, 0.0, 0.5, 2.0};
  const std::vector<double> want{-0.00404969409489031, -0.15865525393145707, 0.0, 0.34573123063700656,
                                 1.9544997361036416};
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    std::vector<double> out(x.size());
    MAE_DISPATCH(be, gelu_forward, out.data(), x.data(), x.size());
    expect_close(out, want, 1e-14, 1e-16, std::string("gelu ") + be_name(be));
  }
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

TEST(Gelu, InPlace) {
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = float;
    for (size_t n : {size_t(13), size_t(197 * 768)}) {
      std::vector<T> x = cast<T>(randn(n, 45, 2.0)), want(n);
      MAE_DISPATCH(be, gelu_forward, want.data(), x.data(), n);
      MAE_DISPATCH(be, gelu_forward, x.data(), x.data(), n);
      expect_close(x, want, 0, 0, std::string("gelu out == in ") + be_name(be));
    }
  }
}

TEST(Gelu, CpuMatchesRef) {
  check_all_backends(GeluOp{13}, 10);
  check_all_backends(GeluOp{197 * 768}, 11);  // an MLP hidden activation of timm tiny
}

TEST(Gelu, BackwardAccumulates) {
  check_all_accumulate(GeluOp{13}, 30);
  check_all_accumulate(GeluOp{197 * 768}, 31);
}

// ---------------------------------------------------------------------------------------------------------------
// add

TEST(Add, BackwardMatchesFiniteDifferences) { check_finite_differences(AddOp{13}, 1); }

TEST(Add, CpuMatchesRef) {
  check_all_backends(AddOp{13}, 10);
  check_all_backends(AddOp{3 * 197 * 192}, 11);
}

TEST(Add, BackwardAccumulatesAndSkipsNull) {
  check_all_accumulate(AddOp{13}, 30);
  check_all_accumulate(AddOp{3 * 197 * 192}, 31);
}

TEST(Add, InPlaceAliasing) {
  // Residual use: x = x + f(x) in forward, and dx (the same buffer as dout) += dout for the skip path.
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    for (size_t n : {size_t(13), size_t(3 * 197 * 192)}) {
      Vec a = randn(n, 50), b = randn(n, 51);
      Vec want(n);
      for (size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
      MAE_DISPATCH(be, add_forward, a.data(), a.data(), b.data(), n);
      expect_close(a, want, 0, 0, std::string("add in place ") + be_name(be));
      Vec d = randn(n, 52), db(n, 0.0), dwant(n);
      for (size_t i = 0; i < n; ++i) dwant[i] = 2 * d[i];
      const Vec d0 = d;
      MAE_DISPATCH(be, add_backward, d.data(), db.data(), d.data(), n);
      expect_close(d, dwant, 0, 0, std::string("add_backward da aliases dout ") + be_name(be));
      expect_close(db, d0, 0, 0, std::string("add_backward db with da aliasing dout ") + be_name(be));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// adamw

template <class T>
void adamw(Be be, std::vector<T>& p, std::vector<T>& m, std::vector<T>& v, const std::vector<T>& g, float lr,
           float b1, float b2, float eps, float wd, long t) {
  MAE_DISPATCH(be, adamw_update, p.data(), m.data(), v.data(), g.data(), p.size(), lr, b1, b2, eps, wd, t);
}

TEST(AdamW, TwoStepsByHand) {
  // Hyper-parameters exact in binary so the expected values are exact fractions:
  // lr 1/8, β1 1/2, β2 3/4, eps 0, wd 1/2 (decay factor 1 − lr·wd = 15/16).
  // Step 1, p 1, g 1/2:  p = 15/16;  m = 1/4;  v = 1/16;  step_size = (1/8)/(1/2) = 1/4;
  //   denom = sqrt(1/16)/sqrt(1/4) = 1/2;  p = 15/16 − (1/4)(1/4)/(1/2) = 13/16.
  // Step 2, g −1:  p = (13/16)(15/16);  m = 1/8 − 1/2 = −3/8;  v = 3/64 + 1/4 = 19/64;
  //   step_size = (1/8)/(3/4) = 1/6;  denom = sqrt(19/64)/sqrt(7/16) = sqrt(19/28);  p += (1/6)(3/8)/sqrt(19/28).
  const double p1 = 13.0 / 16, p2 = p1 * 15.0 / 16 + (1.0 / 16) / std::sqrt(19.0 / 28);
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    std::vector<T> p{1.0}, m{0.0}, v{0.0};
    adamw<T>(be, p, m, v, {0.5}, 0.125f, 0.5f, 0.75f, 0.0f, 0.5f, 1);
    EXPECT_NEAR(p[0], p1, 1e-15) << be_name(be);
    EXPECT_EQ(m[0], 0.25);
    EXPECT_EQ(v[0], 1.0 / 16);
    adamw<T>(be, p, m, v, {-1.0}, 0.125f, 0.5f, 0.75f, 0.0f, 0.5f, 2);
    EXPECT_NEAR(p[0], p2, 1e-15) << be_name(be);
    EXPECT_EQ(m[0], -3.0 / 8);
    EXPECT_EQ(v[0], 19.0 / 64);
  }
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
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    std::vector<T> p = p0, m(5, 0.0), v(5, 0.0);
    for (long t = 1; t <= 3; ++t) adamw<T>(be, p, m, v, gs[t - 1], 1e-3f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
    expect_close(p, p_want, 1e-14, 1e-16, std::string("p ") + be_name(be));
    expect_close(m, m_want, 1e-14, 1e-16, std::string("m ") + be_name(be));
    expect_close(v, v_want, 1e-14, 1e-16, std::string("v ") + be_name(be));
  }
}

TEST(AdamW, DecayIsMultiplicativeAndFirst) {
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    // Zero gradient and zero moments: the Adam step is 0/eps = 0, so only p *= 1 − lr·wd remains.
    std::vector<T> p{2.0, -3.0, 0.0}, m(3, 0.0), v(3, 0.0);
    adamw<T>(be, p, m, v, {0.0, 0.0, 0.0}, 0.125f, 0.9f, 0.999f, 1e-8f, 0.5f, 1);
    expect_close(p, std::vector<double>{2.0 * 15 / 16, -3.0 * 15 / 16, 0.0}, 0, 0,
                 std::string("zero-grad decay ") + be_name(be));
    // Zero gradient with moments from earlier steps: decay applies to p before the Adam step is subtracted
    // (p·(1 − lr·wd) − u, not (p − u)·(1 − lr·wd)). lr 1/8, β1 1/2, β2 3/4, eps 0, wd 1/2, t = 2:
    // m = 1/4, v = 3/16, step_size = 1/6, denom = sqrt(3/16)/sqrt(7/16) = sqrt(3/7).
    std::vector<T> q{2.0}, mq{0.5}, vq{0.25};
    adamw<T>(be, q, mq, vq, {0.0}, 0.125f, 0.5f, 0.75f, 0.0f, 0.5f, 2);
    const double u = (1.0 / 6) * 0.25 / std::sqrt(3.0 / 7);
    EXPECT_NEAR(q[0], 2.0 * 15 / 16 - u, 1e-15) << be_name(be);
    EXPECT_GT(std::abs(q[0] - (2.0 - u) * 15 / 16), 1e-3);  // the other order is distinguishable here
  }
}

template <class T> void adamw_backends(size_t n, double tol) {
  SCOPED_TRACE(sizeof(T) == 4 ? "float" : "double");
  std::vector<T> pr = cast<T>(randn(n, 60)), mr(n, T(0)), vr(n, T(0));
  std::vector<T> pc = pr, mc = mr, vc = vr;
  for (long t = 1; t <= 3; ++t) {
    const std::vector<T> g = cast<T>(randn(n, 61 + t, 0.1));
    adamw<T>(Be::Ref, pr, mr, vr, g, 1.5e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
    adamw<T>(Be::Cpu, pc, mc, vc, g, 1.5e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
  }
  // m = β1·m + (1−β1)·g cancels in places; float rounding is then judged at the tensor's scale.
  expect_near(pc, pr, tol, "p");
  expect_near(mc, mr, tol, "m");
  expect_near(vc, vr, tol, "v");
}

TEST(AdamW, CpuMatchesRef) {
  for (size_t n : {size_t(13), size_t(197 * 192)}) {
    adamw_backends<double>(n, 1e-13);
    adamw_backends<float>(n, 1e-6);
  }
}

}  // namespace
}  // namespace mae::test
