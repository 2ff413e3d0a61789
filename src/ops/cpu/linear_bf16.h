// The bf16 products of the CPU linear layer (Precision::bf16, ops/cpu/precision.h), through oneDNN matmul: bf16
// operands, fp32 accumulation, fp32 outputs. Only in builds with MAE_DNNL; linear.cpp calls them for float.
//
// Weight copies: linear_forward rounds W into a bf16 copy kept per weight pointer (one per parameter, allocated on
// the first step and reused after), and linear_backward's din product reuses that copy: W is rounded once per
// step and the copy serves forward and backward (oneDNN reads it transposed or not through strides); an inference
// model's forwards (cpu::FrozenWeightsScope) round it once per weight version. The
// activation operands (in, dout) are rounded per call into grow-only scratch buffers.
#pragma once
#include <cstdint>

namespace mae::cpu {

// out (N, O) = bf16(in) (N, I) · bf16(W)ᵀ (I, O) + b (O)
void linear_forward_bf16(float* out, const float* in, const float* W, const float* b, int N, int I, int O);
// din (N, I) += dout_bf16 · bf16(W);  dW (O, I) += dout_bf16ᵀ · bf16(in). dout_bf16 (N, O) is the gradient already
// rounded (linear.cpp rounds it in its fp32 bias-gradient pass).
void linear_backward_bf16(float* din, float* dW, const uint16_t* dout_bf16, const float* in, const float* W, int N,
                          int I, int O);

}  // namespace mae::cpu
