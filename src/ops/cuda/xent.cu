// Softmax cross-entropy with soft targets on the GPU (timm SoftTargetCrossEntropy): one warp per row, the
// mean over rows summed in double in a fixed order.
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
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

// Σ rows (double, fixed order), waited for: the forward returns a host scalar.
double sum_rows(const float* rows, size_t n) {
  Context& cx = ctx();
  auto* d = static_cast<double*>(cx.get(kScalars, 4 * sizeof(double)));
  sum2(d, rows, nullptr, n);
  double h[2];
  download_bytes(h, d, sizeof h);
  return h[0];
}
}  // namespace

template <class T> T softmax_xent_forward(T* probs, const T* logits, const T* targets, int N, int C) {
  Context& c = ctx();
  auto* r = static_cast<float*>(c.get(kLossRows, sizeof(float) * size_t(N) + 16));
  xent_rows_kernel<<<warp_blocks(N), 32 * kWarpsPerBlock, 0, c.stream>>>(r, probs, logits, targets, N, C);
  MAE_CUDA_LAUNCHED();
  return T(sum_rows(r, size_t(N)) / N);
}

template <class T> void softmax_xent_backward(T* dlogits, T dloss, const T* probs, const T* targets, int N, int C) {
  if (!dlogits) return;
  Context& c = ctx();
  const size_t n = size_t(N) * C;
  xent_backward_kernel<<<blocks_for(n, 256, c.sm_count * 16), 256, 0, c.stream>>>(dlogits, float(double(dloss) / N),
                                                                                 probs, targets, n);
  MAE_CUDA_LAUNCHED();
}

template float softmax_xent_forward<float>(float*, const float*, const float*, int, int);
template void softmax_xent_backward<float>(float*, float, const float*, const float*, int, int);

}  // namespace mae::cuda
