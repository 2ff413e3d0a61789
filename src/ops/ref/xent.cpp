// Softmax cross-entropy with soft targets, reference loops (timm SoftTargetCrossEntropy:
//   loss = torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1).mean()).
// One-hot targets give nn.CrossEntropyLoss; label-smoothed / mixup targets are built by the caller.
#include <cmath>

#include "ops/ops.h"

namespace mae::ref {

// probs (N, C) = softmax(logits), logits (N, C), targets (N, C). Returns the mean loss; sums in double.
template <class T> T softmax_xent_forward(T* probs, const T* logits, const T* targets, int N, int C) {
  double total = 0;
  for (int n = 0; n < N; ++n) {
    const T* z = logits + size_t(n) * C;
    const T* y = targets + size_t(n) * C;
    T* p = probs + size_t(n) * C;
    double mx = z[0];
    for (int c = 1; c < C; ++c) mx = std::max(mx, double(z[c]));
    double se = 0;
    for (int c = 0; c < C; ++c) se += std::exp(double(z[c]) - mx);
    const double lse = mx + std::log(se);
    for (int c = 0; c < C; ++c) {
      const double logp = double(z[c]) - lse;
      p[c] = T(std::exp(logp));
      total -= double(y[c]) * logp;
    }
  }
  return T(total / N);
}

// dlogits (N, C) += dloss · (probs − targets) / N
template <class T>
void softmax_xent_backward(T* dlogits, T dloss, const T* probs, const T* targets, int N, int C) {
  if (!dlogits) return;
  for (size_t i = 0; i < size_t(N) * C; ++i)
    dlogits[i] += T(double(dloss) * (double(probs[i]) - double(targets[i])) / N);
}

#define MAE_INSTANTIATE(T)                                                       \
  template T softmax_xent_forward<T>(T*, const T*, const T*, int, int);         \
  template void softmax_xent_backward<T>(T*, T, const T*, const T*, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::ref
