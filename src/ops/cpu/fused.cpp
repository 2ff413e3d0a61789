// CPU fused forward ops (op_decls.inc): residual + LayerNorm in one pass over the rows; linear + GELU.
#include "ops/cpu/layernorm_row.h"
#include "ops/cpu/precision.h"
#include "ops/ops.h"
#ifdef MAE_DNNL
#include "ops/cpu/dnnl_matmul.h"
#endif

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

// Linear + exact GELU. The GEMM adds the bias for free (OpenBLAS onto the seeded output, oneDNN itself), so on
// the training path the GELU is a pass of its own that keeps `pre` for the backward. An inference forward
// (inference_onednn()) has no backward: oneDNN applies the GELU as it writes `act`, and `pre` is left unwritten.
template <class T> void linear_gelu_forward(T* pre, T* act, const T* in, const T* W, const T* b, int N, int I, int O) {
#ifdef MAE_DNNL
  if constexpr (std::is_same_v<T, float>)
    if (inference_onednn() && I > 0 && N > 0 && O > 0)
      return dnnl_mm::matmul(dnnl_mm::Operand::f32, false, true, N, O, I, in, I, W, I, b, false, act, O,
                             /*gelu=*/true);
#endif
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

}  // namespace mae::cpu
