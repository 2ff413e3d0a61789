// ViT classifier ops, reference loops (models_vit.py / timm VisionTransformer): residual with per-sample drop-path
// scale, cls + learned position embedding, token pooling.
#include "ops/ops.h"

namespace mae::ref {

// out[b, i] = x[b, i] + scale[b] · branch[b, i]
template <class T> void residual_scale_forward(T* out, const T* x, const T* branch, const T* scale, int B, size_t n) {
  for (int b = 0; b < B; ++b)
    for (size_t i = 0; i < n; ++i) {
      const size_t k = size_t(b) * n + i;
      out[k] = x[k] + scale[b] * branch[k];
    }
}

template <class T> void residual_scale_backward(T* dx, T* dbranch, const T* dout, const T* scale, int B, size_t n) {
  for (int b = 0; b < B; ++b)
    for (size_t i = 0; i < n; ++i) {
      const size_t k = size_t(b) * n + i;
      const T d = dout[k];  // read once: dx may alias dout
      if (dbranch) dbranch[k] += scale[b] * d;
      if (dx) dx[k] += d;
    }
}

// x = cat(cls_token.expand(B, -1, -1), tok) + pos_embed
template <class T> void vit_embed_forward(T* x, const T* tok, const T* cls, const T* pos, int B, int L, int D) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t <= L; ++t) {
      T* o = x + (size_t(b) * (1 + L) + t) * D;
      const T* src = t == 0 ? cls : tok + (size_t(b) * L + (t - 1)) * D;
      for (int d = 0; d < D; ++d) o[d] = src[d] + pos[size_t(t) * D + d];
    }
}

template <class T> void vit_embed_backward(T* dtok, T* dcls, T* dpos, const T* dx, int B, int L, int D) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t <= L; ++t) {
      const T* g = dx + (size_t(b) * (1 + L) + t) * D;
      for (int d = 0; d < D; ++d) {
        if (dpos) dpos[size_t(t) * D + d] += g[d];
        if (t == 0) {
          if (dcls) dcls[d] += g[d];
        } else if (dtok) {
          dtok[(size_t(b) * L + (t - 1)) * D + d] += g[d];
        }
      }
    }
}

template <class T> void token_pool_forward(T* out, const T* x, int B, int Tn, int D, bool mean) {
  for (int b = 0; b < B; ++b)
    for (int d = 0; d < D; ++d) {
      const T* xb = x + size_t(b) * Tn * D;
      if (!mean) {
        out[size_t(b) * D + d] = xb[d];
        continue;
      }
      T s = 0;
      for (int t = 1; t < Tn; ++t) s += xb[size_t(t) * D + d];
      out[size_t(b) * D + d] = s / T(Tn - 1);
    }
}

template <class T> void token_pool_backward(T* dx, const T* dout, int B, int Tn, int D, bool mean) {
  if (!dx) return;
  for (int b = 0; b < B; ++b)
    for (int d = 0; d < D; ++d) {
      const T g = dout[size_t(b) * D + d];
      T* db = dx + size_t(b) * Tn * D;
      if (!mean) {
        db[d] += g;
        continue;
      }
      for (int t = 1; t < Tn; ++t) db[size_t(t) * D + d] += g / T(Tn - 1);
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

}  // namespace mae::ref
