// Reference LayerNorm over the last dim (torch.nn.LayerNorm(C, eps): biased variance), plain loops in double.
#include <cmath>

#include "ops/ops.h"

namespace mae::ref {

// out (N, C), mean (N), rstd (N), in (N, C), w (C), b (C).
template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N, int C, T eps) {
  for (int n = 0; n < N; ++n) {
    const T* x = in + size_t(n) * C;
    double m = 0;
    for (int c = 0; c < C; ++c) m += double(x[c]);
    m /= C;
    double var = 0;
    for (int c = 0; c < C; ++c) var += (double(x[c]) - m) * (double(x[c]) - m);
    var /= C;
    const double s = 1.0 / std::sqrt(var + double(eps));
    for (int c = 0; c < C; ++c) out[size_t(n) * C + c] = T((double(x[c]) - m) * s * double(w[c]) + double(b[c]));
    mean[n] = T(m);
    rstd[n] = T(s);
  }
}

// With x̂ = (x − mean)·rstd and g = dout ⊙ w:  din = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),
// dw = Σ_n dout ⊙ x̂,  db = Σ_n dout.
template <class T>
void layernorm_backward(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const T* mean, const T* rstd,
                        int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* x = in + size_t(n) * C;
    const T* dy = dout + size_t(n) * C;
    const double m = mean[n], s = rstd[n];
    double g_mean = 0, gx_mean = 0;
    for (int c = 0; c < C; ++c) {
      const double xh = (double(x[c]) - m) * s;
      const double g = double(dy[c]) * double(w[c]);
      g_mean += g;
      gx_mean += g * xh;
    }
    g_mean /= C;
    gx_mean /= C;
    for (int c = 0; c < C; ++c) {
      const double xh = (double(x[c]) - m) * s;
      const double g = double(dy[c]) * double(w[c]);
      if (din) din[size_t(n) * C + c] += T(s * (g - g_mean - xh * gx_mean));
      if (dw) dw[c] += T(double(dy[c]) * xh);
      if (db) db[c] += dy[c];
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

}  // namespace mae::ref
