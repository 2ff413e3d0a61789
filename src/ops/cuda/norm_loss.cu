// Row-wise statistics on the GPU: LayerNorm (fp32 statistics, two passes), the norm-pix target, the masked MSE
// loss, softmax cross-entropy and BatchNorm1d. Reductions over rows are deterministic (no float atomics).
#include <vector>

#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
constexpr int kWarpsPerBlock = 8;
inline int warp_blocks(size_t rows) { return blocks_for(rows * 32, 32 * kWarpsPerBlock, 1 << 30); }
__device__ __forceinline__ size_t warp_row() { return (blockIdx.x * size_t(blockDim.x) + threadIdx.x) >> 5; }

// One LayerNorm row by one warp (lane-strided columns, two-pass fp32 statistics). Shared by the plain and the fused
// residual kernel so both give the same bits (the backward recomputes with the plain one).
__device__ __forceinline__ void layernorm_row_warp(float* y, float* mean, float* rstd, const float* x, const float* w,
                                                   const float* b, int C, float eps, int lane) {
  float s = 0.f;
  for (int c = lane; c < C; c += 32) s += x[c];
  const float m = warp_sum(s) / C;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = x[c] - m;
    ss += d * d;
  }
  const float r = rsqrtf(warp_sum(ss) / C + eps);
  for (int c = lane; c < C; c += 32) y[c] = (x[c] - m) * r * w[c] + b[c];
  if (lane == 0) *mean = m, *rstd = r;
}

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* in, const float* w,
                                         const float* b, int N, int C, float eps) {
  const size_t n = warp_row();
  if (n >= size_t(N)) return;
  layernorm_row_warp(out + n * C, mean + n, rstd + n, in + n * C, w, b, C, eps, threadIdx.x & 31);
}

// sum = x + [scale[b] ·] branch, then LayerNorm(sum): the row is re-read from L1/L2 by the lane that wrote it, so the
// sum never makes a second trip through global memory. sum may alias x or branch (element-wise, same lane).
__global__ void residual_layernorm_kernel(float* sum, float* out, float* mean, float* rstd, const float* x,
                                          const float* branch, const float* scale, const float* w, const float* b,
                                          int N, int Tn, int C, float eps) {
  const size_t n = warp_row();
  const int lane = threadIdx.x & 31;
  if (n >= size_t(N)) return;
  const size_t o = n * C;
  if (!scale) {
    for (int c = lane; c < C; c += 32) sum[o + c] = x[o + c] + branch[o + c];
  } else {
    const float s = scale[n / Tn];
    for (int c = lane; c < C; c += 32) sum[o + c] = s == 0.f ? x[o + c] : x[o + c] + s * branch[o + c];
  }
  layernorm_row_warp(out + o, mean + n, rstd + n, sum + o, w, b, C, eps, lane);
}

// din += rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)), g = dout ⊙ w
__global__ void layernorm_backward_kernel(float* din, const float* dout, const float* in, const float* w,
                                          const float* mean, const float* rstd, int N, int C) {
  const size_t n = warp_row();
  const int lane = threadIdx.x & 31;
  if (n >= size_t(N)) return;
  const float* x = in + n * C;
  const float* dy = dout + n * C;
  const float m = mean[n], s = rstd[n];
  float gs = 0.f, gxs = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float g = dy[c] * w[c];
    gs += g;
    gxs += g * ((x[c] - m) * s);
  }
  const float gm = warp_sum(gs) / C, gxm = warp_sum(gxs) / C;
  float* dx = din + n * C;
  for (int c = lane; c < C; c += 32) dx[c] += s * (dy[c] * w[c] - gm - (x[c] - m) * s * gxm);
}

// Unbiased variance, eps inside the sqrt; out may alias in (each lane rereads only its own elements).
__global__ void normalize_target_kernel(float* out, const float* in, int N, int P) {
  const size_t n = warp_row();
  const int lane = threadIdx.x & 31;
  if (n >= size_t(N)) return;
  const float* x = in + n * P;
  float s = 0.f;
  for (int p = lane; p < P; p += 32) s += x[p];
  const float m = warp_sum(s) / P;
  float ss = 0.f;
  for (int p = lane; p < P; p += 32) ss += (x[p] - m) * (x[p] - m);
  const float r = 1.f / sqrtf(warp_sum(ss) / (P - 1) + 1e-6f);
  float* y = out + n * P;
  for (int p = lane; p < P; p += 32) y[p] = (x[p] - m) * r;
}

