// Image <-> patch rows, CPU: OpenMP over (sample, patch-row) pairs; each task touches a disjoint band of the image
// and a disjoint set of patch rows, so the backward scatter needs no atomics. Orders as in ref/patches.cpp.
#include <cstring>

#include "core/error.h"
#include "ops/ops.h"

namespace mae::cpu {

namespace {
void check_grid(int H, int W, int p) {
  MAE_CHECK(p > 0 && H % p == 0 && W % p == 0, "image ", H, "x", W, " is not a whole number of ", p, "-pixel patches");
}
}  // namespace

// out (B, L, C·p·p), imgs (B, C, H, W): each (c, i) is a contiguous run of p pixels on both sides.
template <class T> void im2patch_cij(T* out, const T* imgs, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * gh; ++bh) {
    const int b = bh / gh, hi = bh % gh;
    for (int wi = 0; wi < gw; ++wi) {
      T* o = out + (size_t(b) * L + hi * gw + wi) * P;
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < p; ++i)
          std::memcpy(o + (c * p + i) * p, imgs + ((size_t(b) * C + c) * H + hi * p + i) * W + wi * p,
                      sizeof(T) * p);
    }
  }
}

// dimgs (B, C, H, W) += scatter of dout (B, L, C·p·p)
template <class T> void im2patch_cij_backward(T* dimgs, const T* dout, int B, int C, int H, int W, int p) {
  if (!dimgs) return;
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * gh; ++bh) {
    const int b = bh / gh, hi = bh % gh;
    for (int wi = 0; wi < gw; ++wi) {
      const T* g = dout + (size_t(b) * L + hi * gw + wi) * P;
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < p; ++i) {
          T* d = dimgs + ((size_t(b) * C + c) * H + hi * p + i) * W + wi * p;
          const T* s = g + (c * p + i) * p;
          for (int j = 0; j < p; ++j) d[j] += s[j];
        }
    }
  }
}

// out (B, L, p·p·C), imgs (B, C, H, W): channels interleave innermost.
template <class T> void patchify_ijc(T* out, const T* imgs, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * gh; ++bh) {
    const int b = bh / gh, hi = bh % gh;
    for (int wi = 0; wi < gw; ++wi) {
      T* o = out + (size_t(b) * L + hi * gw + wi) * P;
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < p; ++i) {
          const T* s = imgs + ((size_t(b) * C + c) * H + hi * p + i) * W + wi * p;
          for (int j = 0; j < p; ++j) o[(i * p + j) * C + c] = s[j];
        }
    }
  }
}

// imgs (B, C, H, W), patches (B, L, p·p·C)
template <class T> void unpatchify_ijc(T* imgs, const T* patches, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * gh; ++bh) {
    const int b = bh / gh, hi = bh % gh;
    for (int wi = 0; wi < gw; ++wi) {
      const T* s = patches + (size_t(b) * L + hi * gw + wi) * P;
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < p; ++i) {
          T* d = imgs + ((size_t(b) * C + c) * H + hi * p + i) * W + wi * p;
          for (int j = 0; j < p; ++j) d[j] = s[(i * p + j) * C + c];
        }
    }
  }
}

#define MAE_INSTANTIATE(T)                                                          \
  template void im2patch_cij<T>(T*, const T*, int, int, int, int, int);             \
  template void im2patch_cij_backward<T>(T*, const T*, int, int, int, int, int);    \
  template void patchify_ijc<T>(T*, const T*, int, int, int, int, int);             \
  template void unpatchify_ijc<T>(T*, const T*, int, int, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::cpu
