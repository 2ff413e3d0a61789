// cuBLAS and cuBLASLt loaded on first use (dlopen), not linked.
//
// Why: linking them makes every mae process pay for their start-up — libcublasLt's constructors and relocations
// touch ~100 MB (25k page faults): 0.42 s per process on the VMs we run on, CPU runs and `mae --version` included,
// and the test suite starts mae hundreds of times. The CUDA backend is the only caller; this file defines the
// functions it calls (the exported names, `_v2` where cublas_v2.h maps them) as forwarders to the libraries' own,
// resolved once. A machine without the libraries now runs everything on the CPU and gets a clear error at the first
// CUDA use instead of a loader failure at start.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <string>

#include "core/error.h"

namespace mae::cuda {
namespace {

enum Lib { kBlas, kBlasLt };

std::atomic<bool> loaded[2];  // set once library() has its handle (cublasGetStatusString asks, without loading)

// The library's handle; the soname carries the major version we were compiled against (libcublas.so.13). The
// executable's RUNPATH (the toolkit's lib folder, as for libcudart) and LD_LIBRARY_PATH are searched; the folder the
// build found the toolkit in is the fallback.
void* library(Lib which) {
  static void* handles[2] = {nullptr, nullptr};
  static std::once_flag once[2];
  std::call_once(once[which], [which] {
    const std::string name = std::string(which == kBlas ? "libcublas.so." : "libcublasLt.so.") +
                             std::to_string(CUBLAS_VER_MAJOR);
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef MAE_CUDA_LIBDIR
    if (!h) h = dlopen((std::string(MAE_CUDA_LIBDIR) + "/" + name).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
    if (!h)
      fail("the CUDA backend needs ", name, " (cuBLAS, from the CUDA toolkit) and cannot load it: ", dlerror(),
           " (set LD_LIBRARY_PATH to the toolkit's lib folder, or run on the CPU: --device cpu)");
    handles[which] = h;
    loaded[which].store(true, std::memory_order_release);
  });
  return handles[which];
}

void* symbol(Lib which, const char* name) {
  void* f = dlsym(library(which), name);
  if (!f) fail("cuBLAS: ", name, " not found in the loaded library: a cuBLAS older than the one mae was built with");
  return f;
}

}  // namespace
}  // namespace mae::cuda

// Each forwarder resolves its function once (a thread-safe static) and calls it with its own arguments. The type is
// the header's declaration; MAE_FORWARD_AS names it where C++ overloads make that ambiguous.
#define MAE_FORWARD_AS(lib, fn, type, ...)                                                   \
  static const auto f = reinterpret_cast<type>(::mae::cuda::symbol(::mae::cuda::lib, #fn)); \
  return f(__VA_ARGS__)
#define MAE_FORWARD(lib, fn, ...) MAE_FORWARD_AS(lib, fn, decltype(&fn), __VA_ARGS__)

extern "C" {

// ---- cuBLAS (cublas_api.h)
cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t* handle) { MAE_FORWARD(kBlas, cublasCreate_v2, handle); }
const char* CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
  // Called to word an error: it must not fail itself when the library is missing.
  if (!mae::cuda::loaded[mae::cuda::kBlas].load(std::memory_order_acquire)) return "cuBLAS not loaded";
  MAE_FORWARD(kBlas, cublasGetStatusString, status);
}
cublasStatus_t CUBLASWINAPI cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  MAE_FORWARD(kBlas, cublasSetMathMode, handle, mode);
}
cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  MAE_FORWARD(kBlas, cublasSetStream_v2, handle, stream);
}
cublasStatus_t CUBLASWINAPI cublasSetWorkspace_v2(cublasHandle_t handle, void* ws, size_t bytes) {
  MAE_FORWARD(kBlas, cublasSetWorkspace_v2, handle, ws, bytes);
}
cublasStatus_t CUBLASWINAPI cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                                           const float* beta, float* C, int ldc) {
  MAE_FORWARD(kBlas, cublasSgemm_v2, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
cublasStatus_t CUBLASWINAPI cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                      int m, int n, int k, const float* alpha, const float* A, int lda,
                                                      long long int sA, const float* B, int ldb, long long int sB,
                                                      const float* beta, float* C, int ldc, long long int sC,
                                                      int batch) {
  MAE_FORWARD(kBlas, cublasSgemmStridedBatched, h, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC,
              batch);
}
cublasStatus_t CUBLASWINAPI cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const void* alpha, const void* A, cudaDataType At, int lda,
                                         const void* B, cudaDataType Bt, int ldb, const void* beta, void* C,
                                         cudaDataType Ct, int ldc, cublasComputeType_t ct, cublasGemmAlgo_t algo) {
  using Fn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  MAE_FORWARD_AS(kBlas, cublasGemmEx, Fn, h, ta, tb, m, n, k, alpha, A, At, lda, B, Bt, ldb, beta, C, Ct, ldc, ct, algo);
}
cublasStatus_t CUBLASWINAPI cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                                       int m, int n, int k, const void* alpha, const void* A,
                                                       cudaDataType At, int lda, long long int sA, const void* B,
                                                       cudaDataType Bt, int ldb, long long int sB, const void* beta,
                                                       void* C, cudaDataType Ct, int ldc, long long int sC, int batch,
                                                       cublasComputeType_t ct, cublasGemmAlgo_t algo) {
  using Fn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                const void*, cudaDataType, int, long long int, const void*, cudaDataType, int,
                                long long int, const void*, void*, cudaDataType, int, long long int, int,
                                cublasComputeType_t, cublasGemmAlgo_t);
  MAE_FORWARD_AS(kBlas, cublasGemmStridedBatchedEx, Fn, h, ta, tb, m, n, k, alpha, A, At, lda, sA, B, Bt, ldb, sB, beta, C,
              Ct, ldc, sC, batch, ct, algo);
}

