// Softmax cross-entropy with soft targets, CPU: OpenMP over rows, loss summed in double. Semantics as in
// ref/xent.cpp (timm SoftTargetCrossEntropy).
#include <algorithm>
#include <cmath>

#include "ops/ops.h"

namespace mae::cpu {

// probs (N, C), logits (N, C), targets (N, C). Returns the mean over rows of −Σ_c target · log_softmax.
template <class T> T softmax_xent_forward(T* probs, const T* logits, const T* targets, int N, int C) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int n = 0; n < N; ++n) {
    const T* __restrict z = logits + size_t(n) * C;
    const T* __restrict y = targets + size_t(n) * C;
    T* __restrict p = probs + size_t(n) * C;
    double mx = z[0];
    for (int c = 1; c < C; ++c) mx = std::max(mx, double(z[c]));
    double se = 0;
    for (int c = 0; c < C; ++c) se += std::exp(double(z[c]) - mx);
    const double lse = mx + std::log(se);
    double row = 0;
    for (int c = 0; c < C; ++c) {
      const double logp = double(z[c]) - lse;
      p[c] = T(std::exp(logp));
      row -= double(y[c]) * logp;
    }
    total += row;
  }
  return T(total / N);
}

// dlogits (N, C) += dloss · (probs − targets) / N
template <class T>
void softmax_xent_backward(T* dlogits, T dloss, const T* probs, const T* targets, int N, int C) {
  if (!dlogits) return;
  const T g = T(double(dloss) / N);
  const long n = long(N) * C;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) dlogits[i] += g * (probs[i] - targets[i]);
}

#define MAE_INSTANTIATE(T)                                                       \
  template T softmax_xent_forward<T>(T*, const T*, const T*, int, int);         \
  template void softmax_xent_backward<T>(T*, T, const T*, const T*, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
