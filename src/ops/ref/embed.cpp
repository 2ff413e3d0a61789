// Token bookkeeping around the encoder and decoder, reference loops (models_mae.py forward_encoder/forward_decoder).
#include "ops/ops.h"

namespace mae::ref {

// x (B, 1+K, D), tok (B, L, D), cls (D), pos (1+L, D), ids_shuffle (B, L)
//   x = x + self.pos_embed[:, 1:, :];  x_masked = torch.gather(x, 1, ids_keep)  (ids_keep = ids_shuffle[:, :K])
//   cls_tokens = (self.cls_token + self.pos_embed[:, :1, :]).expand(...);  x = torch.cat((cls_tokens, x), dim=1)
template <class T>
void encoder_embed_forward(T* x, const T* tok, const T* cls, const T* pos, const int* ids_shuffle, int B, int L, int K,
                           int D) {
  for (int b = 0; b < B; ++b) {
    T* xb = x + size_t(b) * (1 + K) * D;
    for (int d = 0; d < D; ++d) xb[d] = cls[d] + pos[d];
    for (int k = 0; k < K; ++k) {
      const int s = ids_shuffle[size_t(b) * L + k];
      for (int d = 0; d < D; ++d)
        xb[size_t(1 + k) * D + d] = tok[(size_t(b) * L + s) * D + d] + pos[size_t(1 + s) * D + d];
    }
  }
}

template <class T>
void encoder_embed_backward(T* dtok, T* dcls, const T* dx, const int* ids_shuffle, int B, int L, int K, int D) {
  for (int b = 0; b < B; ++b) {
    const T* dxb = dx + size_t(b) * (1 + K) * D;
    if (dcls)
      for (int d = 0; d < D; ++d) dcls[d] += dxb[d];
    if (dtok)
      for (int k = 0; k < K; ++k) {
        const int s = ids_shuffle[size_t(b) * L + k];
        for (int d = 0; d < D; ++d) dtok[(size_t(b) * L + s) * D + d] += dxb[size_t(1 + k) * D + d];
      }
  }
}

// z (B, 1+L, E), y (B, 1+K, E), mask_token (E), dpos (1+L, E), ids_restore (B, L)
//   mask_tokens = self.mask_token.repeat(...); x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
//   x_ = torch.gather(x_, 1, ids_restore); x = torch.cat([x[:, :1, :], x_], dim=1); x = x + self.decoder_pos_embed
template <class T>
void decoder_embed_forward(T* z, const T* y, const T* mask_token, const T* dpos, const int* ids_restore, int B, int L,
                           int K, int E) {
  for (int b = 0; b < B; ++b) {
    const T* yb = y + size_t(b) * (1 + K) * E;
    T* zb = z + size_t(b) * (1 + L) * E;
    for (int e = 0; e < E; ++e) zb[e] = yb[e] + dpos[e];
    for (int l = 0; l < L; ++l) {
      const int r = ids_restore[size_t(b) * L + l];
      const T* src = r < K ? yb + size_t(1 + r) * E : mask_token;
      for (int e = 0; e < E; ++e) zb[size_t(1 + l) * E + e] = src[e] + dpos[size_t(1 + l) * E + e];
    }
  }
}

template <class T>
void decoder_embed_backward(T* dy, T* dmask_token, const T* dz, const int* ids_restore, int B, int L, int K, int E) {
  for (int b = 0; b < B; ++b) {
    const T* dzb = dz + size_t(b) * (1 + L) * E;
    T* dyb = dy ? dy + size_t(b) * (1 + K) * E : nullptr;
    if (dyb)
      for (int e = 0; e < E; ++e) dyb[e] += dzb[e];
    for (int l = 0; l < L; ++l) {
      const int r = ids_restore[size_t(b) * L + l];
      T* dst = r < K ? dyb : dmask_token;
      if (!dst) continue;
      if (r < K) dst += size_t(1 + r) * E;
      for (int e = 0; e < E; ++e) dst[e] += dzb[size_t(1 + l) * E + e];
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

}  // namespace mae::ref
