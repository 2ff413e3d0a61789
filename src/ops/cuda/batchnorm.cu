// BatchNorm1d(C, affine=False) on the GPU (the linear probe's head): one thread per channel walking the rows in
// double (C is a classifier's feature width, N a batch).
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
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
}  // namespace

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

template void batchnorm1d_train_forward<float>(float*, float*, float*, float*, float*, const float*, int, int, float,
                                               float);
template void batchnorm1d_eval_forward<float>(float*, const float*, const float*, const float*, int, int, float);
template void batchnorm1d_backward<float>(float*, const float*, const float*, const float*, const float*, int, int);

}  // namespace mae::cuda
