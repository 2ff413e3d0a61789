// Multi-head self-attention core, reference loops (timm Attention between qkv and proj):
//   q, k, v = qkv.reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4)
//   attn = softmax(q @ k.transpose(-2, -1) * hd**-0.5);  out = (attn @ v).transpose(1, 2).reshape(B, N, D)
#include <cmath>
#include <algorithm>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::ref {

template <class T> void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int D, int H) {
  MAE_CHECK(H > 0 && D % H == 0, "D ", D, " H ", H);
  const int hd = D / H;
  const T scale = T(1) / std::sqrt(T(hd));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < Tn; ++i) {
        const T* q = qkv + (size_t(b) * Tn + i) * 3 * D + h * hd;
        T* a = att + ((size_t(b) * H + h) * Tn + i) * Tn;  // (Tn) row of (B, H, Tn, Tn)
        T mx = -INFINITY;
        for (int j = 0; j < Tn; ++j) {
          const T* k = qkv + (size_t(b) * Tn + j) * 3 * D + D + h * hd;
          T s = 0;
          for (int d = 0; d < hd; ++d) s += q[d] * k[d];
          a[j] = s * scale;
          mx = std::max(mx, a[j]);
        }
        T sum = 0;
        for (int j = 0; j < Tn; ++j) {
          a[j] = std::exp(a[j] - mx);
          sum += a[j];
        }
        for (int j = 0; j < Tn; ++j) a[j] /= sum;
        T* o = out + (size_t(b) * Tn + i) * D + h * hd;
        for (int d = 0; d < hd; ++d) {
          T s = 0;
          for (int j = 0; j < Tn; ++j) s += a[j] * qkv[(size_t(b) * Tn + j) * 3 * D + 2 * D + h * hd + d];
          o[d] = s;
        }
      }
}

template <class T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* att, int B, int Tn, int D, int H) {
  if (!dqkv) return;
  MAE_CHECK(H > 0 && D % H == 0, "D ", D, " H ", H);
  const int hd = D / H;
  const T scale = T(1) / std::sqrt(T(hd));
  auto Q = [&](int b, int t, int d) { return qkv[(size_t(b) * Tn + t) * 3 * D + d]; };  // d in [0, 3D)
  auto dQ = [&](int b, int t, int d) -> T& { return dqkv[(size_t(b) * Tn + t) * 3 * D + d]; };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const T* a = att + (size_t(b) * H + h) * Tn * Tn;  // (Tn, Tn)
      T* ds = scratch + (size_t(b) * H + h) * Tn * Tn;   // datt, then dscores
      const T* go = dout + size_t(b) * Tn * D + h * hd;  // rows of stride D
      // datt = dout · vᵀ
      for (int i = 0; i < Tn; ++i)
        for (int j = 0; j < Tn; ++j) {
          T s = 0;
          for (int d = 0; d < hd; ++d) s += go[size_t(i) * D + d] * Q(b, j, 2 * D + h * hd + d);
          ds[i * Tn + j] = s;
        }
      // dv += attᵀ · dout
      for (int j = 0; j < Tn; ++j)
        for (int d = 0; d < hd; ++d) {
          T s = 0;
          for (int i = 0; i < Tn; ++i) s += a[i * Tn + j] * go[size_t(i) * D + d];
          dQ(b, j, 2 * D + h * hd + d) += s;
        }
      // softmax backward: dscores = att ⊙ (datt − Σ_j datt ⊙ att)
      for (int i = 0; i < Tn; ++i) {
        T dot = 0;
        for (int j = 0; j < Tn; ++j) dot += ds[i * Tn + j] * a[i * Tn + j];
        for (int j = 0; j < Tn; ++j) ds[i * Tn + j] = a[i * Tn + j] * (ds[i * Tn + j] - dot);
      }
      // dq += dscores · k · scale;  dk += dscoresᵀ · q · scale
      for (int i = 0; i < Tn; ++i)
        for (int d = 0; d < hd; ++d) {
          T sq = 0, sk = 0;
          for (int j = 0; j < Tn; ++j) {
            sq += ds[i * Tn + j] * Q(b, j, D + h * hd + d);
            sk += ds[j * Tn + i] * Q(b, j, h * hd + d);
          }
          dQ(b, i, h * hd + d) += sq * scale;
          dQ(b, i, D + h * hd + d) += sk * scale;
        }
    }
}

#define MAE_INSTANTIATE(T)                                                                                  \
  template void attention_forward<T>(T*, T*, const T*, int, int, int, int);                                \
  template void attention_backward<T>(T*, T*, const T*, const T*, const T*, int, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::ref
