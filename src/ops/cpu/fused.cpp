// CPU fused forward ops (op_decls.inc): residual + LayerNorm in one pass over the rows; linear + GELU composed
// (ops/composed.inc).
#include "ops/cpu/layernorm_row.h"
#include "ops/ops.h"

namespace mae::cpu {

namespace {
constexpr size_t kParallelMin = 16384;  // as layernorm_forward
}

// sum = x + [scale[b] ·] branch, out = LayerNorm(sum): each row is summed, then normalised while still in cache.
template <class T>
void residual_layernorm_forward(T* sum, T* out, T* mean, T* rstd, const T* x, const T* branch, const T* scale,
                                const T* w, const T* b, int B, int Tn, int C, T eps) {
  const int N = B * Tn;
#pragma omp parallel for schedule(static) if (size_t(N) * C > kParallelMin)
  for (int n = 0; n < N; ++n) {
    const size_t o = size_t(n) * C;
    const T* xr = x + o;
    const T* br = branch + o;
    T* sr = sum + o;
    if (!scale) {
      for (int c = 0; c < C; ++c) sr[c] = xr[c] + br[c];
    } else if (const T s = scale[n / Tn]; s == T(0)) {  // a dropped path: identity, as residual_scale_forward
      for (int c = 0; c < C; ++c) sr[c] = xr[c];
    } else {
      for (int c = 0; c < C; ++c) sr[c] = xr[c] + s * br[c];
    }
    layernorm_row(out + o, mean + n, rstd + n, sr, w, b, C, eps);
  }
}

#include "ops/composed.inc"

#define MAE_INSTANTIATE(T)                                                                                       \
  template void residual_layernorm_forward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                                              int, int, int, T);                                                 \
  template void linear_gelu_forward<T>(T*, T*, const T*, const T*, const T*, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
