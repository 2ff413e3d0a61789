// Linear layer on cuBLAS/cuBLASLt (never a hand-written GEMM); the attention core's cuBLAS path is in attention.cu.
//
// Row-major ↔ column-major: a row-major (r × c) matrix with leading dimension ld is the column-major (c × r)
// matrix with the same ld, so every product below is written for its transpose.
//
// Precision::bf16: operands are rounded to bf16 on the fly into scratch buffers and multiplied by cuBLASLt (linear)
// or cuBLAS strided-batched GemmEx (the attention fallback path) with fp32 accumulation into fp32 outputs (beta = 1
// accumulates the gradients). The fused attention kernel computes in fp32. Storing the activations themselves in
// bf16 is the next step.
#include <map>
#include <tuple>

#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
// out (N, O) += b broadcast over rows
__global__ void add_bias_kernel(float* out, const float* b, size_t N, int O) {
  const size_t n = N * O;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] += b[i % O];
}

void sgemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  MAE_CUBLAS_CHECK(cublasSgemm(ctx().blas, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc));
}

// Column-major bf16 × bf16 → fp32 through cuBLASLt (descriptors and the heuristic's algorithm cached per shape);
// falls back to cublasGemmEx when the heuristic offers nothing for an odd shape.
struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
};
using LtKey = std::tuple<int, int, int, int, int, int, int, int, int>;
std::map<LtKey, LtPlan> g_lt;

void gemm_bf16(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const __nv_bfloat16* A, int lda,
               const __nv_bfloat16* B, int ldb, float beta, float* C, int ldc) {
  Context& cx = ctx();
  const float alpha = 1.f;
  const LtKey key{int(ta), int(tb), m, n, k, lda, ldb, ldc, beta != 0.f};
  auto it = g_lt.find(key);
  if (it == g_lt.end()) {
    LtPlan p;
    MAE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    MAE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    MAE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    const bool an = ta == CUBLAS_OP_N, bn = tb == CUBLAS_OP_N;
    MAE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, an ? m : k, an ? k : m, lda));
    MAE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, bn ? k : n, bn ? n : k, ldb));
    MAE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, m, n, ldc));
    cublasLtMatmulPreference_t pref = nullptr;
    MAE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    MAE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &cx.lt_ws_bytes, sizeof cx.lt_ws_bytes));
    // A and B are the bf16 scratch copies (cudaMalloc: 256-byte aligned); C/D are arena or parameter slices,
    // only guaranteed 64-byte aligned: tell the heuristic so it never picks an algorithm that needs more.
    const uint32_t align_ab = 256, align_cd = 16;
    MAE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_ab,
                                                          sizeof align_ab));
    MAE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_ab,
                                                          sizeof align_ab));
    MAE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_cd,
                                                          sizeof align_cd));
    MAE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_cd,
                                                          sizeof align_cd));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(cx.lt, p.op, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    p.ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (p.ok) p.algo = res.algo;
    it = g_lt.emplace(key, p).first;
  }
  LtPlan& p = it->second;
  if (p.ok) {
    const cublasStatus_t st = cublasLtMatmul(cx.lt, p.op, &alpha, A, p.a, B, p.b, &beta, C, p.c, C, p.c, &p.algo,
                                             cx.lt_ws, cx.lt_ws_bytes, cx.stream);
    if (st == CUBLAS_STATUS_SUCCESS) return;
    if (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_INVALID_VALUE)
      fail("cublasLtMatmul (", m, "x", n, "x", k, "): ", cublasGetStatusString(st));
    p.ok = false;  // an algorithm the heuristic offered but this shape/alignment refuses: use cublasGemmEx from now on
  }
  {
    MAE_CUBLAS_CHECK(cublasGemmEx(cx.blas, ta, tb, m, n, k, &alpha, A, CUDA_R_16BF, lda, B, CUDA_R_16BF, ldb, &beta,
                                  C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}
}  // namespace

// out (N, O) = in (N, I) · W (O, I)ᵀ + b (O)   ⇔ column-major outᵀ (O × N) = W (I × O)ᵀ · inᵀ (I × N)
template <class T> void linear_forward(T* out, const T* in, const T* W, const T* b, int N, int I, int O) {
  MAE_CHECK(N >= 0 && I >= 0 && O >= 0, "linear_forward dims ", N, " ", I, " ", O);
  if (N == 0 || O == 0) return;
  Context& c = ctx();
  if (I == 0) {
    zero_bytes(out, sizeof(T) * size_t(N) * O);
  } else if (bf16()) {
    const __nv_bfloat16* ib = to_bf16(kBf16A, in, size_t(N) * I);
    const __nv_bfloat16* wb = to_bf16(kBf16B, W, size_t(O) * I);
    gemm_bf16(CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, wb, I, ib, I, 0.f, out, O);
  } else {
    sgemm(CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, 1.f, W, I, in, I, 0.f, out, O);
  }
  if (b) {
    add_bias_kernel<<<blocks_for(size_t(N) * O, 256, c.sm_count * 16), 256, 0, c.stream>>>(out, b, size_t(N), O);
    MAE_CUDA_LAUNCHED();
  }
}

// din (N, I) += dout (N, O) · W (O, I)   ⇔ dinᵀ (I × N) += W-view (I × O) · dout-view (O × N)
// dW (O, I) += doutᵀ · in                ⇔ dWᵀ (I × O) += in-view (I × N) · (dout-view)ᵀ (N × O)
// db (O) += Σ_n dout
template <class T>
void linear_backward(T* din, T* dW, T* db, const T* dout, const T* in, const T* W, int N, int I, int O) {
  MAE_CHECK(N >= 0 && I >= 0 && O >= 0, "linear_backward dims ", N, " ", I, " ", O);
  if (N == 0 || O == 0) return;
  if (I > 0 && (din || dW)) {
    if (bf16()) {
      const __nv_bfloat16* gb = to_bf16(kBf16C, dout, size_t(N) * O);
      if (din) {
        const __nv_bfloat16* wb = to_bf16(kBf16B, W, size_t(O) * I);
        gemm_bf16(CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, wb, I, gb, O, 1.f, din, I);
      }
      if (dW) {
        const __nv_bfloat16* ib = to_bf16(kBf16A, in, size_t(N) * I);
        gemm_bf16(CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, ib, I, gb, O, 1.f, dW, I);
      }
    } else {
      if (din) sgemm(CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, 1.f, W, I, dout, O, 1.f, din, I);
      if (dW) sgemm(CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, 1.f, in, I, dout, O, 1.f, dW, I);
    }
  }
  if (db) colsum(db, N, O, [=] __device__(int r, int c) { return dout[size_t(r) * O + c]; });
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int, int);

}  // namespace mae::cuda
