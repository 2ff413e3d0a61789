// Reference AdamW, torch.optim.AdamW (amsgrad=False, maximize=False) step by step, each element computed in double:
//   p *= 1 − lr·wd;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//   p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
#include <cmath>

#include "ops/ops.h"

namespace mae::ref {

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                  long t) {
  const double b1 = beta1, b2 = beta2;
  const double step_size = double(lr) / (1.0 - std::pow(b1, double(t)));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, double(t)));
  for (size_t i = 0; i < n; ++i) {
    const double pi = double(p[i]) * (1.0 - double(lr) * double(wd));
    const double mi = b1 * double(m[i]) + (1.0 - b1) * double(g[i]);
    const double vi = b2 * double(v[i]) + (1.0 - b2) * double(g[i]) * double(g[i]);
    m[i] = T(mi);
    v[i] = T(vi);
    p[i] = T(pi - step_size * mi / (std::sqrt(vi) / bc2_sqrt + double(eps)));
  }
}

template void adamw_update<float>(float*, float*, float*, const float*, size_t, float, float, float, float, float,
                                  long);
template void adamw_update<double>(double*, double*, double*, const double*, size_t, float, float, float, float,
                                   float, long);

}  // namespace mae::ref
