// Reference exact GELU (torch.nn.GELU(approximate='none')): out = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), in double.
#include <cmath>

#include "ops/ops.h"

namespace mae::ref {

template <class T> void gelu_forward(T* out, const T* in, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double x = in[i];
    out[i] = T(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
  }
}

// d/dx [x·Φ(x)] = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
template <class T> void gelu_backward(T* din, const T* dout, const T* in, size_t n) {
  if (!din) return;
  const double pi = 3.14159265358979323846;
  for (size_t i = 0; i < n; ++i) {
    const double x = in[i];
    const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * pi);
    din[i] += T(double(dout[i]) * (cdf + x * pdf));
  }
}

// The specification: exactly the two ops it fuses.
template <class T> void gelu_backward_recompute(T* act, T* din, const T* dout, const T* in, size_t n) {
  gelu_forward(act, in, n);
  gelu_backward(din, dout, in, n);
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, const double*, size_t);
template void gelu_backward_recompute<float>(float*, float*, const float*, const float*, size_t);
template void gelu_backward_recompute<double>(double*, double*, const double*, const double*, size_t);

}  // namespace mae::ref
