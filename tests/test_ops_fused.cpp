// Fused forward ops (op_decls.inc): residual_layernorm_forward and linear_gelu_forward.
// - They must give the same bits as the unfused sequences they replace (ref and cpu, float and double), with and
//   without a drop-path scale and with the output aliasing an input, as the blocks call them.
// - The backward the header names for them (add/residual_scale_backward + layernorm_backward, linear_backward +
//   gelu_backward) must be their adjoint: checked against finite differences in double.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gradcheck.h"
#include "ops/ops.h"

namespace mae::test {
namespace {

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

TEST(ResidualLayerNorm, CpuMatchesRef) {
  for (bool with_scale : {false, true}) {
    const Shape sh{5, 31, 129};
    const auto x = randn(sh.n(), 1, 2.0), br = randn(sh.n(), 2), w = randn(sh.C, 3), b = randn(sh.C, 4);
    const auto scale = drop_scale<double>(sh.B, with_scale);
    const double* sc = with_scale ? scale.data() : nullptr;
    Vec sum(sh.n()), out(sh.n()), mean(sh.rows()), rstd(sh.rows());
    ref::residual_layernorm_forward(sum.data(), out.data(), mean.data(), rstd.data(), x.data(), br.data(), sc,
                                    w.data(), b.data(), sh.B, sh.Tn, sh.C, 1e-6);
    const auto xf = cast<float>(x), brf = cast<float>(br), wf = cast<float>(w), bf = cast<float>(b);
    const auto scf = cast<float>(scale);
    std::vector<float> sumf(sh.n()), outf(sh.n()), meanf(sh.rows()), rstdf(sh.rows());
    cpu::residual_layernorm_forward(sumf.data(), outf.data(), meanf.data(), rstdf.data(), xf.data(), brf.data(),
                                    with_scale ? scf.data() : nullptr, wf.data(), bf.data(), sh.B, sh.Tn, sh.C, 1e-6f);
    expect_close(sumf, sum, 1e-6, 1e-6, "sum");
    expect_close(outf, out, 1e-5, 1e-5, "out");
    expect_close(meanf, mean, 1e-5, 1e-6, "mean");
    expect_close(rstdf, rstd, 1e-5, 1e-6, "rstd");
  }
}

// loss = r1·sum + r2·out. Adjoint: g = r1 + layernorm_backward(r2) (accumulated into the sum's gradient);
// dx += g, dbranch += scale ⊙ g (residual_scale_backward) or g (add_backward); dw, db from layernorm_backward.
TEST(ResidualLayerNorm, NamedBackwardIsTheAdjoint) {
  for (bool with_scale : {false, true}) {
    const Shape sh{3, 4, 6};
    Vec x = randn(sh.n(), 1), br = randn(sh.n(), 2), w = randn(sh.C, 3), b = randn(sh.C, 4);
    const Vec r1 = randn(sh.n(), 5), r2 = randn(sh.n(), 6);
    const auto scale = drop_scale<double>(sh.B, with_scale);
    const double* sc = with_scale ? scale.data() : nullptr;
    Vec sum(sh.n()), out(sh.n()), mean(sh.rows()), rstd(sh.rows());
    auto f = [&] {
      cpu::residual_layernorm_forward(sum.data(), out.data(), mean.data(), rstd.data(), x.data(), br.data(), sc,
                                      w.data(), b.data(), sh.B, sh.Tn, sh.C, 1e-6);
      return dot(r1, sum) + dot(r2, out);
    };
    f();
    Vec g = r1, dx(sh.n()), dbr(sh.n()), dw(sh.C), db(sh.C);
    cpu::layernorm_backward(g.data(), dw.data(), db.data(), r2.data(), sum.data(), w.data(), mean.data(), rstd.data(),
                            int(sh.rows()), sh.C);
    if (sc) cpu::residual_scale_backward(dx.data(), dbr.data(), g.data(), sc, sh.B, size_t(sh.Tn) * sh.C);
    else cpu::add_backward(dx.data(), dbr.data(), g.data(), sh.n());
    const std::string what = with_scale ? " (scale)" : "";
    expect_close(dx, numeric_grad(x, f), 1e-6, 1e-7, "dx" + what);
    expect_close(dbr, numeric_grad(br, f), 1e-6, 1e-7, "dbranch" + what);
    expect_close(dw, numeric_grad(w, f), 1e-6, 1e-7, "dw" + what);
    expect_close(db, numeric_grad(b, f), 1e-6, 1e-7, "db" + what);
  }
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

// loss = r1·pre + r2·act; adjoint: g = r1 + gelu_backward(r2); linear_backward(g).
TEST(LinearGelu, NamedBackwardIsTheAdjoint) {
  const int N = 4, I = 5, O = 6;
  Vec in = randn(size_t(N) * I, 1), W = randn(size_t(O) * I, 2, 0.5), b = randn(O, 3);
  const Vec r1 = randn(size_t(N) * O, 4), r2 = randn(size_t(N) * O, 5);
  Vec pre(size_t(N) * O), act(pre.size());
  auto f = [&] {
    cpu::linear_gelu_forward(pre.data(), act.data(), in.data(), W.data(), b.data(), N, I, O);
    return dot(r1, pre) + dot(r2, act);
  };
  f();
  Vec g = r1, din(in.size()), dW(W.size()), db(O);
  cpu::gelu_backward(g.data(), r2.data(), pre.data(), g.size());
  cpu::linear_backward(din.data(), dW.data(), db.data(), g.data(), in.data(), W.data(), N, I, O);
  expect_close(din, numeric_grad(in, f), 1e-6, 1e-7, "din");
  expect_close(dW, numeric_grad(W, f), 1e-6, 1e-7, "dW");
  expect_close(db, numeric_grad(b, f), 1e-6, 1e-7, "db");
}

}  // namespace
}  // namespace mae::test
