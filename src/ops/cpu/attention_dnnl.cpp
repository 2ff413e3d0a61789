#include "ops/cpu/attention_dnnl.h"

#include <cmath>
#include <cstdint>

#include "ops/cpu/attention_rows.h"
#include "ops/cpu/bf16.h"
#include "ops/cpu/dnnl_matmul.h"

namespace mae::cpu {

// Measured with bench/gemm_shapes (qk + av of one block, 2 threads; bench/results/cpu-bf16-attention-20261205.md):
// at 197 tokens oneDNN's batched bf16 products run 1.8-2.3× faster than the fp32 per-head GEMMs, at 50 tokens they
// are even (0.25 vs 0.32 ms tiny's encoder, 0.37 vs 0.33 base's, 2.2 vs 1.8 the 28-px decoder) before the bf16
// copies of qkv and the probabilities are paid for, at 13 tokens they lose (0.87 vs 0.25 ms).
// In f32 (bench/results/cpu-zen3-20261206.md, FILTER=attn bench/gemm_compare.sh openblas dnnl) the batched products
// beat the per-head OpenBLAS GEMMs from 50 tokens on (ViT-B's 197-token encoder 79 → 160 GFLOP/s) and lose at 13.
bool attention_onednn_pays(int Tn) { return Tn >= 64; }

namespace {

using dnnl_mm::Operand;
using dnnl_mm::Strides;

// The two products on q, k, v given as `type` operands (qkv's layout, (B, Tn, 3D)); the softmax in between, and,
// for bf16, the probabilities' copy in bf16 while a head's rows are still in cache.
void forward(Operand type, float* out, float* att, const void* qkv, int B, int Tn, int D, int H) {
  const int64_t T = Tn, hd = D / H, ld = 3 * D;
  const Strides head{T * ld, hd, ld, 1};        // q, k or v of head h (Tn, hd) inside qkv (B, Tn, 3D)
  const Strides head_t{T * ld, hd, 1, ld};      // its transpose (hd, Tn)
  const Strides probs{H * T * T, T * T, T, 1};  // att (B, H, Tn, Tn)
  const Strides out_head{T * D, hd, D, 1};      // head h's columns of out (B, Tn, D)
  const size_t width = type == Operand::bf16 ? sizeof(uint16_t) : sizeof(float);
  const auto* q = static_cast<const unsigned char*>(qkv);
  const unsigned char *k = q + size_t(D) * width, *v = q + 2 * size_t(D) * width;
  // att = scale · q kᵀ
  dnnl_mm::matmul_batched(type, B, H, Tn, Tn, int(hd), q, head, k, head_t, 1.f / std::sqrt(float(hd)), att, probs);
  uint16_t* ab = type == Operand::bf16 ? bf16_scratch(kBf16Grad, size_t(B) * H * Tn * Tn) : nullptr;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * H; ++bh) {
    const size_t off = size_t(bh) * Tn * Tn;
    softmax_rows(att + off, Tn, Tn);
    if (ab) to_bf16(ab + off, att + off, size_t(Tn) * Tn);
  }
  // out = att · v
  dnnl_mm::matmul_batched(type, B, H, Tn, int(hd), Tn, ab ? static_cast<const void*>(ab) : att, probs, v, head, 1.f,
                          out, out_head);
}

}  // namespace

void attention_forward_bf16(float* out, float* att, const float* qkv, int B, int Tn, int D, int H) {
  uint16_t* qb = bf16_scratch(kBf16In, size_t(B) * Tn * 3 * D);
  to_bf16(qb, qkv, size_t(B) * Tn * 3 * D);
  forward(Operand::bf16, out, att, qb, B, Tn, D, H);
}

void attention_forward_f32(float* out, float* att, const float* qkv, int B, int Tn, int D, int H) {
  forward(Operand::f32, out, att, qkv, B, Tn, D, H);
}

}  // namespace mae::cpu
