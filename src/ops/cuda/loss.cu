// The MAE loss on the GPU: the norm-pix target (unbiased variance) and the masked MSE, one warp per patch row;
// sums in double, in a fixed order (no atomics). The forward's value is reduced on the stream and read back behind
// an event (masked_mse_enqueue; masked_mse_forward waits for it).
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
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
}  // namespace

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
  sum2(deferred_dev(slot), r, mask, rows);  // (Σ num, Σ mask)
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
  sum2(d, mask, nullptr, rows);  // Σ mask stays on the device: no sync
  mse_backward_kernel<<<blocks_for(rows * P, 256, c.sm_count * 16), 256, 0, c.stream>>>(dpred, dloss, d, pred, target,
                                                                                        mask, B, L, P);
  MAE_CUDA_LAUNCHED();
}

template void normalize_target<float>(float*, const float*, int, int);
template float masked_mse_forward<float>(const float*, const float*, const float*, int, int, int);
template void masked_mse_backward<float>(float*, float, const float*, const float*, const float*, int, int, int);

}  // namespace mae::cuda
