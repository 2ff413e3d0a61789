// Token bookkeeping around the encoder and decoder, CPU: OpenMP over samples. ids_shuffle and ids_restore are
// permutations, so per-sample scatters hit disjoint rows; only the shared cls / mask-token gradients are reductions,
// done column-parallel so no thread-private buffers are needed. Semantics as in ref/embed.cpp.
#include <algorithm>

#include "ops/ops.h"

namespace mae::cpu {

namespace {
template <class T> inline void add_rows(T* __restrict out, const T* __restrict a, const T* __restrict b, int n) {
  for (int i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
template <class T> inline void acc_row(T* __restrict out, const T* __restrict a, int n) {
  for (int i = 0; i < n; ++i) out[i] += a[i];
}
constexpr int kCols = 64;  // column block of the cls / mask-token reductions
}  // namespace

// x (B, 1+K, D), tok (B, L, D), cls (D), pos (1+L, D), ids_shuffle (B, L)
template <class T>
void encoder_embed_forward(T* x, const T* tok, const T* cls, const T* pos, const int* ids_shuffle, int B, int L, int K,
                           int D) {
#pragma omp parallel for schedule(static)
  for (int bk = 0; bk < B * (1 + K); ++bk) {
    const int b = bk / (1 + K), k = bk % (1 + K);
    T* xr = x + size_t(bk) * D;
    if (k == 0) {
      add_rows(xr, cls, pos, D);
    } else {
      const int s = ids_shuffle[size_t(b) * L + k - 1];
      add_rows(xr, tok + (size_t(b) * L + s) * D, pos + size_t(1 + s) * D, D);
    }
  }
}

template <class T>
void encoder_embed_backward(T* dtok, T* dcls, const T* dx, const int* ids_shuffle, int B, int L, int K, int D) {
  if (dtok) {
#pragma omp parallel for schedule(static)
    for (int bk = 0; bk < B * K; ++bk) {
      const int b = bk / K, k = bk % K;
      const int s = ids_shuffle[size_t(b) * L + k];
      acc_row(dtok + (size_t(b) * L + s) * D, dx + (size_t(b) * (1 + K) + 1 + k) * D, D);
    }
  }
  if (dcls) {
    for (int b = 0; b < B; ++b) acc_row(dcls, dx + size_t(b) * (1 + K) * D, D);
  }
}

// z (B, 1+L, E), y (B, 1+K, E), mask_token (E), dpos (1+L, E), ids_restore (B, L)
template <class T>
void decoder_embed_forward(T* z, const T* y, const T* mask_token, const T* dpos, const int* ids_restore, int B, int L,
                           int K, int E) {
#pragma omp parallel for schedule(static)
  for (int bl = 0; bl < B * (1 + L); ++bl) {
    const int b = bl / (1 + L), l = bl % (1 + L);
    const T* yb = y + size_t(b) * (1 + K) * E;
    const T* src = yb;  // cls row
    if (l > 0) {
      const int r = ids_restore[size_t(b) * L + l - 1];
      src = r < K ? yb + size_t(1 + r) * E : mask_token;
    }
    add_rows(z + size_t(bl) * E, src, dpos + size_t(l) * E, E);
  }
}

template <class T>
void decoder_embed_backward(T* dy, T* dmask_token, const T* dz, const int* ids_restore, int B, int L, int K, int E) {
  if (dy) {
#pragma omp parallel for schedule(static)
    for (int bl = 0; bl < B * (1 + L); ++bl) {
      const int b = bl / (1 + L), l = bl % (1 + L);
      const int r = l == 0 ? -1 : ids_restore[size_t(b) * L + l - 1];
      if (r >= K) continue;  // a mask-token position
      acc_row(dy + (size_t(b) * (1 + K) + 1 + r) * E, dz + size_t(bl) * E, E);
    }
  }
  if (dmask_token) {
    // Column blocks: each thread owns a slice of the mask-token gradient and walks every removed position.
    const int nblk = (E + kCols - 1) / kCols;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; ++blk) {
      const int e0 = blk * kCols, n = std::min(kCols, E - e0);
      for (int b = 0; b < B; ++b)
        for (int l = 0; l < L; ++l)
          if (ids_restore[size_t(b) * L + l] >= K) acc_row(dmask_token + e0, dz + (size_t(b) * (1 + L) + 1 + l) * E + e0, n);
    }
  }
}

#define MAE_INSTANTIATE(T)                                                                                      \
  template void encoder_embed_forward<T>(T*, const T*, const T*, const T*, const int*, int, int, int, int);    \
  template void encoder_embed_backward<T>(T*, T*, const T*, const int*, int, int, int, int);                  \
  template void decoder_embed_forward<T>(T*, const T*, const T*, const T*, const int*, int, int, int, int);    \
  template void decoder_embed_backward<T>(T*, T*, const T*, const int*, int, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
