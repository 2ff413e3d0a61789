// Exact GELU on the GPU (torch.nn.GELU(), approximate='none'), one thread per element: out = x·Φ(x) with Φ
// through normcdff (gelu_value, common.cuh); backward din += dout · (Φ(x) + x·φ(x)).
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// gelu'(x) = Φ(x) + x·φ(x)
__device__ __forceinline__ float gelu_slope(float x) { return normcdff(x) + x * kInvSqrt2Pi * expf(-0.5f * x * x); }

__global__ void gelu_fwd(float* out, const float* in, size_t n) { MAE_GRID_STRIDE(i, n) out[i] = gelu_value(in[i]); }
__global__ void gelu_bwd(float* din, const float* dout, const float* in, size_t n) {
  MAE_GRID_STRIDE(i, n) din[i] += dout[i] * gelu_slope(in[i]);
}
// act = gelu(x) and din += dout · gelu'(x) in one pass (gelu_backward_recompute).
__global__ void gelu_bwd_recompute(float* act, float* din, const float* dout, const float* in, size_t n) {
  MAE_GRID_STRIDE(i, n) {
    const float x = in[i];
    act[i] = gelu_value(x);
    din[i] += dout[i] * gelu_slope(x);
  }
}
}  // namespace

template <class T> void gelu_forward(T* out, const T* in, size_t n) { MAE_LAUNCH(gelu_fwd, n, out, in, n); }
template <class T> void gelu_backward(T* din, const T* dout, const T* in, size_t n) {
  if (din) MAE_LAUNCH(gelu_bwd, n, din, dout, in, n);
}

template <class T> void gelu_backward_recompute(T* act, T* din, const T* dout, const T* in, size_t n) {
  if (!din) return gelu_forward(act, in, n);
  MAE_LAUNCH(gelu_bwd_recompute, n, act, din, dout, in, n);
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void gelu_backward_recompute<float>(float*, float*, const float*, const float*, size_t);

}  // namespace mae::cuda
