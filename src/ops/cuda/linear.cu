// Linear layer and attention core on cuBLAS/cuBLASLt (never a hand-written GEMM).
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

#include "ops/cuda/attention_fused.h"
#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {

__global__ void to_bf16_kernel(__nv_bfloat16* out, const float* in, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}
__nv_bfloat16* to_bf16(Scratch slot, const float* in, size_t n) {
  Context& c = ctx();
  auto* out = static_cast<__nv_bfloat16*>(c.get(slot, n * sizeof(__nv_bfloat16) + 16));
  to_bf16_kernel<<<blocks_for(n, 256, c.sm_count * 16), 256, 0, c.stream>>>(out, in, n);
  MAE_CUDA_LAUNCHED();
  return out;
}

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

bool bf16() { return ctx().prec == Precision::bf16; }

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

// ---- attention core: the fused kernel (attention_fused.cu) for short sequences; otherwise, per head h, cuBLAS
// strided-batched GEMMs over the B samples straight on the strided qkv rows (q/k/v of head h start at h·hd, 3D
// floats apart per token; sample b is Tn·3D further), plus a softmax kernel.
namespace {
// In place, one warp per row: s = softmax(s) over n columns.
__global__ void softmax_rows_kernel(float* s, size_t rows, int n) {
  const size_t row = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  float* r = s + row * n;
  float mx = -INFINITY;
  for (int j = lane; j < n; j += 32) mx = fmaxf(mx, r[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j < n; j += 32) {
    const float e = expf(r[j] - mx);
    r[j] = e;
    sum += e;
  }
  sum = warp_sum(sum);
  const float inv = 1.f / sum;
  for (int j = lane; j < n; j += 32) r[j] *= inv;
}
// In place, one warp per row: ds = att ⊙ (ds − Σ_j ds ⊙ att)
__global__ void softmax_backward_rows_kernel(float* ds, const float* att, size_t rows, int n) {
  const size_t row = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  float* d = ds + row * n;
  const float* a = att + row * n;
  float dot = 0.f;
  for (int j = lane; j < n; j += 32) dot += d[j] * a[j];
  dot = warp_sum(dot);
  for (int j = lane; j < n; j += 32) d[j] = a[j] * (d[j] - dot);
}
void batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A, int lda,
             long long sA, const float* B, int ldb, long long sB, float beta, float* C, int ldc, long long sC,
             int batch) {
  MAE_CUBLAS_CHECK(cublasSgemmStridedBatched(ctx().blas, ta, tb, m, n, k, &alpha, A, lda, sA, B, ldb, sB, &beta, C,
                                             ldc, sC, batch));
}
// The same product with bf16 operands on tensor cores, fp32 accumulation and fp32 output (Precision::bf16).
// Returns false when cuBLAS refuses the shape/alignment (the caller falls back to the fp32 operands).
bool batched_bf16(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                  const __nv_bfloat16* A, int lda, long long sA, const __nv_bfloat16* B, int ldb, long long sB,
                  float beta, float* C, int ldc, long long sC, int batch) {
  const cublasStatus_t st =
      cublasGemmStridedBatchedEx(ctx().blas, ta, tb, m, n, k, &alpha, A, CUDA_R_16BF, lda, sA, B, CUDA_R_16BF, ldb,
                                 sB, &beta, C, CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st == CUBLAS_STATUS_SUCCESS) return true;
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE) return false;
  fail("cublasGemmStridedBatchedEx (", m, "x", n, "x", k, " x", batch, "): ", cublasGetStatusString(st));
}
// One strided-batched product per head on either path: fp32 operands (SGEMM) or, under Precision::bf16, their bf16
// copies at the same element offsets (the copies have the same layout as the fp32 tensors).
struct AttnOperand {
  const float* f;
  const __nv_bfloat16* h;  // nullptr in fp32 mode
};
void head_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, AttnOperand A, size_t offA,
               int lda, long long sA, AttnOperand B, size_t offB, int ldb, long long sB, float beta, float* C, int ldc,
               long long sC, int batch) {
  if (A.h && batched_bf16(ta, tb, m, n, k, alpha, A.h + offA, lda, sA, B.h + offB, ldb, sB, beta, C, ldc, sC, batch))
    return;
  batched(ta, tb, m, n, k, alpha, A.f + offA, lda, sA, B.f + offB, ldb, sB, beta, C, ldc, sC, batch);
}
}  // namespace

