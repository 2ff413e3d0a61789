// The bf16 forward products of CPU attention (Precision::bf16, ops/cpu/precision.h), as CUDA's cuBLAS attention path
// has them: q·kᵀ and probabilities·v take bf16 copies of q, k, v and the probabilities, accumulate in fp32 and write
// fp32; scores and softmax stay fp32. Each product is one oneDNN matmul over all (batch, head) pairs, straight on the
// strided qkv rows. The backward stays on the fp32 per-head GEMMs: in bf16 it lost 10-15 % on the AVX-512 host (the
// extra bf16 copies of the probabilities and their gradient cost more than the faster products gain). Only in builds
// with MAE_DNNL; attention.cpp calls it for float when the sequence is long enough (attention_bf16_pays).
#pragma once

namespace mae::cpu {

// Whether the batched bf16 products beat the fp32 per-head GEMMs at this length.
bool attention_bf16_pays(int Tn);

// out (B, Tn, D), att (B, H, Tn, Tn) fp32 probabilities, qkv (B, Tn, 3D)
void attention_forward_bf16(float* out, float* att, const float* qkv, int B, int Tn, int D, int H);

}  // namespace mae::cpu
