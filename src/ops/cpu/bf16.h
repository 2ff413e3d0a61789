// fp32 → bf16 rounding for the bf16 GEMM operands (--precision bf16 on the CPU): round to nearest even, as the
// hardware's vcvtneps2bf16 and PyTorch's .to(torch.bfloat16); NaN stays NaN (quiet). Stored as uint16_t bits.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>

namespace mae::cpu {

inline uint16_t to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  // Branch-free so the loop below vectorises: the select keeps NaN payloads from rounding into infinity.
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return uint16_t((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}

inline float bf16_to_float(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

// out[i] = to_bf16(in[i]), split over the OpenMP threads for large n.
void to_bf16(uint16_t* out, const float* in, size_t n);

// Grow-only scratch for the bf16 copies of an op's activation operands, per thread (as the oneDNN primitive
// cache): two slots, each valid until the next op that uses the same slot (ops use them only within one call).
enum Bf16Slot { kBf16In = 0, kBf16Grad = 1 };
uint16_t* bf16_scratch(Bf16Slot slot, size_t n);

}  // namespace mae::cpu