// out (B, Tn, D), att (B, H, Tn, Tn), qkv (B, Tn, 3D)
template <class T> void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int D, int H) {
  MAE_CHECK(H > 0 && D % H == 0, "D ", D, " H ", H);
  if (B == 0 || Tn == 0) return;
  if (fused_attention_forward(out, att, qkv, B, Tn, D, H)) return;
  Context& c = ctx();
  const int hd = D / H, ld = 3 * D;
  const float scale = 1.f / std::sqrt(float(hd));
  const long long sq = (long long)Tn * ld, sa = (long long)H * Tn * Tn, so = (long long)Tn * D;
  const size_t natt = size_t(B) * H * Tn * Tn;
  const AttnOperand QKV{qkv, bf16() ? to_bf16(kBf16A, qkv, size_t(B) * Tn * ld) : nullptr};
  for (int h = 0; h < H; ++h) {
    // scores (Tn × Tn, row-major) = scale · q kᵀ   ⇔ column-major scoresᵀ = (k-view)ᵀ · q-view
    head_gemm(CUBLAS_OP_T, CUBLAS_OP_N, Tn, Tn, hd, scale, QKV, size_t(D + h * hd), ld, sq, QKV, size_t(h * hd), ld,
              sq, 0.f, att + size_t(h) * Tn * Tn, Tn, sa, B);
  }
  const size_t rows = size_t(B) * H * Tn;
  softmax_rows_kernel<<<blocks_for(rows * 32, 256, 1 << 30), 256, 0, c.stream>>>(att, rows, Tn);
  MAE_CUDA_LAUNCHED();
  const AttnOperand A{att, bf16() ? to_bf16(kBf16B, att, natt) : nullptr};
  for (int h = 0; h < H; ++h) {
    // out_h (Tn × hd, row stride D) = att · v   ⇔ column-major: v-view (hd × Tn) · att-view (Tn × Tn)
    head_gemm(CUBLAS_OP_N, CUBLAS_OP_N, hd, Tn, Tn, 1.f, QKV, size_t(2 * D + h * hd), ld, sq, A, size_t(h) * Tn * Tn,
              Tn, sa, 0.f, out + h * hd, D, so, B);
  }
}

// dqkv (B, Tn, 3D) +=; scratch (B, H, Tn, Tn)
template <class T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* att, int B, int Tn, int D, int H) {
  if (!dqkv) return;
  MAE_CHECK(H > 0 && D % H == 0, "D ", D, " H ", H);
  if (B == 0 || Tn == 0) return;
  if (fused_attention_backward(dqkv, scratch, dout, qkv, att, B, Tn, D, H)) return;
  Context& c = ctx();
  const int hd = D / H, ld = 3 * D;
  const float scale = 1.f / std::sqrt(float(hd));
  const long long sq = (long long)Tn * ld, sa = (long long)H * Tn * Tn, so = (long long)Tn * D;
  const size_t natt = size_t(B) * H * Tn * Tn;
  const bool h16 = bf16();
  // bf16 copies (scratch slots A: qkv, B: att then ds, C: dout), taken before anything overwrites their source
  const AttnOperand QKV{qkv, h16 ? to_bf16(kBf16A, qkv, size_t(B) * Tn * ld) : nullptr};
  const AttnOperand GO{dout, h16 ? to_bf16(kBf16C, dout, size_t(B) * Tn * D) : nullptr};
  const AttnOperand A{att, h16 ? to_bf16(kBf16B, att, natt) : nullptr};
  for (int h = 0; h < H; ++h) {
    float* ds = scratch + size_t(h) * Tn * Tn;
    float* dv = dqkv + 2 * D + h * hd;
    // datt (Tn × Tn) = dout_h · vᵀ   ⇔ column-major: (v-view)ᵀ · dout-view
    head_gemm(CUBLAS_OP_T, CUBLAS_OP_N, Tn, Tn, hd, 1.f, QKV, size_t(2 * D + h * hd), ld, sq, GO, size_t(h * hd), D,
              so, 0.f, ds, Tn, sa, B);
    // dv (Tn × hd) += attᵀ · dout_h   ⇔ column-major: dout-view · (att-view)ᵀ
    head_gemm(CUBLAS_OP_N, CUBLAS_OP_T, hd, Tn, Tn, 1.f, GO, size_t(h * hd), D, so, A, size_t(h) * Tn * Tn, Tn, sa,
              1.f, dv, ld, sq, B);
  }
  const size_t rows = size_t(B) * H * Tn;
  softmax_backward_rows_kernel<<<blocks_for(rows * 32, 256, 1 << 30), 256, 0, c.stream>>>(scratch, att, rows, Tn);
  MAE_CUDA_LAUNCHED();
  // ds in bf16 reuses slot B: the att copy's last reader (the dv products above) is earlier on the stream
  const AttnOperand DS{scratch, h16 ? to_bf16(kBf16B, scratch, natt) : nullptr};
  for (int h = 0; h < H; ++h) {
    float* dq = dqkv + h * hd;
    float* dk = dq + D;
    // dq (Tn × hd) += scale · ds · k   ⇔ column-major: k-view · ds-view
    head_gemm(CUBLAS_OP_N, CUBLAS_OP_N, hd, Tn, Tn, scale, QKV, size_t(D + h * hd), ld, sq, DS, size_t(h) * Tn * Tn,
              Tn, sa, 1.f, dq, ld, sq, B);
    // dk (Tn × hd) += scale · dsᵀ · q   ⇔ column-major: q-view · (ds-view)ᵀ
    head_gemm(CUBLAS_OP_N, CUBLAS_OP_T, hd, Tn, Tn, scale, QKV, size_t(h * hd), ld, sq, DS, size_t(h) * Tn * Tn, Tn,
              sa, 1.f, dk, ld, sq, B);
  }
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int, int);
template void attention_forward<float>(float*, float*, const float*, int, int, int, int);
template void attention_backward<float>(float*, float*, const float*, const float*, const float*, int, int, int, int);

}  // namespace mae::cuda
