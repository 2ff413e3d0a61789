// Ops of the evaluation heads: softmax cross-entropy with soft targets and BatchNorm1d (affine=False), both backends:
//   1. the ref backward against central finite differences (double, odd shapes);
//   2. cpu against ref in double and float (outputs, saved statistics, running stats, gradients);
//   3. the gradient rule (accumulate into pre-filled buffers; nullptr skipped);
//   4. forward values against hand computations / PyTorch's definitions (running var unbiased, eval mode).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "ops/ops.h"

namespace mae::test {
namespace {

enum class Be { Ref, Cpu };
const char* be_name(Be be) { return be == Be::Ref ? "ref" : "cpu"; }
#define MAE_DISPATCH(be, fn, ...) ((be) == Be::Ref ? ::mae::ref::fn<T>(__VA_ARGS__) : ::mae::cpu::fn<T>(__VA_ARGS__))

template <class A, class B> void expect_near(const A& got, const B& want, double tol, const std::string& what) {
  double scale = 0;
  for (const auto& w : want) scale = std::max(scale, std::abs(double(w)));
  expect_close(got, want, tol, tol * scale + 1e-300, what);
}

// Rows of a probability distribution: one-hot with label smoothing eps, or a mixup blend of two such rows.
Vec soft_targets(int N, int C, unsigned seed, bool mixup) {
  std::mt19937 g(seed);
  Vec t(size_t(N) * C, 0.0);
  const double eps = 0.1;
  for (int n = 0; n < N; ++n) {
    const int a = int(g() % C), b = int(g() % C);
    const double lam = mixup ? 0.3 : 1.0;
    for (int c = 0; c < C; ++c) t[size_t(n) * C + c] = eps / C;
    t[size_t(n) * C + a] += lam * (1 - eps);
    t[size_t(n) * C + b] += (1 - lam) * (1 - eps);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// softmax cross-entropy

template <class T> T xent(Be be, std::vector<T>& probs, const std::vector<T>& z, const std::vector<T>& t, int N, int C) {
  probs.assign(size_t(N) * C, T(0));
  return MAE_DISPATCH(be, softmax_xent_forward, probs.data(), z.data(), t.data(), N, C);
}

TEST(SoftmaxXent, HandValues) {
  // logits (0, ln 3): softmax (1/4, 3/4). One-hot class 0: loss ln 4; class 1: ln(4/3). Mean = (ln 4 + ln 4/3) / 2.
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    const std::vector<T> z{0.0, std::log(3.0), 0.0, std::log(3.0)}, t{1, 0, 0, 1};
    std::vector<T> p;
    const T loss = xent<T>(be, p, z, t, 2, 2);
    EXPECT_NEAR(loss, (std::log(4.0) + std::log(4.0 / 3.0)) / 2, 1e-15) << be_name(be);
    expect_close(p, std::vector<T>{0.25, 0.75, 0.25, 0.75}, 1e-15, 0, std::string("probs ") + be_name(be));
    // dlogits = dloss (p − t) / N
    std::vector<T> d(4, 1.0);
    MAE_DISPATCH(be, softmax_xent_backward, d.data(), T(2), p.data(), t.data(), 2, 2);
    expect_close(d, std::vector<T>{1 - 0.75, 1 + 0.75, 1 + 0.25, 1 - 0.25}, 1e-15, 0,
                 std::string("dlogits accumulate ") + be_name(be));
  }
}

TEST(SoftmaxXent, LargeLogitsStayFinite) {
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = float;
    const std::vector<T> z{1000.f, -1000.f, 0.f}, t{0, 1, 0};
    std::vector<T> p;
    const T loss = xent<T>(be, p, z, t, 1, 3);
    EXPECT_NEAR(loss, 2000.f, 1e-2) << be_name(be);
    EXPECT_TRUE(std::isfinite(p[0]) && std::isfinite(p[1])) << be_name(be);
  }
}

TEST(SoftmaxXent, BackwardMatchesFiniteDifferences) {
  for (bool mixup : {false, true})
    for (auto [N, C] : {std::pair{5, 7}, std::pair{1, 1}, std::pair{3, 2}}) {
      SCOPED_TRACE("N=" + std::to_string(N) + " C=" + std::to_string(C) + (mixup ? " mixup" : " smoothing"));
      Vec z = randn(size_t(N) * C, 1 + N, 3.0);
      const Vec t = soft_targets(N, C, 7 + C, mixup);
      Vec p;
      auto f = [&] { return ref::softmax_xent_forward<double>(p.data(), z.data(), t.data(), N, C); };
      p.resize(z.size());
      f();
      const double dloss = 0.7;
      Vec g(z.size(), 0.0);
      ref::softmax_xent_backward<double>(g.data(), dloss, p.data(), t.data(), N, C);
      Vec num = numeric_grad(z, f);
      for (auto& v : num) v *= dloss;
      expect_close(g, num, 1e-7, 1e-9, "dlogits vs finite differences");
    }
}

TEST(SoftmaxXent, CpuMatchesRefAndAccumulates) {
  for (auto [N, C] : {std::pair{5, 7}, std::pair{512, 1000}, std::pair{300, 10}}) {
    const std::string tag = "N=" + std::to_string(N) + " C=" + std::to_string(C);
    const Vec zd = randn(size_t(N) * C, 3, 4.0), td = soft_targets(N, C, 4, true), g0 = randn(zd.size(), 5);
    {
      using T = double;
      Vec pr, pc;
      const double lr = xent<T>(Be::Ref, pr, zd, td, N, C), lc = xent<T>(Be::Cpu, pc, zd, td, N, C);
      EXPECT_NEAR(lc, lr, 1e-12 * std::abs(lr)) << tag;
      expect_near(pc, pr, 1e-13, tag + " probs double");
      Vec gr = g0, gc = g0;
      ref::softmax_xent_backward<T>(gr.data(), 1.3, pr.data(), td.data(), N, C);
      cpu::softmax_xent_backward<T>(gc.data(), 1.3, pc.data(), td.data(), N, C);
      expect_near(gc, gr, 1e-13, tag + " dlogits double");
      Vec gz(zd.size(), 0.0);
      cpu::softmax_xent_backward<T>(gz.data(), 1.3, pc.data(), td.data(), N, C);
      for (size_t i = 0; i < gz.size(); ++i) gz[i] += g0[i];
      expect_near(gc, gz, 1e-14, tag + " accumulates");
      cpu::softmax_xent_backward<T>(nullptr, 1.3, pc.data(), td.data(), N, C);  // skipped, no crash
    }
    {
      using T = float;
      const auto z = cast<T>(zd), t = cast<T>(td);
      std::vector<T> pr, pc;
      const float lr = xent<T>(Be::Ref, pr, z, t, N, C), lc = xent<T>(Be::Cpu, pc, z, t, N, C);
      EXPECT_NEAR(lc, lr, 1e-6 * std::abs(lr)) << tag;
      expect_near(pc, pr, 1e-6, tag + " probs float");
      std::vector<T> gr = cast<T>(g0), gc = gr;
      ref::softmax_xent_backward<T>(gr.data(), 1.3f, pr.data(), t.data(), N, C);
      cpu::softmax_xent_backward<T>(gc.data(), 1.3f, pc.data(), t.data(), N, C);
      expect_near(gc, gr, 1e-6, tag + " dlogits float");
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// BatchNorm1d (affine=False)

struct BnOut {
  Vec out, mean, rstd, rm, rv;
};

template <class T>
std::vector<std::vector<T>> bn_train(Be be, const std::vector<T>& x, int N, int C, double eps, double mom,
                                     const std::vector<T>& rm0, const std::vector<T>& rv0) {
  std::vector<T> out(x.size()), mean(C), rstd(C), rm = rm0, rv = rv0;
  MAE_DISPATCH(be, batchnorm1d_train_forward, out.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), N,
               C, T(eps), T(mom));
  return {out, mean, rstd, rm, rv};
}

// Columns with different means and spreads, as features before the probe's BN.
Vec bn_input(int N, int C, unsigned seed) {
  Vec x = randn(size_t(N) * C, seed);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) x[size_t(n) * C + c] = 3.0 - 0.5 * c + (0.2 + 0.3 * (c % 5)) * x[size_t(n) * C + c];
  return x;
}

TEST(BatchNorm1d, TrainForwardMatchesTorchDefinition) {
  // N = 4, one channel 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3. Running stats (0, 1), momentum 0.1:
  // rm = 0.3, rv = 0.9 + 0.1 · 14/3.
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    const std::vector<T> x{1, 2, 3, 6};
    auto y = bn_train<T>(be, x, 4, 1, 1e-6, 0.1, {0.0}, {1.0});
    const double r = 1 / std::sqrt(3.5 + 1e-6);
    expect_close(y[0], std::vector<T>{-2 * r, -r, 0, 3 * r}, 1e-14, 0, std::string("out ") + be_name(be));
    EXPECT_NEAR(y[1][0], 3.0, 1e-15);
    EXPECT_NEAR(y[2][0], r, 1e-15);
    EXPECT_NEAR(y[3][0], 0.3, 1e-15) << be_name(be);
    EXPECT_NEAR(y[4][0], 0.9 + 0.1 * 14.0 / 3.0, 1e-15) << be_name(be);
    // nullptr running stats: statistics still computed, nothing updated
    std::vector<T> out(4), mean(1), rstd(1);
    MAE_DISPATCH(be, batchnorm1d_train_forward, out.data(), mean.data(), rstd.data(), nullptr, nullptr, x.data(), 4, 1,
                 T(1e-6), T(0.1));
    expect_close(out, y[0], 0, 0, "no running stats");
  }
}

TEST(BatchNorm1d, EvalUsesRunningStats) {
  for (Be be : {Be::Ref, Be::Cpu}) {
    using T = double;
    const int N = 3, C = 2;
    const std::vector<T> x{1, 2, 3, 4, 5, 6}, rm{1, -1}, rv{4, 0.25};
    std::vector<T> out(6);
    MAE_DISPATCH(be, batchnorm1d_eval_forward, out.data(), x.data(), rm.data(), rv.data(), N, C, T(1e-6));
    std::vector<T> want(6);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) want[n * C + c] = (x[n * C + c] - rm[c]) / std::sqrt(rv[c] + 1e-6);
    expect_close(out, want, 1e-15, 0, std::string("eval ") + be_name(be));
  }
}

TEST(BatchNorm1d, BackwardMatchesFiniteDifferences) {
  for (auto [N, C] : {std::pair{5, 7}, std::pair{2, 3}, std::pair{9, 1}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " C=" + std::to_string(C));
    Vec x = bn_input(N, C, 11 + N);
    const Vec r = randn(x.size(), 12);
    auto f = [&] { return dot(r, bn_train<double>(Be::Ref, x, N, C, 1e-6, 0.1, Vec(C, 0.0), Vec(C, 1.0))[0]); };
    const auto y = bn_train<double>(Be::Ref, x, N, C, 1e-6, 0.1, Vec(C, 0.0), Vec(C, 1.0));
    Vec g(x.size(), 0.0);
    ref::batchnorm1d_backward<double>(g.data(), r.data(), x.data(), y[1].data(), y[2].data(), N, C);
    expect_close(g, numeric_grad(x, f), 1e-6, 1e-8, "din vs finite differences");
  }
}

TEST(BatchNorm1d, CpuMatchesRefAndAccumulates) {
  for (auto [N, C] : {std::pair{5, 7}, std::pair{512, 384}, std::pair{256, 65}}) {
    const std::string tag = "N=" + std::to_string(N) + " C=" + std::to_string(C);
    const Vec xd = bn_input(N, C, 21), rm0 = randn(C, 22), dout = randn(xd.size(), 23), g0 = randn(xd.size(), 24);
    Vec rv0 = randn(C, 25);
    for (auto& v : rv0) v = 1 + v * v;
    auto run = [&](auto tag_t, double tol) {
      using T = decltype(tag_t);
      const auto x = cast<T>(xd);
      const auto yr = bn_train<T>(Be::Ref, x, N, C, 1e-6, 0.1, cast<T>(rm0), cast<T>(rv0));
      const auto yc = bn_train<T>(Be::Cpu, x, N, C, 1e-6, 0.1, cast<T>(rm0), cast<T>(rv0));
      const char* names[] = {"out", "mean", "rstd", "running_mean", "running_var"};
      for (int j = 0; j < 5; ++j) expect_near(yc[j], yr[j], tol, tag + " " + names[j]);
      std::vector<T> er(x.size()), ec(x.size());
      ref::batchnorm1d_eval_forward<T>(er.data(), x.data(), yr[3].data(), yr[4].data(), N, C, T(1e-6));
      cpu::batchnorm1d_eval_forward<T>(ec.data(), x.data(), yr[3].data(), yr[4].data(), N, C, T(1e-6));
      expect_near(ec, er, tol, tag + " eval");
      const auto d = cast<T>(dout);
      std::vector<T> gr = cast<T>(g0), gc = gr, gz(x.size(), T(0));
      ref::batchnorm1d_backward<T>(gr.data(), d.data(), x.data(), yr[1].data(), yr[2].data(), N, C);
      cpu::batchnorm1d_backward<T>(gc.data(), d.data(), x.data(), yc[1].data(), yc[2].data(), N, C);
      expect_near(gc, gr, tol, tag + " din");
      cpu::batchnorm1d_backward<T>(gz.data(), d.data(), x.data(), yc[1].data(), yc[2].data(), N, C);
      for (size_t i = 0; i < gz.size(); ++i) gz[i] += T(g0[i]);
      expect_near(gc, gz, tol, tag + " accumulates");
      cpu::batchnorm1d_backward<T>(nullptr, d.data(), x.data(), yc[1].data(), yc[2].data(), N, C);
      ref::batchnorm1d_backward<T>(nullptr, d.data(), x.data(), yc[1].data(), yc[2].data(), N, C);
    };
    run(double(0), 1e-12);
    run(float(0), 2e-5);
  }
}

}  // namespace
}  // namespace mae::test
