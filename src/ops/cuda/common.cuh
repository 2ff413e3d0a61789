// Shared by the CUDA op files (never included by plain C++): error checks, the process-wide context (stream,
// cuBLAS/cuBLASLt handles, grow-only scratch), launch helpers for element-wise and row kernels, warp reductions,
// a deterministic column reduction, and the helpers context.cu defines for several op files (bf16 operand copies,
// a two-column sum).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "ops/cuda/ops_cuda.h"

#define MAE_CUDA_CHECK(call)                                                                        \
  do {                                                                                              \
    const cudaError_t e_ = (call);                                                                  \
    if (e_ != cudaSuccess) ::mae::fail(__FILE__, ":", __LINE__, ": ", #call, ": ", cudaGetErrorString(e_)); \
  } while (0)
#define MAE_CUBLAS_CHECK(call)                                                                                \
  do {                                                                                                        \
    const cublasStatus_t s_ = (call);                                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                                          \
      ::mae::fail(__FILE__, ":", __LINE__, ": ", #call, ": ", cublasGetStatusString(s_), " (", int(s_), ")"); \
  } while (0)
// After a kernel launch: launch-configuration errors surface here, execution errors at the next sync.
#define MAE_CUDA_LAUNCHED() MAE_CUDA_CHECK(cudaGetLastError())

namespace mae::cuda {

// Scratch slots: each a grow-only device buffer (allocations happen in the first step only).
enum Scratch : int {
  kBf16A = 0,   // bf16 copy of a GEMM operand (activations)
  kBf16B,       // bf16 copy of a weight
  kBf16C,       // bf16 copy of an output gradient
  kReduce,      // column-reduction partial sums
  kLossRows,    // per-row values of the loss reductions
  kScalars,     // a few doubles: reduction results
  kAdamW,       // AdamW segment table
  kNumScratch
};

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* lt_ws = nullptr;
  size_t lt_ws_bytes = 0;
  Precision prec = Precision::fp32;
  int sm_count = 1;
  void* scratch[kNumScratch] = {};
  size_t scratch_bytes[kNumScratch] = {};
  void* get(Scratch s, size_t bytes);  // grows (synchronising) when too small
  unsigned long generation = 0;        // bumped whenever a scratch buffer moves (a captured graph is then stale)
};
Context& ctx();  // creates it on first use; throws mae::Error without a device

// Device side of a deferred slot (two doubles) and the start of its copy to the host (ops_cuda.h: read_deferred).
double* deferred_dev(int slot);
void deferred_copy(int slot);

inline int blocks_for(size_t n, int threads, int cap = 1 << 16) {
  const size_t b = (n + threads - 1) / threads;
  return int(b < 1 ? 1 : (b > size_t(cap) ? cap : b));
}

// ---- element-wise kernels: grid-stride loops, one thread per element, 256 threads per block ----
#define MAE_GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(gridDim.x) * blockDim.x)
inline int grid_for(size_t n) { return blocks_for(n, 256, ctx().sm_count * 32); }
#define MAE_LAUNCH(kernel, n, ...)                                  \
  do {                                                              \
    if ((n) > 0) {                                                  \
      kernel<<<grid_for(n), 256, 0, ctx().stream>>>(__VA_ARGS__);   \
      MAE_CUDA_LAUNCHED();                                          \
    }                                                               \
  } while (0)

// ---- row kernels: one warp per row, kWarpsPerBlock rows per block ----
constexpr int kWarpsPerBlock = 8;
inline int warp_blocks(size_t rows) { return blocks_for(rows * 32, 32 * kWarpsPerBlock, 1 << 30); }
__device__ __forceinline__ size_t warp_row() { return (blockIdx.x * size_t(blockDim.x) + threadIdx.x) >> 5; }

// ---- precision: under Precision::bf16 the GEMMs take bf16 copies of their operands ----
inline bool bf16() { return ctx().prec == Precision::bf16; }
// The bf16 copy of in (n floats) in scratch `slot`, enqueued on the stream (context.cu).
__nv_bfloat16* to_bf16(Scratch slot, const float* in, size_t n);

// out[0] = Σ a, out[1] = Σ b (b may be nullptr: 0) over n floats, in doubles and a fixed order; out is a device
// pointer, the sum is enqueued on the stream (context.cu).
void sum2(double* out, const float* a, const float* b, size_t n);

// Exact GELU x·Φ(x), Φ through normcdff (erfc-based): keeps its relative accuracy in the left tail where
// 1 + erf(x/√2) cancels, as the CPU's fast_phi does. gelu.cu and the fused bias + GELU kernel (fused.cu).
__device__ __forceinline__ float gelu_value(float x) { return x * normcdff(x); }

// ---- deterministic column sums: out[c] (+)= Σ_r f(r, c) for r < R, c < C ----
// Stage 1: blocks of 32 columns × a slice of rows, 8 row-lanes each, reduced in shared memory to one partial per
// (slice, column); stage 2 sums the slices in a fixed order. No atomics, so results repeat bit for bit.
template <class F> __global__ void colsum_partial_kernel(float* part, int R, int C, int rows_per_slice, F f) {
  __shared__ float sh[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const int r0 = blockIdx.y * rows_per_slice;
  const int r1 = min(R, r0 + rows_per_slice);
  float acc = 0.f;
  if (c < C)
    for (int r = r0 + threadIdx.y; r < r1; r += 8) acc += f(r, c);
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) s += sh[i][threadIdx.x];
    if (c < C) part[size_t(blockIdx.y) * C + c] = s;
  }
}
__global__ void colsum_finish_kernel(float* out, const float* part, int slices, int C, bool accumulate);

template <class F> void colsum(float* out, int R, int C, F f, bool accumulate = true) {
  if (C <= 0 || !out) return;
  Context& cx = ctx();
  const int gx = (C + 31) / 32;
  // enough slices to fill the GPU about twice, each at least 64 rows
  int slices = (2 * cx.sm_count + gx - 1) / gx;
  const int max_slices = (R + 63) / 64;
  if (slices > max_slices) slices = max_slices;
  if (slices < 1) slices = 1;
  const int rows_per = (R + slices - 1) / slices;
  float* part = static_cast<float*>(cx.get(kReduce, sizeof(float) * size_t(slices) * C));
  colsum_partial_kernel<<<dim3(gx, slices), dim3(32, 8), 0, cx.stream>>>(part, R, C, rows_per > 0 ? rows_per : 1, f);
  MAE_CUDA_LAUNCHED();
  colsum_finish_kernel<<<blocks_for(C, 256), 256, 0, cx.stream>>>(out, part, slices, C, accumulate);
  MAE_CUDA_LAUNCHED();
}

// ---- warp helpers ----
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace mae::cuda
