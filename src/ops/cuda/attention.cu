// Attention core on the GPU: the fused kernel (attention_fused.cu) for short sequences; otherwise, per head h,
// cuBLAS strided-batched GEMMs over the B samples straight on the strided qkv rows (q/k/v of head h start at h·hd,
// 3D floats apart per token; sample b is Tn·3D further), plus a softmax kernel. Under Precision::bf16 the GEMMs
// take bf16 copies of their operands (tensor cores, fp32 accumulation); scores and softmax stay fp32.
#include "ops/cuda/attention_fused.h"
#include "ops/cuda/common.cuh"

namespace mae::cuda {

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

template void attention_forward<float>(float*, float*, const float*, int, int, int, int);
template void attention_backward<float>(float*, float*, const float*, const float*, const float*, int, int, int, int);

}  // namespace mae::cuda
