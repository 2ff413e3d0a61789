// CPU LayerNorm over the last dim: OpenMP over rows; each row as layernorm_row.h (statistics in double).
#include <algorithm>
#include <cmath>

#include "ops/cpu/layernorm_row.h"
#include "ops/ops.h"

namespace mae::cpu {

namespace {
constexpr size_t kParallelMin = 16384;  // below this many elements the thread start-up costs more than it saves
}

// out (N, C), mean (N), rstd (N), in (N, C), w (C), b (C).
template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N, int C, T eps) {
#pragma omp parallel for schedule(static) if (size_t(N) * C > kParallelMin)
  for (int n = 0; n < N; ++n)
    layernorm_row(out + size_t(n) * C, mean + n, rstd + n, in + size_t(n) * C, w, b, C, eps);
}

// With x̂ = (x − mean)·rstd and g = dout ⊙ w:  din += rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),
// dw += Σ_n dout ⊙ x̂,  db += Σ_n dout.
template <class T>
void layernorm_backward(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const T* mean, const T* rstd,
                        int N, int C) {
  const bool par = size_t(N) * C > kParallelMin;
  if (din) {
#pragma omp parallel for schedule(static) if (par)
    for (int n = 0; n < N; ++n) {
      const T* x = in + size_t(n) * C;
      const T* dy = dout + size_t(n) * C;
      T* dx = din + size_t(n) * C;
      const T m = mean[n], s = rstd[n];
      double g_sum = 0, gx_sum = 0;
      for (int c = 0; c < C; ++c) {
        const T g = dy[c] * w[c];
        g_sum += double(g);
        gx_sum += double(g) * double((x[c] - m) * s);
      }
      const T g_mean = T(g_sum / C), gx_mean = T(gx_sum / C);
      for (int c = 0; c < C; ++c) {
        const T xh = (x[c] - m) * s;
        dx[c] += s * (dy[c] * w[c] - g_mean - xh * gx_mean);
      }
    }
  }
  if (dw || db) {
    // Parameter gradients sum over rows: threads own column blocks (no shared accumulators, no allocation) and keep
    // double partial sums.
    constexpr int kBlock = 64;
    const int blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (par)
    for (int blk = 0; blk < blocks; ++blk) {
      const int c0 = blk * kBlock, width = std::min(kBlock, C - c0);
      double aw[kBlock] = {}, ab[kBlock] = {};
      for (int n = 0; n < N; ++n) {
        const T* x = in + size_t(n) * C + c0;
        const T* dy = dout + size_t(n) * C + c0;
        const T m = mean[n], s = rstd[n];
        for (int j = 0; j < width; ++j) {
          aw[j] += double(dy[j] * ((x[j] - m) * s));
          ab[j] += double(dy[j]);
        }
      }
      for (int j = 0; j < width; ++j) {
        if (dw) dw[c0 + j] += T(aw[j]);
        if (db) db[c0 + j] += T(ab[j]);
      }
    }
  }
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                       float);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                        int, double);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                        const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, int, int);

}  // namespace mae::cpu
