// One LayerNorm row by one warp (lane-strided columns, two-pass fp32 statistics), shared by layernorm.cu and the
// fused residual kernel (fused.cu) so both give the same bits (the backward recomputes with the plain one): the
// CUDA counterpart of cpu/layernorm_row.h.
#pragma once
#include "ops/cuda/common.cuh"

namespace mae::cuda {

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

}  // namespace mae::cuda
