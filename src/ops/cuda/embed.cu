// The MAE token gather/scatter on the GPU: the encoder keeps the visible patches (ids_shuffle), the decoder puts
// them back with mask tokens (ids_restore). One thread per output element; scatters hit disjoint rows
// (permutations), the cls and mask-token gradients use the column reduction.
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
__global__ void encoder_embed_fwd(float* x, const float* tok, const float* cls, const float* pos, const int* ids,
                                  int B, int L, int K, int D) {
  const size_t n = size_t(B) * (1 + K) * D;
  MAE_GRID_STRIDE(i, n) {
    const int d = int(i % D);
    const size_t bk = i / D;
    const int k = int(bk % (1 + K)), b = int(bk / (1 + K));
    if (k == 0) {
      x[i] = cls[d] + pos[d];
    } else {
      const int s = ids[size_t(b) * L + k - 1];
      x[i] = tok[(size_t(b) * L + s) * D + d] + pos[size_t(1 + s) * D + d];
    }
  }
}
__global__ void encoder_embed_bwd(float* dtok, const float* dx, const int* ids, int B, int L, int K, int D) {
  const size_t n = size_t(B) * K * D;
  MAE_GRID_STRIDE(i, n) {
    const int d = int(i % D);
    const size_t bk = i / D;
    const int k = int(bk % K), b = int(bk / K);
    const int s = ids[size_t(b) * L + k];
    dtok[(size_t(b) * L + s) * D + d] += dx[(size_t(b) * (1 + K) + 1 + k) * D + d];
  }
}
__global__ void decoder_embed_fwd(float* z, const float* y, const float* mask_token, const float* dpos,
                                  const int* ids_restore, int B, int L, int K, int E) {
  const size_t n = size_t(B) * (1 + L) * E;
  MAE_GRID_STRIDE(i, n) {
    const int e = int(i % E);
    const size_t bl = i / E;
    const int l = int(bl % (1 + L)), b = int(bl / (1 + L));
    const float* yb = y + size_t(b) * (1 + K) * E;
    float src;
    if (l == 0) {
      src = yb[e];
    } else {
      const int r = ids_restore[size_t(b) * L + l - 1];
      src = r < K ? yb[size_t(1 + r) * E + e] : mask_token[e];
    }
    z[i] = src + dpos[size_t(l) * E + e];
  }
}
__global__ void decoder_embed_bwd(float* dy, const float* dz, const int* ids_restore, int B, int L, int K, int E) {
  const size_t n = size_t(B) * (1 + L) * E;
  MAE_GRID_STRIDE(i, n) {
    const int e = int(i % E);
    const size_t bl = i / E;
    const int l = int(bl % (1 + L)), b = int(bl / (1 + L));
    const int r = l == 0 ? -1 : ids_restore[size_t(b) * L + l - 1];
    if (r >= K) continue;
    dy[(size_t(b) * (1 + K) + 1 + r) * E + e] += dz[i];
  }
}
}  // namespace

template <class T>
void encoder_embed_forward(T* x, const T* tok, const T* cls, const T* pos, const int* ids_shuffle, int B, int L, int K,
                           int D) {
  MAE_LAUNCH(encoder_embed_fwd, size_t(B) * (1 + K) * D, x, tok, cls, pos, ids_shuffle, B, L, K, D);
}
template <class T>
void encoder_embed_backward(T* dtok, T* dcls, const T* dx, const int* ids_shuffle, int B, int L, int K, int D) {
  if (dtok) MAE_LAUNCH(encoder_embed_bwd, size_t(B) * K * D, dtok, dx, ids_shuffle, B, L, K, D);
  // dcls += Σ_b dx[b, 0]
  if (dcls)
    colsum(dcls, B, D, [=] __device__(int b, int d) { return dx[size_t(b) * (1 + K) * D + d]; });
}
template <class T>
void decoder_embed_forward(T* z, const T* y, const T* mask_token, const T* dpos, const int* ids_restore, int B, int L,
                           int K, int E) {
  MAE_LAUNCH(decoder_embed_fwd, size_t(B) * (1 + L) * E, z, y, mask_token, dpos, ids_restore, B, L, K, E);
}
template <class T>
void decoder_embed_backward(T* dy, T* dmask_token, const T* dz, const int* ids_restore, int B, int L, int K, int E) {
  if (dy) MAE_LAUNCH(decoder_embed_bwd, size_t(B) * (1 + L) * E, dy, dz, ids_restore, B, L, K, E);
  // dmask_token += Σ over removed positions (b, l) of dz[b, 1+l]
  if (dmask_token)
    colsum(dmask_token, B * L, E, [=] __device__(int bl, int e) {
      const int b = bl / L, l = bl % L;
      return ids_restore[bl] >= K ? dz[(size_t(b) * (1 + L) + 1 + l) * E + e] : 0.f;
    });
}

template void encoder_embed_forward<float>(float*, const float*, const float*, const float*, const int*, int, int, int,
                                           int);
template void encoder_embed_backward<float>(float*, float*, const float*, const int*, int, int, int, int);
template void decoder_embed_forward<float>(float*, const float*, const float*, const float*, const int*, int, int, int,
                                           int);
template void decoder_embed_backward<float>(float*, float*, const float*, const int*, int, int, int, int);

}  // namespace mae::cuda
