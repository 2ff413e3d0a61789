// BatchNorm1d(C, affine=False) on (N, C), CPU. Semantics as in ref/batchnorm.cpp. Rows are contiguous in C, so the
// work is split into channel blocks (OpenMP) and each block sweeps the rows, the inner loop running along C.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::cpu {
namespace {
constexpr int kBlock = 64;  // channels per OpenMP task: one block's double accumulators stay in L1
}

template <class T>
void batchnorm1d_train_forward(T* out, T* mean, T* rstd, T* running_mean, T* running_var, const T* in, int N, int C,
                               T eps, T momentum) {
  MAE_CHECK(N > 1, "BatchNorm1d in training mode needs more than one sample, N = ", N);
  const int nblk = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < nblk; ++blk) {
    const int c0 = blk * kBlock, nc = std::min(kBlock, C - c0);
    double m[kBlock] = {}, ss[kBlock] = {}, r[kBlock];
    for (int n = 0; n < N; ++n) {
      const T* x = in + size_t(n) * C + c0;
      for (int j = 0; j < nc; ++j) m[j] += x[j];
    }
    for (int j = 0; j < nc; ++j) m[j] /= N;
    for (int n = 0; n < N; ++n) {
      const T* x = in + size_t(n) * C + c0;
      for (int j = 0; j < nc; ++j) ss[j] += (x[j] - m[j]) * (x[j] - m[j]);
    }
    for (int j = 0; j < nc; ++j) r[j] = 1.0 / std::sqrt(ss[j] / N + double(eps));
    for (int n = 0; n < N; ++n) {
      const T* x = in + size_t(n) * C + c0;
      T* y = out + size_t(n) * C + c0;
      for (int j = 0; j < nc; ++j) y[j] = T((x[j] - m[j]) * r[j]);
    }
    const double mo = momentum;
    for (int j = 0; j < nc; ++j) {
      mean[c0 + j] = T(m[j]);
      rstd[c0 + j] = T(r[j]);
      // PyTorch feeds the unbiased variance into the running estimate while normalising with the biased one.
      if (running_mean) running_mean[c0 + j] = T((1 - mo) * running_mean[c0 + j] + mo * m[j]);
      if (running_var) running_var[c0 + j] = T((1 - mo) * running_var[c0 + j] + mo * ss[j] / (N - 1));
    }
  }
}

template <class T>
void batchnorm1d_eval_forward(T* out, const T* in, const T* running_mean, const T* running_var, int N, int C, T eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* __restrict x = in + size_t(n) * C;
    T* __restrict y = out + size_t(n) * C;
    for (int c = 0; c < C; ++c)
      y[c] = T((double(x[c]) - running_mean[c]) / std::sqrt(double(running_var[c]) + double(eps)));
  }
}

// din (N, C) += rstd · (dout − mean_n dout − xhat · mean_n(dout · xhat))
template <class T>
void batchnorm1d_backward(T* din, const T* dout, const T* in, const T* mean, const T* rstd, int N, int C) {
  if (!din) return;
  const int nblk = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < nblk; ++blk) {
    const int c0 = blk * kBlock, nc = std::min(kBlock, C - c0);
    double sg[kBlock] = {}, sgx[kBlock] = {};
    for (int n = 0; n < N; ++n) {
      const T* x = in + size_t(n) * C + c0;
      const T* g = dout + size_t(n) * C + c0;
      for (int j = 0; j < nc; ++j) {
        sg[j] += g[j];
        sgx[j] += double(g[j]) * (double(x[j]) - mean[c0 + j]) * rstd[c0 + j];
      }
    }
    for (int j = 0; j < nc; ++j) {
      sg[j] /= N;
      sgx[j] /= N;
    }
    for (int n = 0; n < N; ++n) {
      const T* x = in + size_t(n) * C + c0;
      const T* g = dout + size_t(n) * C + c0;
      T* d = din + size_t(n) * C + c0;
      for (int j = 0; j < nc; ++j) {
        const double xh = (double(x[j]) - mean[c0 + j]) * rstd[c0 + j];
        d[j] += T(rstd[c0 + j] * (g[j] - sg[j] - xh * sgx[j]));
      }
    }
  }
}

#define MAE_INSTANTIATE(T)                                                                        \
  template void batchnorm1d_train_forward<T>(T*, T*, T*, T*, T*, const T*, int, int, T, T);      \
  template void batchnorm1d_eval_forward<T>(T*, const T*, const T*, const T*, int, int, T);      \
  template void batchnorm1d_backward<T>(T*, const T*, const T*, const T*, const T*, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
