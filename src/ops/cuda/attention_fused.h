// Fused attention for short sequences (attention_fused.cu), used by attention_forward/backward (attention.cu) when it
// applies; they fall back to cuBLAS batched GEMMs + a softmax kernel otherwise. Plain C++.
#pragma once

namespace mae::cuda {

constexpr int kFusedMaxTokens = 256;  // scores of a row live in registers: 8 per lane
constexpr int kFusedMaxHeadDim = 128;

// Returns false (doing nothing) when the fused kernel does not apply: impl set to cublas, Tn or head dim too large,
// or the staged K/V do not fit the device's shared memory.
bool fused_attention_forward(float* out, float* att, const float* qkv, int B, int Tn, int D, int H);
bool fused_attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv, const float* att,
                              int B, int Tn, int D, int H);

}  // namespace mae::cuda
