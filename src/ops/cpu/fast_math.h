// Branch-free float exp and normal CDF that the compiler vectorises (`#pragma omp simd` loops), for the element-wise
// kernels whose libm calls dominated the profile (bench/cpu_profile.md: erff alone was 8% of a training step).
// Accuracy, checked against double-precision libm on dense grids in tests/test_ops_dense.cpp (FastMath):
// fast_exp relative error < 1e-7 on [−87, 88]; fast_phi absolute error < 2.5e-7, relative < 2.5e-6 for x ≥ −5.5
// (< 2e-5 beyond, where Φ < 2e-8). Double callers keep libm.
#pragma once

#include <bit>
#include <cstdint>

namespace mae::cpu {

// e^x. Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact product), a degree-6
// polynomial for e^r, then 2^n put into the exponent bits. Inputs below −87.3 give 0 (e^x < 2^−126, the
// smallest normal float); above 88.7, +inf is not needed by any caller, so the input is clamped there.
inline float fast_exp(float x) {
  const bool under = x < -87.3f;
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  // n = round(x / ln2) by the 1.5·2^23 trick (exact for |n| < 2^22); floorf would stop GCC from vectorising
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>(uint32_t(int32_t(n) + 127) << 23);
  return under ? 0.0f : er * scale;
}

// Φ(x) = P(Z ≤ x) = 0.5·(1 + erf(x/√2)), the standard normal CDF of exact GELU. Through erfc (Numerical
// Recipes' erfcc: fractional error < 1.2e-7 for z ≥ 0) so that the left tail keeps its relative accuracy, where
// 1 + erf(x/√2) would cancel: Φ(x) = 0.5·erfc(−x/√2) for x < 0 and 1 − 0.5·erfc(x/√2) otherwise.
inline float fast_phi(float x) {
  const float z = (x < 0 ? -x : x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t + -0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t + -1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t + -0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t + -1.26551223f;
  const float half_erfc = 0.5f * t * fast_exp(p - z * z);
  return x < 0 ? half_erfc : 1.0f - half_erfc;
}

}  // namespace mae::cpu
