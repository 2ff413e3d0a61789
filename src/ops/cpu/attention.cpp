// Multi-head self-attention core, CPU: one OpenMP task per (b, h) pair, the three products per pair as small GEMMs
// straight on the strided qkv rows (lda = 3D, no gather). Inside the parallel region OpenBLAS runs single-threaded.
// Under Precision::bf16, and in an inference model's fp32 forward (float, long enough sequences), the forward's
// products are oneDNN matmuls (attention_dnnl.h).
#include <cmath>
#include <type_traits>

#include "core/error.h"
#include "ops/cpu/attention_rows.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/precision.h"
#include "ops/ops.h"
#ifdef MAE_DNNL
#include "ops/cpu/attention_dnnl.h"
#endif

namespace mae::cpu {

// out (B, Tn, D), att (B, H, Tn, Tn), qkv (B, Tn, 3D)
template <class T> void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int D, int H) {
  MAE_CHECK(H > 0 && D % H == 0, "D ", D, " H ", H);
  const int hd = D / H, ld = 3 * D;
#ifdef MAE_DNNL
  if constexpr (std::is_same_v<T, float>) {
    if (precision() == Precision::bf16 && attention_onednn_pays(Tn))
      return attention_forward_bf16(out, att, qkv, B, Tn, D, H);
    if (inference_onednn() && attention_onednn_pays(Tn)) return attention_forward_f32(out, att, qkv, B, Tn, D, H);
  }
#endif
  const T scale = T(1) / std::sqrt(T(hd));
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * H; ++bh) {
    const int b = bh / H, h = bh % H;
    const T* q = qkv + size_t(b) * Tn * ld + h * hd;  // (Tn, hd), row stride 3D
    const T* k = q + D;
    const T* v = q + 2 * D;
    T* a = att + size_t(bh) * Tn * Tn;  // (Tn, Tn)
    gemm<T>(false, true, Tn, Tn, hd, scale, q, ld, k, ld, T(0), a, Tn);
    softmax_rows(a, Tn, Tn);
    gemm<T>(false, false, Tn, hd, Tn, T(1), a, Tn, v, ld, T(0), out + size_t(b) * Tn * D + h * hd, D);
  }
}

// dqkv (B, Tn, 3D) +=; scratch (B, H, Tn, Tn)
template <class T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* att, int B, int Tn, int D, int H) {
  if (!dqkv) return;
  MAE_CHECK(H > 0 && D % H == 0, "D ", D, " H ", H);
  const int hd = D / H, ld = 3 * D;
  const T scale = T(1) / std::sqrt(T(hd));
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * H; ++bh) {
    const int b = bh / H, h = bh % H;
    const size_t off = size_t(b) * Tn * ld + h * hd;
    const T *q = qkv + off, *k = q + D, *v = q + 2 * D;
    T *dq = dqkv + off, *dk = dq + D, *dv = dq + 2 * D;
    const T* a = att + size_t(bh) * Tn * Tn;
    const T* go = dout + size_t(b) * Tn * D + h * hd;  // (Tn, hd), row stride D
    T* ds = scratch + size_t(bh) * Tn * Tn;
    gemm<T>(false, true, Tn, Tn, hd, T(1), go, D, v, ld, T(0), ds, Tn);       // datt = dout · vᵀ
    gemm<T>(true, false, Tn, hd, Tn, T(1), a, Tn, go, D, T(1), dv, ld);       // dv += attᵀ · dout
    softmax_backward_rows(ds, a, Tn, Tn);                                     // dscores
    gemm<T>(false, false, Tn, hd, Tn, scale, ds, Tn, k, ld, T(1), dq, ld);    // dq += dscores · k · scale
    gemm<T>(true, false, Tn, hd, Tn, scale, ds, Tn, q, ld, T(1), dk, ld);     // dk += dscoresᵀ · q · scale
  }
}

#define MAE_INSTANTIATE(T)                                                                                  \
  template void attention_forward<T>(T*, T*, const T*, int, int, int, int);                                \
  template void attention_backward<T>(T*, T*, const T*, const T*, const T*, int, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
