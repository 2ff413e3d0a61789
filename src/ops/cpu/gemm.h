// Row-major GEMM over OpenBLAS, overloaded on the element type so templated ops call one name.
// C (M, N) = alpha · op(A) · op(B) + beta · C, op(A) (M, K), op(B) (K, N); lda/ldb/ldc are the row strides of the
// matrices as stored (before transposition).
#pragma once
#include <cblas.h>

namespace mae::cpu {

template <class T>
void gemm(bool transA, bool transB, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta,
          T* C, int ldc);

template <>
inline void gemm<float>(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                        const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha,
              A, lda, B, ldb, beta, C, ldc);
}

template <>
inline void gemm<double>(bool transA, bool transB, int M, int N, int K, double alpha, const double* A, int lda,
                         const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha,
              A, lda, B, ldb, beta, C, ldc);
}

}  // namespace mae::cpu
