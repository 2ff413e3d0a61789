// BatchNorm1d(C, affine=False) on (N, C), reference loops (torch.nn.BatchNorm1d, as the linear-probe head's
// feature normaliser in main_linprobe.py). Training normalises with the biased batch variance but feeds the
// unbiased one into running_var, as PyTorch does; statistics are summed in double.
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::ref {

// out (N, C), mean (C), rstd (C), running_mean (C) / running_var (C) updated in place when non-null, in (N, C).
template <class T>
void batchnorm1d_train_forward(T* out, T* mean, T* rstd, T* running_mean, T* running_var, const T* in, int N, int C,
                               T eps, T momentum) {
  MAE_CHECK(N > 1, "BatchNorm1d in training mode needs more than one sample, N = ", N);
  for (int c = 0; c < C; ++c) {
    double m = 0;
    for (int n = 0; n < N; ++n) m += in[size_t(n) * C + c];
    m /= N;
    double ss = 0;
    for (int n = 0; n < N; ++n) {
      const double d = in[size_t(n) * C + c] - m;
      ss += d * d;
    }
    const double r = 1.0 / std::sqrt(ss / N + double(eps));
    for (int n = 0; n < N; ++n) out[size_t(n) * C + c] = T((in[size_t(n) * C + c] - m) * r);
    mean[c] = T(m);
    rstd[c] = T(r);
    if (running_mean) running_mean[c] = T((1 - double(momentum)) * running_mean[c] + double(momentum) * m);
    if (running_var) running_var[c] = T((1 - double(momentum)) * running_var[c] + double(momentum) * ss / (N - 1));
  }
}

// out (N, C) = (in − running_mean) / sqrt(running_var + eps)
template <class T>
void batchnorm1d_eval_forward(T* out, const T* in, const T* running_mean, const T* running_var, int N, int C, T eps) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      out[size_t(n) * C + c] =
          T((double(in[size_t(n) * C + c]) - running_mean[c]) / std::sqrt(double(running_var[c]) + double(eps)));
}

// din (N, C) += rstd · (dout − mean_n dout − xhat · mean_n(dout · xhat))
template <class T>
void batchnorm1d_backward(T* din, const T* dout, const T* in, const T* mean, const T* rstd, int N, int C) {
  if (!din) return;
  for (int c = 0; c < C; ++c) {
    double sg = 0, sgx = 0;
    for (int n = 0; n < N; ++n) {
      const double xh = (double(in[size_t(n) * C + c]) - mean[c]) * rstd[c];
      sg += dout[size_t(n) * C + c];
      sgx += dout[size_t(n) * C + c] * xh;
    }
    for (int n = 0; n < N; ++n) {
      const double xh = (double(in[size_t(n) * C + c]) - mean[c]) * rstd[c];
      din[size_t(n) * C + c] += T(rstd[c] * (dout[size_t(n) * C + c] - sg / N - xh * sgx / N));
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

}  // namespace mae::ref
