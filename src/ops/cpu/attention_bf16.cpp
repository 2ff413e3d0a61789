#include "ops/cpu/attention_bf16.h"

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
bool attention_bf16_pays(int Tn) { return Tn >= 64; }

void attention_forward_bf16(float* out, float* att, const float* qkv, int B, int Tn, int D, int H) {
  using dnnl_mm::Strides;
  const int64_t T = Tn, hd = D / H, ld = 3 * D;
  const Strides head{T * ld, hd, ld, 1};      // q, k or v of head h (Tn, hd) inside qkv (B, Tn, 3D)
  const Strides head_t{T * ld, hd, 1, ld};    // its transpose (hd, Tn)
  const Strides probs{H * T * T, T * T, T, 1};  // att (B, H, Tn, Tn)
  const Strides out_head{T * D, hd, D, 1};    // head h's columns of out (B, Tn, D)
  uint16_t* qb = bf16_scratch(kBf16In, size_t(B) * Tn * ld);
  to_bf16(qb, qkv, size_t(B) * Tn * ld);
  // att = scale · q kᵀ
  dnnl_mm::matmul_batched(dnnl_mm::Operand::bf16, B, H, Tn, Tn, int(hd), qb, head, qb + D, head_t,
                          1.f / std::sqrt(float(hd)), att, probs);
  // softmax per head, and its bf16 copy written while the head's rows are still in cache
  uint16_t* ab = bf16_scratch(kBf16Grad, size_t(B) * H * Tn * Tn);
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * H; ++bh) {
    const size_t off = size_t(bh) * Tn * Tn;
    softmax_rows(att + off, Tn, Tn);
    to_bf16(ab + off, att + off, size_t(Tn) * Tn);
  }
  // out = att · v
  dnnl_mm::matmul_batched(dnnl_mm::Operand::bf16, B, H, Tn, int(hd), Tn, ab, probs, qb + 2 * D, head, 1.f, out, out_head);
}

}  // namespace mae::cpu
