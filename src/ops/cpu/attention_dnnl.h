// Attention's forward products as oneDNN matmuls: q·kᵀ and probabilities·v, each one batched matmul over all
// (batch, head) pairs straight on the strided qkv rows, fp32 accumulation and fp32 outputs; scores and softmax stay
// fp32. Only in builds with MAE_DNNL; attention.cpp calls them for float when
//  - Precision::bf16 (ops/cpu/precision.h), as CUDA's cuBLAS attention path has it: bf16 copies of q, k, v and the
//    probabilities, when the sequence is long enough (attention_onednn_pays). The backward stays on the fp32 per-head
//    GEMMs: in bf16 it lost 10-15 % on the AVX-512 host (the extra bf16 copies of the probabilities and their
//    gradient cost more than the faster products gain).
//  - an inference model's fp32 forward (inference_onednn()) at that length too: f32 operands, no copies.
#pragma once

namespace mae::cpu {

// Whether the batched products beat the fp32 per-head GEMMs at this length.
bool attention_onednn_pays(int Tn);

// out (B, Tn, D), att (B, H, Tn, Tn) fp32 probabilities, qkv (B, Tn, 3D)
void attention_forward_bf16(float* out, float* att, const float* qkv, int B, int Tn, int D, int H);
void attention_forward_f32(float* out, float* att, const float* qkv, int B, int Tn, int D, int H);

}  // namespace mae::cpu