// ---- cuBLASLt (cublasLt.h)
cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t* h) { MAE_FORWARD(kBlasLt, cublasLtCreate, h); }
cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                                       uint64_t rows, uint64_t cols, int64_t ld) {
  MAE_FORWARD(kBlasLt, cublasLtMatrixLayoutCreate, layout, type, rows, cols, ld);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t ct,
                                                     cudaDataType_t scale) {
  MAE_FORWARD(kBlasLt, cublasLtMatmulDescCreate, desc, ct, scale);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                           cublasLtMatmulDescAttributes_t attr, const void* buf,
                                                           size_t bytes) {
  MAE_FORWARD(kBlasLt, cublasLtMatmulDescSetAttribute, desc, attr, buf, bytes);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  MAE_FORWARD(kBlasLt, cublasLtMatmulPreferenceCreate, pref);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  MAE_FORWARD(kBlasLt, cublasLtMatmulPreferenceDestroy, pref);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                                 cublasLtMatmulPreferenceAttributes_t attr,
                                                                 const void* buf, size_t bytes) {
  MAE_FORWARD(kBlasLt, cublasLtMatmulPreferenceSetAttribute, pref, attr, buf, bytes);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc,
                                                           cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                                                           cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D,
                                                           cublasLtMatmulPreference_t pref, int requested,
                                                           cublasLtMatmulHeuristicResult_t results[], int* returned) {
  MAE_FORWARD(kBlasLt, cublasLtMatmulAlgoGetHeuristic, h, desc, A, B, C, D, pref, requested, results, returned);
}
cublasStatus_t CUBLASWINAPI cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void* alpha,
                                           const void* A, cublasLtMatrixLayout_t Ad, const void* B,
                                           cublasLtMatrixLayout_t Bd, const void* beta, const void* C,
                                           cublasLtMatrixLayout_t Cd, void* D, cublasLtMatrixLayout_t Dd,
                                           const cublasLtMatmulAlgo_t* algo, void* ws, size_t ws_bytes,
                                           cudaStream_t stream) {
  MAE_FORWARD(kBlasLt, cublasLtMatmul, h, desc, alpha, A, Ad, B, Bd, beta, C, Cd, D, Dd, algo, ws, ws_bytes, stream);
}

}  // extern "C"
