// Ops of the evaluation heads, softmax cross-entropy with soft targets and BatchNorm1d (affine=False): their values
// against hand computations and PyTorch's definitions (running variance unbiased, eval mode from the running stats,
// no running stats given). Gradients, cpu vs ref and the += rule: the op × backend harness (tests/op_cases.h).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "op_harness.h"

namespace mae::test {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// softmax cross-entropy

TEST(SoftmaxXent, HandValues) {
  // logits (0, ln 3): softmax (1/4, 3/4). One-hot class 0: loss ln 4; class 1: ln(4/3). Mean = (ln 4 + ln 4/3) / 2.
  const Vec z{0.0, std::log(3.0), 0.0, std::log(3.0)}, t{1, 0, 0, 1};
  for_host_backends<double>([&]<class Bk>() {
    Vec p(4);
    const double loss = Bk::softmax_xent_forward(p.data(), z.data(), t.data(), 2, 2);
    EXPECT_NEAR(loss, (std::log(4.0) + std::log(4.0 / 3.0)) / 2, 1e-15) << Bk::name;
    expect_close(p, Vec{0.25, 0.75, 0.25, 0.75}, 1e-15, 0, std::string("probs ") + Bk::name);
    // dlogits = dloss (p − t) / N
    Vec d(4, 1.0);
    Bk::softmax_xent_backward(d.data(), 2.0, p.data(), t.data(), 2, 2);
    expect_close(d, Vec{1 - 0.75, 1 + 0.75, 1 + 0.25, 1 - 0.25}, 1e-15, 0,
                 std::string("dlogits accumulate ") + Bk::name);
  });
}

TEST(SoftmaxXent, LargeLogitsStayFinite) {
  const std::vector<float> z{1000.f, -1000.f, 0.f}, t{0, 1, 0};
  for_host_backends<float>([&]<class Bk>() {
    std::vector<float> p(3);
    const float loss = Bk::softmax_xent_forward(p.data(), z.data(), t.data(), 1, 3);
    EXPECT_NEAR(loss, 2000.f, 1e-2) << Bk::name;
    EXPECT_TRUE(std::isfinite(p[0]) && std::isfinite(p[1])) << Bk::name;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// BatchNorm1d (affine=False)

TEST(BatchNorm1d, TrainForwardMatchesTorchDefinition) {
  // N = 4, one channel 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3. Running stats (0, 1), momentum 0.1:
  // rm = 0.3, rv = 0.9 + 0.1 · 14/3.
  const Vec x{1, 2, 3, 6};
  const double r = 1 / std::sqrt(3.5 + 1e-6);
  for_host_backends<double>([&]<class Bk>() {
    Vec out(4), mean(1), rstd(1), rm{0.0}, rv{1.0};
    Bk::batchnorm1d_train_forward(out.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), 4, 1, 1e-6,
                                  0.1);
    expect_close(out, Vec{-2 * r, -r, 0, 3 * r}, 1e-14, 0, std::string("out ") + Bk::name);
    EXPECT_NEAR(mean[0], 3.0, 1e-15) << Bk::name;
    EXPECT_NEAR(rstd[0], r, 1e-15) << Bk::name;
    EXPECT_NEAR(rm[0], 0.3, 1e-15) << Bk::name;
    EXPECT_NEAR(rv[0], 0.9 + 0.1 * 14.0 / 3.0, 1e-15) << Bk::name;
    // nullptr running stats: statistics still computed, nothing updated
    Vec out2(4), mean2(1), rstd2(1);
    Bk::batchnorm1d_train_forward(out2.data(), mean2.data(), rstd2.data(), nullptr, nullptr, x.data(), 4, 1, 1e-6, 0.1);
    expect_close(out2, out, 0, 0, std::string("no running stats ") + Bk::name);
  });
}

TEST(BatchNorm1d, EvalUsesRunningStats) {
  const int N = 3, C = 2;
  const Vec x{1, 2, 3, 4, 5, 6}, rm{1, -1}, rv{4, 0.25};
  Vec want(6);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) want[n * C + c] = (x[n * C + c] - rm[c]) / std::sqrt(rv[c] + 1e-6);
  for_host_backends<double>([&]<class Bk>() {
    Vec out(6);
    Bk::batchnorm1d_eval_forward(out.data(), x.data(), rm.data(), rv.data(), N, C, 1e-6);
    expect_close(out, want, 1e-15, 0, std::string("eval ") + Bk::name);
  });
}

}  // namespace
}  // namespace mae::test
