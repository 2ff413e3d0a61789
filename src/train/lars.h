// LARS (layer-wise adaptive rate scaling), exactly the official util/lars.py used by main_linprobe.py:
//   for p in params:
//     dp = p.grad
//     if p.ndim > 1:                      # not a bias / norm parameter: decay and trust-ratio scaling
//       dp = dp.add(p, alpha=weight_decay)
//       q = where(‖p‖ > 0, where(‖dp‖ > 0, trust_coefficient · ‖p‖ / ‖dp‖, 1), 1)
//       dp = dp.mul(q)
//     mu = momentum · mu + dp             (mu starts at 0)
//     p -= lr · mu
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

namespace mae {

struct LarsConfig {
  double momentum = 0.9;
  double trust_coefficient = 0.001;
  double weight_decay = 0.0;
};

// One tensor's step. matrix: the tensor has more than one dimension (1-D tensors skip decay and adaptation).
// scratch: n elements of workspace (dp). Norms are summed in double.
template <class T>
void lars_update(T* p, T* mu, const T* g, size_t n, bool matrix, double lr, const LarsConfig& c, T* scratch) {
  const T* dp = g;
  if (matrix) {
    double pn = 0, dn = 0;
    for (size_t i = 0; i < n; ++i) {
      scratch[i] = g[i] + T(c.weight_decay) * p[i];
      pn += double(p[i]) * p[i];
      dn += double(scratch[i]) * scratch[i];
    }
    pn = std::sqrt(pn), dn = std::sqrt(dn);
    const T q = (pn > 0 && dn > 0) ? T(c.trust_coefficient * pn / dn) : T(1);
    for (size_t i = 0; i < n; ++i) scratch[i] *= q;
    dp = scratch;
  }
  const T m = T(c.momentum), a = T(lr);
  for (size_t i = 0; i < n; ++i) {
    mu[i] = m * mu[i] + dp[i];
    p[i] -= a * mu[i];
  }
}

}  // namespace mae
