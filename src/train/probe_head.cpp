#include "train/probe_head.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/rng.h"
#include "dist/comm.h"
#include "ops/ops.h"

namespace mae {

namespace {
constexpr uint64_t kHeadInitTag = 0x68656164;  // "head": the probe's initialisation stream
constexpr float kBnEps = 1e-6f;                // BatchNorm1d(D, affine=False, eps=1e-6)
constexpr float kBnMomentum = 0.1f;            // torch default
}  // namespace

ProbeHead::ProbeHead(int D_, int C_, int Bmax)
    : D(D_), C(C_), W(size_t(C_) * D_), b(C_), muW(W.size()), mub(C_), gW(W.size()), gb(C_), rmean(D_, 0.0f),
      rvar(D_, 1.0f), xn(size_t(Bmax) * D_), mean(D_), rstd(D_), logits(size_t(Bmax) * C_), probs(logits.size()),
      targets(logits.size()), dlogits(logits.size()), lars_scratch(W.size()) {}

void ProbeHead::init(uint64_t seed) {
  Rng r = Rng::keyed(Rng::derive(seed, kHeadInitTag), 0, 0);
  for (auto& w : W) {
    double v;
    do v = r.normal(0.0, 0.01);
    while (v < -2.0 || v > 2.0);
    w = float(v);
  }
  std::fill(b.begin(), b.end(), 0.0f);
}

float ProbeHead::train_forward_backward(const float* f, const int32_t* y, int B, float dloss) {
  // BatchNorm in training mode: batch statistics, running stats updated
  cpu::batchnorm1d_train_forward<float>(xn.data(), mean.data(), rstd.data(), rmean.data(), rvar.data(), f, B, D,
                                        kBnEps, kBnMomentum);
  ++batches_tracked;
  cpu::linear_forward<float>(logits.data(), xn.data(), W.data(), b.data(), B, D, C);  // (B, C)
  // criterion = torch.nn.CrossEntropyLoss(): one-hot targets
  std::fill(targets.begin(), targets.begin() + size_t(B) * C, 0.0f);
  for (int i = 0; i < B; ++i) targets[size_t(i) * C + y[i]] = 1.0f;
  const float loss = cpu::softmax_xent_forward<float>(probs.data(), logits.data(), targets.data(), B, C);
  std::fill(dlogits.begin(), dlogits.begin() + size_t(B) * C, 0.0f);
  cpu::softmax_xent_backward<float>(dlogits.data(), dloss, probs.data(), targets.data(), B, C);
  // Nothing flows below the Linear: the BN has no parameters and the encoder is frozen.
  cpu::linear_backward<float>(nullptr, gW.data(), gb.data(), dlogits.data(), xn.data(), W.data(), B, D, C);
  return loss;
}

void ProbeHead::average_grads() {  // the head is tiny: two all-reduces per update
  dist::allreduce_mean(gW.data(), gW.size());
  dist::allreduce_mean(gb.data(), gb.size());
}

void ProbeHead::zero_grad() {
  std::fill(gW.begin(), gW.end(), 0.0f);
  std::fill(gb.begin(), gb.end(), 0.0f);
}

void ProbeHead::step(double lr, const LarsConfig& c) {
  average_grads();
  lars_update<float>(W.data(), muW.data(), gW.data(), W.size(), /*matrix=*/true, lr, c, lars_scratch.data());
  lars_update<float>(b.data(), mub.data(), gb.data(), b.size(), /*matrix=*/false, lr, c, lars_scratch.data());
  zero_grad();
}

void ProbeHead::eval_logits(const float* f, int B, float* out) {
  cpu::batchnorm1d_eval_forward<float>(xn.data(), f, rmean.data(), rvar.data(), B, D, kBnEps);
  cpu::linear_forward<float>(out, xn.data(), W.data(), b.data(), B, D, C);
}

void ProbeHead::broadcast(bool grads) {
  for (auto* v : {&W, &b, &muW, &mub, &rmean, &rvar}) dist::broadcast(v->data(), v->size() * sizeof(float));
  dist::broadcast_value(batches_tracked);
  if (grads)
    for (auto* v : {&gW, &gb}) dist::broadcast(v->data(), v->size() * sizeof(float));
}

EvalStats evaluate_probe(ProbeHead& h, const float* x, const int32_t* labels, int64_t n, int batch) {
  const int C = h.C;
  std::vector<float> logits(size_t(batch) * C);
  double loss = 0;
  int64_t c1 = 0, c5 = 0;
  for (int64_t i0 = 0; i0 < n; i0 += batch) {
    const int B = int(std::min<int64_t>(batch, n - i0));
    h.eval_logits(x + size_t(i0) * h.D, B, logits.data());
    for (int i = 0; i < B; ++i) {
      const float* z = logits.data() + size_t(i) * C;
      const int y = labels[i0 + i];
      double mx = z[0];
      for (int c = 1; c < C; ++c) mx = std::max(mx, double(z[c]));
      double se = 0;
      for (int c = 0; c < C; ++c) se += std::exp(double(z[c]) - mx);
      loss += mx + std::log(se) - z[y];
      int rank = 0;  // classes ranked above y; ties go to the lower class index
      for (int c = 0; c < C; ++c) rank += (z[c] > z[y]) || (z[c] == z[y] && c < y);
      c1 += rank == 0;
      c5 += rank < 5;
    }
  }
  EvalStats s;
  const double N = double(std::max<int64_t>(n, 1));
  s.n = n;
  s.loss = loss / N;
  s.acc1 = 100.0 * double(c1) / N;
  s.acc5 = C > 5 ? 100.0 * double(c5) / N : std::numeric_limits<double>::quiet_NaN();
  return s;
}

}  // namespace mae
