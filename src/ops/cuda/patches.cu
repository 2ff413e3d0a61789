// Image ↔ patch layouts on the GPU: (c, i, j) rows for the patch-embed conv, (i, j, c) rows for the loss target and
// back. One thread per element of the patch rows; each pixel belongs to one patch, so scatters never collide.
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
// One thread per element of the patch rows (B, L, P); `ijc` picks the (i, j, c) order, else (c, i, j).
// mode 0: rows = gather(imgs); 1: imgs += scatter(rows); 2: imgs = scatter(rows)
template <bool ijc, int mode>
__global__ void patches_kernel(float* rows, float* imgs, int B, int C, int H, int W, int p) {
  const int gw = W / p, L = (H / p) * gw, P = C * p * p;
  const size_t n = size_t(B) * L * P;
  MAE_GRID_STRIDE(idx, n) {
    const int e = int(idx % P);
    const size_t bl = idx / P;
    const int l = int(bl % L), b = int(bl / L);
    int c, i, j;
    if (ijc) {
      c = e % C, j = (e / C) % p, i = e / (C * p);
    } else {
      j = e % p, i = (e / p) % p, c = e / (p * p);
    }
    const int hi = l / gw, wi = l % gw;
    const size_t pix = ((size_t(b) * C + c) * H + hi * p + i) * W + wi * p + j;
    if (mode == 0) rows[idx] = imgs[pix];
    else if (mode == 1) imgs[pix] += rows[idx];
    else imgs[pix] = rows[idx];
  }
}
void check_grid(int H, int W, int p) {
  MAE_CHECK(p > 0 && H % p == 0 && W % p == 0, "image ", H, "x", W, " is not a whole number of ", p, "-pixel patches");
}
size_t patch_elems(int B, int C, int H, int W, int p) { return size_t(B) * (H / p) * (W / p) * C * p * p; }
}  // namespace

template <class T> void im2patch_cij(T* out, const T* imgs, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  MAE_LAUNCH((patches_kernel<false, 0>), patch_elems(B, C, H, W, p), out, const_cast<float*>(imgs), B, C, H, W, p);
}
template <class T> void im2patch_cij_backward(T* dimgs, const T* dout, int B, int C, int H, int W, int p) {
  if (!dimgs) return;
  check_grid(H, W, p);
  MAE_LAUNCH((patches_kernel<false, 1>), patch_elems(B, C, H, W, p), const_cast<float*>(dout), dimgs, B, C, H, W, p);
}
template <class T> void patchify_ijc(T* out, const T* imgs, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  MAE_LAUNCH((patches_kernel<true, 0>), patch_elems(B, C, H, W, p), out, const_cast<float*>(imgs), B, C, H, W, p);
}
template <class T> void unpatchify_ijc(T* imgs, const T* patches, int B, int C, int H, int W, int p) {
  check_grid(H, W, p);
  MAE_LAUNCH((patches_kernel<true, 2>), patch_elems(B, C, H, W, p), const_cast<float*>(patches), imgs, B, C, H, W,
             p);
}

template void im2patch_cij<float>(float*, const float*, int, int, int, int, int);
template void im2patch_cij_backward<float>(float*, const float*, int, int, int, int, int);
template void patchify_ijc<float>(float*, const float*, int, int, int, int, int);
template void unpatchify_ijc<float>(float*, const float*, int, int, int, int, int);

}  // namespace mae::cuda