// rows[bl] = mask · mean_p (pred[b, 1+l] − target[b, l])²  (one warp per patch row)
__global__ void mse_rows_kernel(float* rows, const float* pred, const float* target, const float* mask, int B, int L,
                                int P) {
  const size_t bl = warp_row();
  const int lane = threadIdx.x & 31;
  if (bl >= size_t(B) * L) return;
  const size_t b = bl / L;
  const float* pr = pred + (bl + b + 1) * P;
  const float* tg = target + bl * P;
  float se = 0.f;
  for (int p = lane; p < P; p += 32) {
    const float d = pr[p] - tg[p];
    se += d * d;
  }
  se = warp_sum(se);
  if (lane == 0) rows[bl] = mask[bl] * (se / P);  // kept rows contribute 0 · err (NaN propagates, as in PyTorch)
}

// One block: out[0] = Σ a, out[1] = Σ b (doubles, fixed order per thread then a tree).
__global__ void sum2_kernel(double* out, const float* a, const float* b, size_t n) {
  double sa = 0, sb = 0;
  for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
    sa += a[i];
    if (b) sb += b[i];
  }
  __shared__ double sh[2][32];
  sa = warp_sum_d(sa);
  sb = warp_sum_d(sb);
  if ((threadIdx.x & 31) == 0) sh[0][threadIdx.x >> 5] = sa, sh[1][threadIdx.x >> 5] = sb;
  __syncthreads();
  if (threadIdx.x < 32) {
    const bool in = threadIdx.x < (blockDim.x >> 5);
    double x = in ? sh[0][threadIdx.x] : 0.0, y = in ? sh[1][threadIdx.x] : 0.0;
    x = warp_sum_d(x);
    y = warp_sum_d(y);
    if (threadIdx.x == 0) out[0] = x, out[1] = y;
  }
}

// dpred (B, 1+L, P) += dloss · 2 · mask · (pred − target) / (P · Σ mask), Σ mask read from the device.
__global__ void mse_backward_kernel(float* dpred, float dloss, const double* den, const float* pred,
                                    const float* target, const float* mask, int B, int L, int P) {
  const size_t n = size_t(B) * L * P;
  const double c = double(dloss) * 2.0 / (double(P) * den[0]);
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const size_t bl = i / P, p = i % P, b = bl / L;
    const size_t row = bl + b + 1;
    const float g = float(c * mask[bl]);
    dpred[row * P + p] += g * (pred[row * P + p] - target[i]);
  }
}

// probs = softmax(logits); rows[n] = −Σ_c target · log_softmax
__global__ void xent_rows_kernel(float* rows, float* probs, const float* logits, const float* targets, int N, int C) {
  const size_t n = warp_row();
  const int lane = threadIdx.x & 31;
  if (n >= size_t(N)) return;
  const float* z = logits + n * C;
  const float* y = targets + n * C;
  float* p = probs + n * C;
  float mx = -INFINITY;
  for (int c = lane; c < C; c += 32) mx = fmaxf(mx, z[c]);
  mx = warp_max(mx);
  float se = 0.f;
  for (int c = lane; c < C; c += 32) se += expf(z[c] - mx);
  const float lse = mx + logf(warp_sum(se));
  float row = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float lp = z[c] - lse;
    p[c] = expf(lp);
    row -= y[c] * lp;
  }
  row = warp_sum(row);
  if (lane == 0) rows[n] = row;
}

__global__ void xent_backward_kernel(float* dlogits, float g, const float* probs, const float* targets, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dlogits[i] += g * (probs[i] - targets[i]);
}

