// Row-major GEMMs through oneDNN's matmul primitive (only in builds with MAE_DNNL), fp32 or bf16 operands, always
// fp32 accumulation and fp32 output. One primitive per shape, created on first use and kept (per thread: the
// primitive and its memory objects are not shared, so no lock and no allocation after the first call of a shape).
//
//   C (M, N) [+]= [GELU](op(A) (M, K) · op(B) (K, N) [+ bias (N), broadcast over the rows])
//   lda/ldb/ldc are the row strides of the matrices as stored (before transposition), as in ops/cpu/gemm.h.
//
// bench/gemm_shapes.cpp links this same file, so the GEMM table measures exactly what mae runs.
#pragma once
#include <cstdint>
#include <string>

namespace mae::cpu::dnnl_mm {

enum class Operand { f32, bf16 };  // bf16: A and B point to uint16_t bf16 values; C and bias stay float

// accumulate: C += product (the backward's gradient rule) instead of C = product. gelu: C = GELU(product + bias),
// the exact (erf) GELU applied as C is written (an inference model's fc1). Throws mae::Error when oneDNN cannot make
// the primitive. Inside an OpenMP parallel region the product runs on the calling thread alone.
void matmul(Operand type, bool transA, bool transB, int M, int N, int K, const void* A, int lda, const void* B,
            int ldb, const float* bias, bool accumulate, float* C, int ldc, bool gelu = false);

// Element strides of a (B, H) batch of matrices: between batches, heads, rows and columns.
struct Strides {
  int64_t b, h, r, c;
  bool operator==(const Strides&) const = default;
};

// A (B, H) batch of products with arbitrary strides (the attention heads straight on the strided qkv rows):
//   C[b, h] (M, N) = alpha · A[b, h] (M, K) · B[b, h] (K, N)
// Strides are those of the operands as used (a transposed view swaps r and c).
void matmul_batched(Operand type, int B, int H, int M, int N, int K, const void* A, Strides sa, const void* Bm,
                    Strides sb, float alpha, float* C, Strides sc);

// The implementation oneDNN picks for such a matmul ("brg:avx512_core_bf16", "gemm:jit", "ref:any" ...).
std::string impl_name(Operand type, bool transA, bool transB, int M, int N, int K);

// "oneDNN 2.6.3 (OpenMP runtime), ISA avx512_core_bf16": the version and the best instruction set it will use.
std::string describe();

// Whether oneDNN runs bf16 matmuls with native bf16 instructions here (its implementation for a probe shape is a
// JIT one that names bf16 or AMX, not a reference loop that converts element by element); `why` says why not.
bool native_bf16(std::string* why);

}  // namespace mae::cpu::dnnl_mm
