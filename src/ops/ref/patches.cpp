// Image <-> patch rows, reference loops. Two orders inside a patch (see op_decls.inc):
//   (c, i, j): the patch-embed Conv2d(C, D, p, stride p) seen as a Linear on flattened patches.
//   (i, j, c): the official patchify, x.reshape(N, C, h, p, w, p); einsum('nchpwq->nhwpqc'); reshape(N, h*w, p*p*C).
#include "core/error.h"
#include "ops/ops.h"

namespace mae::ref {

namespace {
void check_grid(int H, int W, int p) {
  MAE_CHECK(p > 0 && H % p == 0 && W % p == 0, "image ", H, "x", W, " is not a whole number of ", p, "-pixel patches");
}
}  // namespace

// out (B, L, C·p·p), imgs (B, C, H, W)
template <class T> void im2patch_cij(T* out, const T* imgs, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
  for (int b = 0; b < B; ++b)
    for (int hi = 0; hi < gh; ++hi)
      for (int wi = 0; wi < gw; ++wi)
        for (int c = 0; c < C; ++c)
          for (int i = 0; i < p; ++i)
            for (int j = 0; j < p; ++j)
              out[(size_t(b) * L + hi * gw + wi) * P + (c * p + i) * p + j] =
                  imgs[((size_t(b) * C + c) * H + hi * p + i) * W + wi * p + j];
}

template <class T> void im2patch_cij_backward(T* dimgs, const T* dout, int B, int C, int H, int W, int p) {
  if (!dimgs) return;
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
  for (int b = 0; b < B; ++b)
    for (int hi = 0; hi < gh; ++hi)
      for (int wi = 0; wi < gw; ++wi)
        for (int c = 0; c < C; ++c)
          for (int i = 0; i < p; ++i)
            for (int j = 0; j < p; ++j)
              dimgs[((size_t(b) * C + c) * H + hi * p + i) * W + wi * p + j] +=
                  dout[(size_t(b) * L + hi * gw + wi) * P + (c * p + i) * p + j];
}

// out (B, L, p·p·C), imgs (B, C, H, W)
template <class T> void patchify_ijc(T* out, const T* imgs, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
  for (int b = 0; b < B; ++b)
    for (int hi = 0; hi < gh; ++hi)
      for (int wi = 0; wi < gw; ++wi)
        for (int i = 0; i < p; ++i)
          for (int j = 0; j < p; ++j)
            for (int c = 0; c < C; ++c)
              out[(size_t(b) * L + hi * gw + wi) * P + (i * p + j) * C + c] =
                  imgs[((size_t(b) * C + c) * H + hi * p + i) * W + wi * p + j];
}

// imgs (B, C, H, W), patches (B, L, p·p·C)
template <class T> void unpatchify_ijc(T* imgs, const T* patches, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  const int gh = H / p, gw = W / p, L = gh * gw, P = C * p * p;
  for (int b = 0; b < B; ++b)
    for (int hi = 0; hi < gh; ++hi)
      for (int wi = 0; wi < gw; ++wi)
        for (int i = 0; i < p; ++i)
          for (int j = 0; j < p; ++j)
            for (int c = 0; c < C; ++c)
              imgs[((size_t(b) * C + c) * H + hi * p + i) * W + wi * p + j] =
                  patches[(size_t(b) * L + hi * gw + wi) * P + (i * p + j) * C + c];
}

#define MAE_INSTANTIATE(T)                                                          \
  template void im2patch_cij<T>(T*, const T*, int, int, int, int, int);             \
  template void im2patch_cij_backward<T>(T*, const T*, int, int, int, int, int);    \
  template void patchify_ijc<T>(T*, const T*, int, int, int, int, int);             \
  template void unpatchify_ijc<T>(T*, const T*, int, int, int, int, int);
MAE_INSTANTIATE(float)
MAE_INSTANTIATE(double)
#undef MAE_INSTANTIATE

}  // namespace mae::ref