// BatchNorm1d: one thread per channel walking the rows (C is small: a classifier's feature width).
__global__ void bn_train_kernel(float* out, float* mean, float* rstd, float* rm, float* rv, const float* in, int N,
                                int C, float eps, float mo) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double m = 0, ss = 0;
  for (int n = 0; n < N; ++n) m += in[size_t(n) * C + c];
  m /= N;
  for (int n = 0; n < N; ++n) {
    const double d = in[size_t(n) * C + c] - m;
    ss += d * d;
  }
  const double r = 1.0 / sqrt(ss / N + double(eps));
  for (int n = 0; n < N; ++n) out[size_t(n) * C + c] = float((in[size_t(n) * C + c] - m) * r);
  mean[c] = float(m);
  rstd[c] = float(r);
  if (rm) rm[c] = float((1 - double(mo)) * rm[c] + double(mo) * m);
  if (rv) rv[c] = float((1 - double(mo)) * rv[c] + double(mo) * ss / (N - 1));
}
__global__ void bn_eval_kernel(float* out, const float* in, const float* rm, const float* rv, int N, int C, float eps) {
  const size_t n = size_t(N) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % C);
    out[i] = float((double(in[i]) - rm[c]) / sqrt(double(rv[c]) + double(eps)));
  }
}
__global__ void bn_backward_kernel(float* din, const float* dout, const float* in, const float* mean,
                                   const float* rstd, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sg = 0, sgx = 0;
  for (int n = 0; n < N; ++n) {
    const size_t i = size_t(n) * C + c;
    sg += dout[i];
    sgx += double(dout[i]) * (double(in[i]) - mean[c]) * rstd[c];
  }
  sg /= N, sgx /= N;
  for (int n = 0; n < N; ++n) {
    const size_t i = size_t(n) * C + c;
    const double xh = (double(in[i]) - mean[c]) * rstd[c];
    din[i] += float(rstd[c] * (dout[i] - sg - xh * sgx));
  }
}

double2 sum_rows(const float* a, const float* b, size_t n) {
  Context& cx = ctx();
  auto* d = static_cast<double*>(cx.get(kScalars, 4 * sizeof(double)));
  sum2_kernel<<<1, 1024, 0, cx.stream>>>(d, a, b, n);
  MAE_CUDA_LAUNCHED();
  double h[2];
  download_bytes(h, d, sizeof h);
  return {h[0], h[1]};
}
}  // namespace

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N, int C, T eps) {
  if (N <= 0) return;
  Context& c = ctx();
  layernorm_forward_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, c.stream>>>(out, mean, rstd, in, w, b, N, C, eps);
  MAE_CUDA_LAUNCHED();
}

template <class T>
void residual_layernorm_forward(T* sum, T* out, T* mean, T* rstd, const T* x, const T* branch, const T* scale,
                                const T* w, const T* b, int B, int Tn, int C, T eps) {
  const int N = B * Tn;
  if (N <= 0) return;
  residual_layernorm_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, ctx().stream>>>(sum, out, mean, rstd, x, branch,
                                                                                       scale, w, b, N, Tn, C, eps);
  MAE_CUDA_LAUNCHED();
}

template <class T>
void layernorm_backward(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const T* mean, const T* rstd,
                        int N, int C) {
  if (N <= 0) return;
  Context& c = ctx();
  if (din) {
    layernorm_backward_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, c.stream>>>(din, dout, in, w, mean, rstd, N,
                                                                                   C);
    MAE_CUDA_LAUNCHED();
  }
  if (dw)
    colsum(dw, N, C, [=] __device__(int r, int k) {
      const size_t i = size_t(r) * C + k;
      return dout[i] * ((in[i] - mean[r]) * rstd[r]);
    });
  if (db) colsum(db, N, C, [=] __device__(int r, int k) { return dout[size_t(r) * C + k]; });
}

template <class T> void normalize_target(T* out, const T* in, int N, int P) {
  MAE_CHECK(P > 1, "norm_pix_loss needs more than one value per patch, P = ", P);
  if (N <= 0) return;
  normalize_target_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, ctx().stream>>>(out, in, N, P);
  MAE_CUDA_LAUNCHED();
}

void masked_mse_enqueue(int slot, const float* pred, const float* target, const float* mask, int B, int L, int P) {
  Context& c = ctx();
  const size_t rows = size_t(B) * L;
  auto* r = static_cast<float*>(c.get(kLossRows, sizeof(float) * rows + 16));
  mse_rows_kernel<<<warp_blocks(rows), 32 * kWarpsPerBlock, 0, c.stream>>>(r, pred, target, mask, B, L, P);
  MAE_CUDA_LAUNCHED();
  sum2_kernel<<<1, 1024, 0, c.stream>>>(deferred_dev(slot), r, mask, rows);  // (Σ num, Σ mask)
  MAE_CUDA_LAUNCHED();
  deferred_copy(slot);
}

