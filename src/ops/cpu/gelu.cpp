// CPU exact GELU (erf form, torch.nn.GELU()), OpenMP over elements, math in T.
#include <cmath>

#include "ops/ops.h"

namespace mae::cpu {

namespace {
constexpr size_t kParallelMin = 16384;
template <class T> constexpr T kInvSqrt2 = T(0.70710678118654752440);
template <class T> constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
}  // namespace

template <class T> void gelu_forward(T* out, const T* in, size_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    out[i] = T(0.5) * x * (T(1) + std::erf(x * kInvSqrt2<T>));
  }
}

// din += dout · (Φ(x) + x·φ(x))
template <class T> void gelu_backward(T* din, const T* dout, const T* in, size_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    const T cdf = T(0.5) * (T(1) + std::erf(x * kInvSqrt2<T>));
    const T pdf = kInvSqrt2Pi<T> * std::exp(T(-0.5) * x * x);
    din[i] += dout[i] * (cdf + x * pdf);
  }
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, const double*, size_t);

}  // namespace mae::cpu
