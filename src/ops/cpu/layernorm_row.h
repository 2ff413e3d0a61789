// One row of the CPU LayerNorm forward, shared by layernorm_forward and the fused residual_layernorm_forward so the
// two give bit-identical results: statistics in double (two passes, so float inputs with a large mean do not lose
// the variance), the normalisation itself in T.
#pragma once
#include <cmath>

namespace mae::cpu {

// y (C) = (x − mean) · rstd · w + b;  *mean, *rstd = the row's mean and 1/sqrt(biased var + eps).
template <class T> inline void layernorm_row(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int C, T eps) {
  double sum = 0;
  for (int c = 0; c < C; ++c) sum += double(x[c]);
  const double m = sum / C;
  double ss = 0;
  for (int c = 0; c < C; ++c) {
    const double d = double(x[c]) - m;
    ss += d * d;
  }
  const double s = 1.0 / std::sqrt(ss / C + double(eps));
  const T mt = T(m), st = T(s);
  for (int c = 0; c < C; ++c) y[c] = (x[c] - mt) * st * w[c] + b[c];
  *mean = mt;
  *rstd = st;
}

}  // namespace mae::cpu