template <class T> T masked_mse_forward(const T* pred, const T* target, const T* mask, int B, int L, int P) {
  masked_mse_enqueue(kSlotSyncA, pred, target, mask, B, L, P);
  const DeferredPair s = read_deferred(kSlotSyncA);
  return T(s.a / s.b);
}

template <class T>
void masked_mse_backward(T* dpred, T dloss, const T* pred, const T* target, const T* mask, int B, int L, int P) {
  if (!dpred) return;
  Context& c = ctx();
  const size_t rows = size_t(B) * L;
  auto* d = static_cast<double*>(c.get(kScalars, 4 * sizeof(double)));
  sum2_kernel<<<1, 1024, 0, c.stream>>>(d, mask, nullptr, rows);  // Σ mask stays on the device: no sync
  MAE_CUDA_LAUNCHED();
  mse_backward_kernel<<<blocks_for(rows * P, 256, c.sm_count * 16), 256, 0, c.stream>>>(dpred, dloss, d, pred, target,
                                                                                        mask, B, L, P);
  MAE_CUDA_LAUNCHED();
}

template <class T> T softmax_xent_forward(T* probs, const T* logits, const T* targets, int N, int C) {
  Context& c = ctx();
  auto* r = static_cast<float*>(c.get(kLossRows, sizeof(float) * size_t(N) + 16));
  xent_rows_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, c.stream>>>(r, probs, logits, targets, N, C);
  MAE_CUDA_LAUNCHED();
  return T(sum_rows(r, nullptr, size_t(N)).x / N);
}

template <class T> void softmax_xent_backward(T* dlogits, T dloss, const T* probs, const T* targets, int N, int C) {
  if (!dlogits) return;
  Context& c = ctx();
  const size_t n = size_t(N) * C;
  xent_backward_kernel<<<blocks_for(n, 256, c.sm_count * 16), 256, 0, c.stream>>>(dlogits, float(double(dloss) / N),
                                                                                 probs, targets, n);
  MAE_CUDA_LAUNCHED();
}

template <class T>
void batchnorm1d_train_forward(T* out, T* mean, T* rstd, T* running_mean, T* running_var, const T* in, int N, int C,
                               T eps, T momentum) {
  MAE_CHECK(N > 1, "BatchNorm1d in training mode needs more than one sample, N = ", N);
  bn_train_kernel<<<blocks_for(C, 128), 128, 0, ctx().stream>>>(out, mean, rstd, running_mean, running_var, in, N, C,
                                                                eps, momentum);
  MAE_CUDA_LAUNCHED();
}
template <class T>
void batchnorm1d_eval_forward(T* out, const T* in, const T* running_mean, const T* running_var, int N, int C, T eps) {
  Context& c = ctx();
  bn_eval_kernel<<<blocks_for(size_t(N) * C, 256, c.sm_count * 16), 256, 0, c.stream>>>(out, in, running_mean,
                                                                                       running_var, N, C, eps);
  MAE_CUDA_LAUNCHED();
}
template <class T>
void batchnorm1d_backward(T* din, const T* dout, const T* in, const T* mean, const T* rstd, int N, int C) {
  if (!din) return;
  bn_backward_kernel<<<blocks_for(C, 128), 128, 0, ctx().stream>>>(din, dout, in, mean, rstd, N, C);
  MAE_CUDA_LAUNCHED();
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                       float);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                        const float*, int, int);
template void residual_layernorm_forward<float>(float*, float*, float*, float*, const float*, const float*,
                                                const float*, const float*, const float*, int, int, int, float);
template void normalize_target<float>(float*, const float*, int, int);
template float masked_mse_forward<float>(const float*, const float*, const float*, int, int, int);
template void masked_mse_backward<float>(float*, float, const float*, const float*, const float*, int, int, int);
template float softmax_xent_forward<float>(float*, const float*, const float*, int, int);
template void softmax_xent_backward<float>(float*, float, const float*, const float*, int, int);
template void batchnorm1d_train_forward<float>(float*, float*, float*, float*, float*, const float*, int, int, float,
                                               float);
template void batchnorm1d_eval_forward<float>(float*, const float*, const float*, const float*, int, int, float);
template void batchnorm1d_backward<float>(float*, const float*, const float*, const float*, const float*, int, int);

}  // namespace mae::cuda
