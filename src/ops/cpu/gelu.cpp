// CPU exact GELU (erf form, torch.nn.GELU()), OpenMP over elements. float goes through the vectorised fast_phi /
// fast_exp (fast_math.h): libm's scalar erff was 8% of a training step; double keeps std::erf for the
// finite-difference tests.
#include <cmath>
#include <type_traits>

#include "ops/cpu/fast_math.h"
#include "ops/ops.h"

namespace mae::cpu {

namespace {
constexpr size_t kParallelMin = 16384;
template <class T> constexpr T kInvSqrt2 = T(0.70710678118654752440);
template <class T> constexpr T kInvSqrt2Pi = T(0.39894228040143267794);

// Φ(x) and φ(x) = e^(−x²/2)/√(2π), the standard normal CDF and density.
inline float phi_cdf(float x) { return fast_phi(x); }
inline double phi_cdf(double x) { return 0.5 * (1.0 + std::erf(x * kInvSqrt2<double>)); }
inline float phi_pdf(float x) { return kInvSqrt2Pi<float> * fast_exp(-0.5f * x * x); }
inline double phi_pdf(double x) { return kInvSqrt2Pi<double> * std::exp(-0.5 * x * x); }
// gelu'(x) = Φ(x) + x·φ(x), given Φ(x): one expression for gelu_backward and gelu_backward_recompute.
template <class T> inline T gelu_slope(T x, T cdf) { return cdf + x * phi_pdf(x); }
}  // namespace

template <class T> void gelu_forward(T* out, const T* in, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    out[i] = x * phi_cdf(x);
  }
}

// din += dout · (Φ(x) + x·φ(x))
template <class T> void gelu_backward(T* din, const T* dout, const T* in, size_t n) {
  if (!din) return;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    din[i] += dout[i] * gelu_slope(x, phi_cdf(x));
  }
}

// act = x·Φ(x) as gelu_forward writes it (the same expression: in float the same bits) and din += dout · (Φ(x) +
// x·φ(x)), Φ evaluated once and `in` read once. In the MLP's backward this replaces recomputing fc2's input in its
// own pass and a second pass for the GELU gradient.
template <class T> void gelu_backward_recompute(T* act, T* din, const T* dout, const T* in, size_t n) {
  if (!din) return gelu_forward(act, in, n);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i], cdf = phi_cdf(x);
    act[i] = x * cdf;
    din[i] += dout[i] * gelu_slope(x, cdf);
  }
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, const double*, size_t);
template void gelu_backward_recompute<float>(float*, float*, const float*, const float*, size_t);
template void gelu_backward_recompute<double>(double*, double*, const double*, const double*, size_t);

}  // namespace mae::cpu
