// CPU AdamW over a flat buffer (torch.optim.AdamW, amsgrad=False): the per-step scalars in double, exactly as
// torch computes them in Python; the per-element work in T in torch's operation order, OpenMP over elements.
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::cpu {

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                  long t) {
  MAE_CHECK(t >= 1, "adamw_update step count t = ", t);
  const T decay = T(1.0 - double(lr) * double(wd));
  const T b1 = T(beta1), b2 = T(beta2);
  const T one_m_b1 = T(1.0 - double(beta1)), one_m_b2 = T(1.0 - double(beta2));
  const T step_size = T(double(lr) / (1.0 - std::pow(double(beta1), double(t))));
  const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(double(beta2), double(t))));
  const T e = T(eps);
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = m[i] * b1 + gi * one_m_b1;
    const T vi = v[i] * b2 + gi * gi * one_m_b2;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + e));
  }
}

template void adamw_update<float>(float*, float*, float*, const float*, size_t, float, float, float, float, float,
                                  long);
template void adamw_update<double>(double*, double*, double*, const double*, size_t, float, float, float, float,
                                   float, long);

}  // namespace mae::cpu
