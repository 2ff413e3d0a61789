// ViT classifier ops on the GPU (models_vit.py / timm): residual with a per-sample drop-path scale, cls + learned
// position embedding, token pooling. One thread per output element; shared sums use the column reduction.
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
__global__ void residual_scale_fwd(float* out, const float* x, const float* branch, const float* scale, size_t per,
                                   size_t n) {
  MAE_GRID_STRIDE(i, n) {
    const float s = scale[i / per];
    out[i] = s == 0.f ? x[i] : x[i] + s * branch[i];  // a dropped path is the identity (even for NaN branches)
  }
}
__global__ void residual_scale_bwd(float* dx, float* dbranch, const float* dout, const float* scale, size_t per,
                                   size_t n) {
  MAE_GRID_STRIDE(i, n) {
    const float d = dout[i];
    if (dbranch) dbranch[i] += scale[i / per] * d;
    if (dx) dx[i] += d;
  }
}
__global__ void vit_embed_fwd(float* x, const float* tok, const float* cls, const float* pos, int B, int L, int D) {
  const size_t n = size_t(B) * (1 + L) * D;
  MAE_GRID_STRIDE(i, n) {
    const int d = int(i % D);
    const size_t r = i / D;
    const int t = int(r % (1 + L)), b = int(r / (1 + L));
    const float src = t == 0 ? cls[d] : tok[(size_t(b) * L + (t - 1)) * D + d];
    x[i] = src + pos[size_t(t) * D + d];
  }
}
__global__ void vit_embed_bwd_tok(float* dtok, const float* dx, int B, int L, int D) {
  const size_t n = size_t(B) * L * D;
  MAE_GRID_STRIDE(i, n) {
    const int d = int(i % D);
    const size_t r = i / D;
    const int l = int(r % L), b = int(r / L);
    dtok[i] += dx[(size_t(b) * (1 + L) + 1 + l) * D + d];
  }
}
// dpos (1+L, D) += Σ_b dx[b]: one thread per table element, samples summed in order
__global__ void vit_embed_bwd_pos(float* dpos, const float* dx, int B, int L, int D) {
  const size_t n = size_t(1 + L) * D;
  MAE_GRID_STRIDE(i, n) {
    float s = 0.f;
    for (int b = 0; b < B; ++b) s += dx[size_t(b) * (1 + L) * D + i];
    dpos[i] += s;
  }
}
__global__ void token_pool_fwd(float* out, const float* x, int B, int Tn, int D, bool mean) {
  const size_t n = size_t(B) * D;
  MAE_GRID_STRIDE(i, n) {
    const int d = int(i % D), b = int(i / D);
    const float* xb = x + size_t(b) * Tn * D;
    if (!mean) {
      out[i] = xb[d];
    } else {
      float s = 0.f;
      for (int t = 1; t < Tn; ++t) s += xb[size_t(t) * D + d];
      out[i] = s / float(Tn - 1);
    }
  }
}
__global__ void token_pool_bwd(float* dx, const float* dout, int B, int Tn, int D, bool mean) {
  const size_t n = size_t(B) * Tn * D;
  MAE_GRID_STRIDE(i, n) {
    const int d = int(i % D);
    const size_t bt = i / D;
    const int t = int(bt % Tn), b = int(bt / Tn);
    const float g = dout[size_t(b) * D + d];
    if (!mean) {
      if (t == 0) dx[i] += g;
    } else if (t > 0) {
      dx[i] += g / float(Tn - 1);
    }
  }
}
}  // namespace

template <class T> void residual_scale_forward(T* out, const T* x, const T* branch, const T* scale, int B, size_t n) {
  MAE_LAUNCH(residual_scale_fwd, size_t(B) * n, out, x, branch, scale, n, size_t(B) * n);
}
template <class T> void residual_scale_backward(T* dx, T* dbranch, const T* dout, const T* scale, int B, size_t n) {
  if (dx || dbranch) MAE_LAUNCH(residual_scale_bwd, size_t(B) * n, dx, dbranch, dout, scale, n, size_t(B) * n);
}

template <class T> void vit_embed_forward(T* x, const T* tok, const T* cls, const T* pos, int B, int L, int D) {
  MAE_LAUNCH(vit_embed_fwd, size_t(B) * (1 + L) * D, x, tok, cls, pos, B, L, D);
}
template <class T> void vit_embed_backward(T* dtok, T* dcls, T* dpos, const T* dx, int B, int L, int D) {
  if (dtok) MAE_LAUNCH(vit_embed_bwd_tok, size_t(B) * L * D, dtok, dx, B, L, D);
  if (dpos) MAE_LAUNCH(vit_embed_bwd_pos, size_t(1 + L) * D, dpos, dx, B, L, D);
  if (dcls) colsum(dcls, B, D, [=] __device__(int b, int d) { return dx[size_t(b) * (1 + L) * D + d]; });
}
template <class T> void token_pool_forward(T* out, const T* x, int B, int Tn, int D, bool mean) {
  MAE_LAUNCH(token_pool_fwd, size_t(B) * D, out, x, B, Tn, D, mean);
}
template <class T> void token_pool_backward(T* dx, const T* dout, int B, int Tn, int D, bool mean) {
  if (dx) MAE_LAUNCH(token_pool_bwd, size_t(B) * Tn * D, dx, dout, B, Tn, D, mean);
}

template void residual_scale_forward<float>(float*, const float*, const float*, const float*, int, size_t);
template void residual_scale_backward<float>(float*, float*, const float*, const float*, int, size_t);
template void vit_embed_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void vit_embed_backward<float>(float*, float*, float*, const float*, int, int, int);
template void token_pool_forward<float>(float*, const float*, int, int, int, bool);
template void token_pool_backward<float>(float*, const float*, int, int, int, bool);

}  // namespace mae::cuda
