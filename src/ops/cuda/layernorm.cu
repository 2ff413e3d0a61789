// LayerNorm over the last dim on the GPU (torch.nn.LayerNorm): one warp per row, fp32 statistics in two passes;
// the weight and bias gradients are deterministic column reductions (no atomics).
#include "ops/cuda/common.cuh"
#include "ops/cuda/layernorm_row.cuh"

namespace mae::cuda {

namespace {
__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* in, const float* w,
                                         const float* b, int N, int C, float eps) {
  const size_t n = warp_row();
  if (n >= size_t(N)) return;
  layernorm_row_warp(out + n * C, mean + n, rstd + n, in + n * C, w, b, C, eps, threadIdx.x & 31);
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
}  // namespace

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N, int C, T eps) {
  if (N <= 0) return;
  Context& c = ctx();
  layernorm_forward_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, c.stream>>>(out, mean, rstd, in, w, b, N, C, eps);
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

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                       float);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                        const float*, int, int);

}  // namespace mae::cuda
