// ViT classifier ops, CPU: OpenMP over samples / rows / channels. Pure bandwidth, so small tensors stay serial.
#include "ops/ops.h"

namespace mae::cpu {

namespace {
constexpr size_t kParallelMin = 65536;
}

template <class T> void residual_scale_forward(T* out, const T* x, const T* branch, const T* scale, int B, size_t n) {
  const size_t total = size_t(B) * n;
#pragma omp parallel for schedule(static) if (total > kParallelMin)
  for (int b = 0; b < B; ++b) {
    const T s = scale[b];
    const size_t o = size_t(b) * n;
    if (s == T(0)) {  // a dropped path: the block is the identity for this sample
      for (size_t i = 0; i < n; ++i) out[o + i] = x[o + i];
    } else {
      for (size_t i = 0; i < n; ++i) out[o + i] = x[o + i] + s * branch[o + i];
    }
  }
}

template <class T> void residual_scale_backward(T* dx, T* dbranch, const T* dout, const T* scale, int B, size_t n) {
  const size_t total = size_t(B) * n;
#pragma omp parallel for schedule(static) if (total > kParallelMin)
  for (int b = 0; b < B; ++b) {
    const T s = scale[b];
    const size_t o = size_t(b) * n;
    for (size_t i = 0; i < n; ++i) {
      const T d = dout[o + i];
      if (dbranch) dbranch[o + i] += s * d;
      if (dx) dx[o + i] += d;
    }
  }
}

template <class T> void vit_embed_forward(T* x, const T* tok, const T* cls, const T* pos, int B, int L, int D) {
  const int rows = B * (1 + L);
#pragma omp parallel for schedule(static) if (size_t(rows) * D > kParallelMin)
  for (int r = 0; r < rows; ++r) {
    const int b = r / (1 + L), t = r % (1 + L);
    T* o = x + size_t(r) * D;
    const T* src = t == 0 ? cls : tok + (size_t(b) * L + (t - 1)) * D;
    const T* p = pos + size_t(t) * D;
    for (int d = 0; d < D; ++d) o[d] = src[d] + p[d];
  }
}

template <class T> void vit_embed_backward(T* dtok, T* dcls, T* dpos, const T* dx, int B, int L, int D) {
  const size_t big = size_t(B) * (1 + L) * D;
  if (dtok) {
#pragma omp parallel for schedule(static) if (big > kParallelMin)
    for (int r = 0; r < B * L; ++r) {
      const int b = r / L, l = r % L;
      const T* g = dx + (size_t(b) * (1 + L) + 1 + l) * D;
      T* o = dtok + size_t(r) * D;
      for (int d = 0; d < D; ++d) o[d] += g[d];
    }
  }
  if (dpos) {  // Σ over the batch, per table row: rows are independent, samples summed in order
#pragma omp parallel for schedule(static) if (big > kParallelMin)
    for (int t = 0; t <= L; ++t) {
      T* o = dpos + size_t(t) * D;
      for (int b = 0; b < B; ++b) {
        const T* g = dx + (size_t(b) * (1 + L) + t) * D;
        for (int d = 0; d < D; ++d) o[d] += g[d];
      }
    }
  }
  if (dcls) {
    for (int b = 0; b < B; ++b) {
      const T* g = dx + size_t(b) * (1 + L) * D;
      for (int d = 0; d < D; ++d) dcls[d] += g[d];
    }
  }
}

template <class T> void token_pool_forward(T* out, const T* x, int B, int Tn, int D, bool mean) {
#pragma omp parallel for schedule(static) if (size_t(B) * Tn * D > kParallelMin)
  for (int b = 0; b < B; ++b) {
    const T* xb = x + size_t(b) * Tn * D;
    T* o = out + size_t(b) * D;
    if (!mean) {
      for (int d = 0; d < D; ++d) o[d] = xb[d];
      continue;
    }
    for (int d = 0; d < D; ++d) o[d] = T(0);
    for (int t = 1; t < Tn; ++t)  // row-wise: contiguous reads, same summation order as the reference
      for (int d = 0; d < D; ++d) o[d] += xb[size_t(t) * D + d];
    for (int d = 0; d < D; ++d) o[d] /= T(Tn - 1);
  }
}

template <class T> void token_pool_backward(T* dx, const T* dout, int B, int Tn, int D, bool mean) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (size_t(B) * Tn * D > kParallelMin)
  for (int b = 0; b < B; ++b) {
    const T* g = dout + size_t(b) * D;
    T* db = dx + size_t(b) * Tn * D;
    if (!mean) {
      for (int d = 0; d < D; ++d) db[d] += g[d];
      continue;
    }
    for (int t = 1; t < Tn; ++t)
      for (int d = 0; d < D; ++d) db[size_t(t) * D + d] += g[d] / T(Tn - 1);
  }
}

#define MAE_INSTANTIATE(T)                                                                        \
  template void residual_scale_forward<T>(T*, const T*, const T*, const T*, int, size_t);         \
  template void residual_scale_backward<T>(T*, T*, const T*, const T*, int, size_t);              \
  template void vit_embed_forward<T>(T*, const T*, const T*, const T*, int, int, int);            \
  template void vit_embed_backward<T>(T*, T*, T*, const T*, int, int, int);                       \
  template void token_pool_forward<T>(T*, const T*, int, int, int, bool);                         \
  template void token_pool_backward<T>(T*, const T*, int, int, int, bool);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
