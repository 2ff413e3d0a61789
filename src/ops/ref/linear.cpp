// Reference linear layer: out = in · Wᵀ + b (torch.nn.Linear), plain loops accumulating in double.
#include "ops/ops.h"

namespace mae::ref {

// out (N, O), in (N, I), W (O, I), b (O) or nullptr.
template <class T> void linear_forward(T* out, const T* in, const T* W, const T* b, int N, int I, int O) {
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      double s = b ? double(b[o]) : 0.0;
      for (int i = 0; i < I; ++i) s += double(in[size_t(n) * I + i]) * double(W[size_t(o) * I + i]);
      out[size_t(n) * O + o] = T(s);
    }
}

// din (N, I) += dout·W;  dW (O, I) += doutᵀ·in;  db (O) += Σ_n dout.
template <class T>
void linear_backward(T* din, T* dW, T* db, const T* dout, const T* in, const T* W, int N, int I, int O) {
  if (din)
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < I; ++i) {
        double s = 0;
        for (int o = 0; o < O; ++o) s += double(dout[size_t(n) * O + o]) * double(W[size_t(o) * I + i]);
        din[size_t(n) * I + i] += T(s);
      }
  if (dW)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < I; ++i) {
        double s = 0;
        for (int n = 0; n < N; ++n) s += double(dout[size_t(n) * O + o]) * double(in[size_t(n) * I + i]);
        dW[size_t(o) * I + i] += T(s);
      }
  if (db)
    for (int o = 0; o < O; ++o) {
      double s = 0;
      for (int n = 0; n < N; ++n) s += double(dout[size_t(n) * O + o]);
      db[o] += T(s);
    }
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void linear_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int, int);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                      int, int);

}  // namespace mae::ref
