// MAE reconstruction loss, reference loops (models_mae.py forward_loss):
//   target = self.patchify(imgs)
//   if self.norm_pix_loss: mean = target.mean(dim=-1, keepdim=True); var = target.var(dim=-1, keepdim=True)
//                          target = (target - mean) / (var + 1.e-6)**.5
//   loss = (pred - target) ** 2; loss = loss.mean(dim=-1); loss = (loss * mask).sum() / mask.sum()
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::ref {

// out (N, P), in (N, P); torch.var is unbiased (divides by P − 1).
template <class T> void normalize_target(T* out, const T* in, int N, int P) {
  MAE_CHECK(P > 1, "norm_pix_loss needs more than one value per patch, P = ", P);
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

// pred (B, 1+L, P) with a cls row per sample (ignored), target (B, L, P), mask (B, L). Sums in double.
// An all-zero mask gives 0/0 = NaN, as the official code does.
template <class T> T masked_mse_forward(const T* pred, const T* target, const T* mask, int B, int L, int P) {
  double num = 0, den = 0;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      const T* pr = pred + (size_t(b) * (1 + L) + 1 + l) * P;
      const T* tg = target + (size_t(b) * L + l) * P;
      double se = 0;
      for (int p = 0; p < P; ++p) se += (double(pr[p]) - tg[p]) * (double(pr[p]) - tg[p]);
      num += mask[size_t(b) * L + l] * (se / P);
      den += mask[size_t(b) * L + l];
    }
  return T(num / den);
}

template <class T>
void masked_mse_backward(T* dpred, T dloss, const T* pred, const T* target, const T* mask, int B, int L, int P) {
  if (!dpred) return;
  double den = 0;
  for (size_t i = 0; i < size_t(B) * L; ++i) den += mask[i];
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < L; ++l) {
      const T m = mask[size_t(b) * L + l];
      const T* pr = pred + (size_t(b) * (1 + L) + 1 + l) * P;
      const T* tg = target + (size_t(b) * L + l) * P;
      T* dp = dpred + (size_t(b) * (1 + L) + 1 + l) * P;
      const T g = T(double(dloss) * m * 2.0 / (double(P) * den));
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

}  // namespace mae::ref
