// MAE reconstruction loss, CPU: OpenMP over patch rows; the loss sum is accumulated in double. Semantics as in
// ref/loss.cpp (models_mae.py forward_loss).
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::cpu {

// out (N, P), in (N, P), out == in allowed. Unbiased variance, eps 1e-6 inside the sqrt (torch.var + 1e-6) ** .5.
template <class T> void normalize_target(T* out, const T* in, int N, int P) {
  MAE_CHECK(P > 1, "norm_pix_loss needs more than one value per patch, P = ", P);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* x = in + size_t(n) * P;
    T* y = out + size_t(n) * P;
    double mean = 0;
    for (int p = 0; p < P; ++p) mean += x[p];
    mean /= P;
    double var = 0;
    for (int p = 0; p < P; ++p) var += (x[p] - mean) * (x[p] - mean);
    var /= (P - 1);
    const double rstd = 1.0 / std::sqrt(var + 1e-6);
    for (int p = 0; p < P; ++p) y[p] = T((x[p] - mean) * rstd);
  }
}

// pred (B, 1+L, P) (cls rows ignored), target (B, L, P), mask (B, L). All-zero mask → NaN, as the official code;
// kept rows still enter the sum (as 0 · error) so NaNs propagate as in PyTorch.
template <class T> T masked_mse_forward(const T* pred, const T* target, const T* mask, int B, int L, int P) {
  double num = 0, den = 0;
#pragma omp parallel for schedule(static) reduction(+ : num, den)
  for (int bl = 0; bl < B * L; ++bl) {
    const T m = mask[bl];
    den += m;
    const int b = bl / L;
    const T* pr = pred + (size_t(bl) + b + 1) * P;  // row 1 + l of sample b
    const T* tg = target + size_t(bl) * P;
    double se = 0;
    for (int p = 0; p < P; ++p) {
      const double d = double(pr[p]) - double(tg[p]);
      se += d * d;
    }
    num += m * (se / P);
  }
  return T(num / den);
}

// dpred (B, 1+L, P) += dloss · 2 · mask · (pred − target) / (P · Σ mask)
template <class T>
void masked_mse_backward(T* dpred, T dloss, const T* pred, const T* target, const T* mask, int B, int L, int P) {
  if (!dpred) return;
  double den = 0;
  for (size_t i = 0; i < size_t(B) * L; ++i) den += mask[i];
  const double c = double(dloss) * 2.0 / (double(P) * den);
#pragma omp parallel for schedule(static)
  for (int bl = 0; bl < B * L; ++bl) {
    // Kept rows (mask 0) are still visited, so a NaN in pred reaches the gradient as it does in PyTorch.
    const T g = T(c * mask[bl]);
    const int b = bl / L;
    const size_t row = size_t(bl) + b + 1;
    const T* __restrict pr = pred + row * P;
    const T* __restrict tg = target + size_t(bl) * P;
    T* __restrict dp = dpred + row * P;
    for (int p = 0; p < P; ++p) dp[p] += g * (pr[p] - tg[p]);
  }
}

#define MAE_INSTANTIATE(T)                                                                         \
  template void normalize_target<T>(T*, const T*, int, int);                                      \
  template T masked_mse_forward<T>(const T*, const T*, const T*, int, int, int);                  \
  template void masked_mse_backward<T>(T*, T, const T*, const T*, const T*, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
