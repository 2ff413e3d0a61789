// CPU linear layer: the three products are BLAS GEMMs (fp32, OpenBLAS), or under Precision::bf16 oneDNN bf16
// matmuls (ops/cpu/linear_bf16.h); the bias sum is a column-blocked OpenMP reduction, fp32 in both (under bf16 it
// also rounds the gradient for the products). An inference model's fp32 forward runs oneDNN f32 matmuls
// (inference_onednn(), ops/cpu/precision.h).
#include <algorithm>
#include <type_traits>

#include "core/error.h"
#include "ops/cpu/bf16.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/precision.h"
#include "ops/ops.h"
#ifdef MAE_DNNL
#include "ops/cpu/dnnl_matmul.h"
#include "ops/cpu/linear_bf16.h"
#endif

namespace mae::cpu {

#ifdef MAE_DNNL
// bf16 products only for float (the `if constexpr` below): the double instantiations, which the tests compare
// with the reference, always run in double.
static bool bf16_gemm() { return precision() == Precision::bf16; }
#endif

// out (N, O) = in (N, I) · W (O, I)ᵀ + b (O)
template <class T> void linear_forward(T* out, const T* in, const T* W, const T* b, int N, int I, int O) {
  MAE_CHECK(N >= 0 && I >= 0 && O >= 0, "linear_forward dims ", N, " ", I, " ", O);
  if (N == 0 || O == 0) return;
#ifdef MAE_DNNL
  if constexpr (std::is_same_v<T, float>)
    if (bf16_gemm() && I > 0) return linear_forward_bf16(out, in, W, b, N, I, O);
  if constexpr (std::is_same_v<T, float>)
    if (inference_onednn() && I > 0)  // an inference forward: oneDNN adds the bias itself (no seeding pass)
      return dnnl_mm::matmul(dnnl_mm::Operand::f32, false, true, N, O, I, in, I, W, I, b, false, out, O);
#endif
  // Seed every row with the bias so the GEMM adds onto it (beta = 1): one pass over out instead of two.
  if (b) {
#pragma omp parallel for schedule(static) if (size_t(N) * O > 32768)
    for (int n = 0; n < N; ++n) std::copy(b, b + O, out + size_t(n) * O);
  }
  if (I == 0) {
    if (!b) std::fill(out, out + size_t(N) * O, T(0));
    return;
  }
  gemm<T>(false, true, N, O, I, T(1), in, I, W, I, b ? T(1) : T(0), out, O);
}

namespace {

// db (O) += Σ_n dout[n, :]. Each thread owns a block of columns and walks the rows: contiguous reads, no shared
// accumulators, and double partial sums so long batches (N in the tens of thousands) do not lose float precision.
// With `copy` (the bf16 path), the same pass also writes copy (N, O) = bf16(dout): one read of dout for both.
template <class T> void bias_grad(T* db, const T* dout, int N, int O, [[maybe_unused]] uint16_t* copy) {
  constexpr int kBlock = 64;
  const int blocks = (O + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (size_t(N) * O > 32768)
  for (int blk = 0; blk < blocks; ++blk) {
    const int o0 = blk * kBlock, w = std::min(kBlock, O - o0);
    double acc[kBlock] = {};
    for (int n = 0; n < N; ++n) {
      const T* row = dout + size_t(n) * O + o0;
      for (int j = 0; j < w; ++j) acc[j] += double(row[j]);
      if constexpr (std::is_same_v<T, float>)
        if (copy) {
          uint16_t* out = copy + size_t(n) * O + o0;
          for (int j = 0; j < w; ++j) out[j] = to_bf16(row[j]);
        }
    }
    for (int j = 0; j < w; ++j) db[o0 + j] += T(acc[j]);
  }
}

}  // namespace

// din (N, I) += dout (N, O) · W (O, I);  dW (O, I) += doutᵀ · in (N, I);  db (O) += Σ_n dout.
template <class T>
void linear_backward(T* din, T* dW, T* db, const T* dout, const T* in, const T* W, int N, int I, int O) {
  MAE_CHECK(N >= 0 && I >= 0 && O >= 0, "linear_backward dims ", N, " ", I, " ", O);
  if (N == 0 || O == 0) return;
#ifdef MAE_DNNL
  if constexpr (std::is_same_v<T, float>)
    if (bf16_gemm()) {
      uint16_t* gb = bf16_scratch(kBf16Grad, size_t(N) * O);
      if (db) bias_grad(db, dout, N, O, gb);
      else to_bf16(gb, dout, size_t(N) * O);
      if (I > 0) linear_backward_bf16(din, dW, gb, in, W, N, I, O);
      return;
    }
#endif
  if (din && I > 0) gemm<T>(false, false, N, I, O, T(1), dout, O, W, I, T(1), din, I);
  if (dW && I > 0) gemm<T>(true, false, O, I, N, T(1), dout, O, in, I, T(1), dW, I);
  if (db) bias_grad(db, dout, N, O, nullptr);
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void linear_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int, int);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                      int, int);

}  // namespace mae::cpu
