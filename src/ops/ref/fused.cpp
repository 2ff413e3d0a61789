// Reference fused forward ops: exactly the unfused sequences they replace (the specification).
#include "ops/ops.h"

namespace mae::ref {

template <class T>
void residual_layernorm_forward(T* sum, T* out, T* mean, T* rstd, const T* x, const T* branch, const T* scale,
                                const T* w, const T* b, int B, int Tn, int C, T eps) {
  const size_t per = size_t(Tn) * C;
  if (scale) residual_scale_forward(sum, x, branch, scale, B, per);
  else add_forward(sum, x, branch, size_t(B) * per);
  layernorm_forward(out, mean, rstd, sum, w, b, B * Tn, C, eps);
}

// Linear + exact GELU: the linear layer, then the GELU of its output.
template <class T> void linear_gelu_forward(T* pre, T* act, const T* in, const T* W, const T* b, int N, int I, int O) {
  linear_forward(pre, in, W, b, N, I, O);
  gelu_forward(act, pre, size_t(N) * O);
}

#define MAE_INSTANTIATE(T)                                                                                       \
  template void residual_layernorm_forward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                                              int, int, int, T);                                                 \
  template void linear_gelu_forward<T>(T*, T*, const T*, const T*, const T*, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::ref
