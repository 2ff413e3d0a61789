// Fused forward ops on the GPU (op_decls.inc): residual + LayerNorm in one warp-per-row kernel, and linear + GELU
// with fc1's bias added in the GELU pass (one kernel instead of bias + GELU). Their backward passes are the unfused
// ops'.
#include "ops/cuda/common.cuh"
#include "ops/cuda/layernorm_row.cuh"

namespace mae::cuda {

namespace {
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
// pre (N, O) += b (as linear_forward's bias pass), act = gelu(pre): one pass instead of two.
__global__ void bias_gelu_fwd(float* pre, float* act, const float* b, unsigned O, size_t n) {
  MAE_GRID_STRIDE(i, n) {
    float x = pre[i];
    if (b) pre[i] = x = x + b[i % O];
    act[i] = gelu_value(x);
  }
}
}  // namespace

template <class T>
void residual_layernorm_forward(T* sum, T* out, T* mean, T* rstd, const T* x, const T* branch, const T* scale,
                                const T* w, const T* b, int B, int Tn, int C, T eps) {
  const int N = B * Tn;
  if (N <= 0) return;
  residual_layernorm_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, ctx().stream>>>(sum, out, mean, rstd, x, branch,
                                                                                       scale, w, b, N, Tn, C, eps);
  MAE_CUDA_LAUNCHED();
}

template <class T> void linear_gelu_forward(T* pre, T* act, const T* in, const T* W, const T* b, int N, int I, int O) {
  linear_forward(pre, in, W, static_cast<const T*>(nullptr), N, I, O);  // the bias is added by the GELU pass
  MAE_LAUNCH(bias_gelu_fwd, size_t(N) * O, pre, act, b, unsigned(O), size_t(N) * O);
}

template void residual_layernorm_forward<float>(float*, float*, float*, float*, const float*, const float*,
                                                const float*, const float*, const float*, int, int, int, float);
template void linear_gelu_forward<float>(float*, float*, const float*, const float*, const float*, int, int, int);

}  // namespace mae::cuda
