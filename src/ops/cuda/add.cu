// Residual add on the GPU, one thread per element; out may alias a or b.
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
__global__ void add_fwd(float* out, const float* a, const float* b, size_t n) { MAE_GRID_STRIDE(i, n) out[i] = a[i] + b[i]; }
__global__ void add_bwd(float* da, float* db, const float* dout, size_t n) {
  MAE_GRID_STRIDE(i, n) {
    const float d = dout[i];
    if (da) da[i] += d;
    if (db) db[i] += d;
  }
}
}  // namespace

template <class T> void add_forward(T* out, const T* a, const T* b, size_t n) { MAE_LAUNCH(add_fwd, n, out, a, b, n); }
template <class T> void add_backward(T* da, T* db, const T* dout, size_t n) {
  if (da || db) MAE_LAUNCH(add_bwd, n, da, db, dout, n);
}

template void add_forward<float>(float*, const float*, const float*, size_t);
template void add_backward<float>(float*, float*, const float*, size_t);

}  // namespace mae::cuda
