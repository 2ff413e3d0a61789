// Element-wise and index ops on the GPU: GELU, residual adds, AdamW over one range, image ↔ patch layouts, the MAE
// token gather/scatter (encoder keep, decoder unshuffle), the ViT embedding and pooling. Grid-stride loops, one
// thread per output element; scatters hit disjoint rows (permutations), shared sums use the column reduction.
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
#define MAE_GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(gridDim.x) * blockDim.x)

inline int grid(size_t n) { return blocks_for(n, 256, ctx().sm_count * 32); }
#define MAE_LAUNCH(kernel, n, ...)                                           \
  do {                                                                       \
    if ((n) > 0) {                                                           \
      kernel<<<grid(n), 256, 0, ctx().stream>>>(__VA_ARGS__);                \
      MAE_CUDA_LAUNCHED();                                                   \
    }                                                                        \
  } while (0)

constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// Φ through normcdff (erfc-based): keeps its relative accuracy in the left tail where 1 + erf(x/√2) cancels, as the
// CPU's fast_phi does.
__device__ __forceinline__ float gelu_f(float x) { return x * normcdff(x); }
__global__ void gelu_fwd(float* out, const float* in, size_t n) { MAE_GRID_STRIDE(i, n) out[i] = gelu_f(in[i]); }
// pre (N, O) += b (as linear_forward's bias pass), act = gelu(pre): one pass instead of two.
__global__ void bias_gelu_fwd(float* pre, float* act, const float* b, unsigned O, size_t n) {
  MAE_GRID_STRIDE(i, n) {
    float x = pre[i];
    if (b) pre[i] = x = x + b[i % O];
    act[i] = gelu_f(x);
  }
}
__global__ void gelu_bwd(float* din, const float* dout, const float* in, size_t n) {
  MAE_GRID_STRIDE(i, n) {
    const float x = in[i];
    const float cdf = normcdff(x);
    const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
    din[i] += dout[i] * (cdf + x * pdf);
  }
}
__global__ void add_fwd(float* out, const float* a, const float* b, size_t n) { MAE_GRID_STRIDE(i, n) out[i] = a[i] + b[i]; }
__global__ void add_bwd(float* da, float* db, const float* dout, size_t n) {
  MAE_GRID_STRIDE(i, n) {
    const float d = dout[i];
    if (da) da[i] += d;
    if (db) db[i] += d;
  }
}
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
__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, size_t n, float decay, float b1, float b2,
                             float omb1, float omb2, float step_size, float bc2_sqrt, float eps) {
  MAE_GRID_STRIDE(i, n) adamw_element(p, m, v, g, i, decay, b1, b2, omb1, omb2, step_size, bc2_sqrt, eps);
}

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
void check_grid(int H, int W, int p) {
  MAE_CHECK(p > 0 && H % p == 0 && W % p == 0, "image ", H, "x", W, " is not a whole number of ", p, "-pixel patches");
}
size_t patch_elems(int B, int C, int H, int W, int p) { return size_t(B) * (H / p) * (W / p) * C * p * p; }
}  // namespace

template <class T> void gelu_forward(T* out, const T* in, size_t n) { MAE_LAUNCH(gelu_fwd, n, out, in, n); }
template <class T> void gelu_backward(T* din, const T* dout, const T* in, size_t n) {
  if (din) MAE_LAUNCH(gelu_bwd, n, din, dout, in, n);
}
template <class T> void linear_gelu_forward(T* pre, T* act, const T* in, const T* W, const T* b, int N, int I, int O) {
  linear_forward(pre, in, W, static_cast<const T*>(nullptr), N, I, O);  // the bias is added by the GELU pass
  MAE_LAUNCH(bias_gelu_fwd, size_t(N) * O, pre, act, b, unsigned(O), size_t(N) * O);
}
template <class T> void add_forward(T* out, const T* a, const T* b, size_t n) { MAE_LAUNCH(add_fwd, n, out, a, b, n); }
template <class T> void add_backward(T* da, T* db, const T* dout, size_t n) {
  if (da || db) MAE_LAUNCH(add_bwd, n, da, db, dout, n);
}
template <class T> void residual_scale_forward(T* out, const T* x, const T* branch, const T* scale, int B, size_t n) {
  MAE_LAUNCH(residual_scale_fwd, size_t(B) * n, out, x, branch, scale, n, size_t(B) * n);
}
template <class T> void residual_scale_backward(T* dx, T* dbranch, const T* dout, const T* scale, int B, size_t n) {
  if (dx || dbranch) MAE_LAUNCH(residual_scale_bwd, size_t(B) * n, dx, dbranch, dout, scale, n, size_t(B) * n);
}

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                  long t) {
  MAE_CHECK(t >= 1, "adamw_update step count t = ", t);
  const float decay = float(1.0 - double(lr) * double(wd));
  const float step_size = float(double(lr) / (1.0 - std::pow(double(beta1), double(t))));
  const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(beta2), double(t))));
  MAE_LAUNCH(adamw_kernel, n, p, m, v, g, n, decay, beta1, beta2, float(1.0 - double(beta1)),
             float(1.0 - double(beta2)), step_size, bc2_sqrt, eps);
}

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

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void linear_gelu_forward<float>(float*, float*, const float*, const float*, const float*, int, int, int);
template void add_forward<float>(float*, const float*, const float*, size_t);
template void add_backward<float>(float*, float*, const float*, size_t);
template void residual_scale_forward<float>(float*, const float*, const float*, const float*, int, size_t);
template void residual_scale_backward<float>(float*, float*, const float*, const float*, int, size_t);
template void adamw_update<float>(float*, float*, float*, const float*, size_t, float, float, float, float, float,
                                  long);
template void im2patch_cij<float>(float*, const float*, int, int, int, int, int);
template void im2patch_cij_backward<float>(float*, const float*, int, int, int, int, int);
template void patchify_ijc<float>(float*, const float*, int, int, int, int, int);
template void unpatchify_ijc<float>(float*, const float*, int, int, int, int, int);
template void encoder_embed_forward<float>(float*, const float*, const float*, const float*, const int*, int, int, int,
                                           int);
template void encoder_embed_backward<float>(float*, float*, const float*, const int*, int, int, int, int);
template void decoder_embed_forward<float>(float*, const float*, const float*, const float*, const int*, int, int, int,
                                           int);
template void decoder_embed_backward<float>(float*, float*, const float*, const int*, int, int, int, int);
template void vit_embed_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void vit_embed_backward<float>(float*, float*, float*, const float*, int, int, int);
template void token_pool_forward<float>(float*, const float*, int, int, int, bool);
template void token_pool_backward<float>(float*, const float*, int, int, int, bool);

}  // namespace mae::cuda
