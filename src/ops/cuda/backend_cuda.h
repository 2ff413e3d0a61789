// CudaBackend: the op set of ops_cuda.h with device memory, so MaeModel<CudaBackend<float>> runs on the GPU.
// Plain C++ (no CUDA headers). Only float is instantiated: tests compare the CUDA ops to the CPU float ops.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "ops/backend.h"
#include "ops/cuda/ops_cuda.h"

namespace mae {

// Device memory with the HostMemory interface: alloc zero-filled, release, zero, upload (host → device),
// download (device → host). zero is enqueued on the compute stream (ordered with the ops).
struct CudaMemory {
  template <class T> static T* alloc(size_t n) { return static_cast<T*>(cuda::alloc_bytes(n * sizeof(T))); }
  static void release(void* p) { cuda::free_bytes(p); }
  template <class T> static void zero(T* p, size_t n) {
    cuda::OpScope scope("zero");
    cuda::zero_bytes(p, n * sizeof(T));
  }
  template <class T> static void upload(T* dst, const T* src, size_t n) {
    cuda::OpScope scope("upload");
    cuda::upload_bytes(dst, src, n * sizeof(T));
  }
  template <class T> static void download(T* dst, const T* src, size_t n) {
    cuda::download_bytes(dst, src, n * sizeof(T));
  }
};

template <class T_> struct CudaBackend : CudaMemory {
  using T = T_;
  static constexpr const char* name = "cuda";
  // Every op through a wrapper that times it when profiling is on (cuda::OpScope; mae bench --profile).
#define MAE_OP_TIMED(ns, op)                                   \
  template <class... A> static auto op(A&&... args) {          \
    cuda::OpScope scope(#op);                                  \
    return ns::op<T>(std::forward<A>(args)...);                \
  }
  MAE_OP_LIST(MAE_OP_TIMED, cuda)
#undef MAE_OP_TIMED

  // MaeModel::forward_nowait / loss_wait: the masked MSE reduced on the stream, read back behind an event.
  static void masked_mse_enqueue(const T* pred, const T* target, const T* mask, int B, int L, int P) {
    cuda::OpScope scope("masked_mse_forward");
    cuda::masked_mse_enqueue(cuda::kSlotLoss, pred, target, mask, B, L, P);
  }
  static T masked_mse_read() {
    const cuda::DeferredPair s = cuda::read_deferred(cuda::kSlotLoss);
    return T(s.a / s.b);
  }

  // CUDA graphs (train/step_graph.h).
  static void graph_begin() { cuda::graph_begin(); }
  static void* graph_end() { return cuda::graph_end(); }
  static bool graph_launch(void* g) { return cuda::graph_launch(g); }
  static void graph_destroy(void* g) { cuda::graph_destroy(g); }
  static void graph_abort() { cuda::graph_abort(); }

  using PrecisionScope = cuda::PrecisionScope;
  using FrozenWeights = NoFrozenWeights;  // the CUDA linear layers round their weights on every call (cuda/linear.cu)
  // Benchmarks and profiles (mae bench): wait for the stream; events around each op.
  static void synchronize() { cuda::synchronize(); }
  static std::string device_name() { return cuda::device_name(); }
  static size_t peak_allocated_bytes() { return cuda::peak_allocated_bytes(); }
  static void set_profiling(bool on) { cuda::set_profiling(on); }
  static std::vector<cuda::OpTime> profile_report() { return cuda::profile_report(); }  // the GEMM precision for a scope (ops/dispatch.h, InferenceModel)

  // Training-loop helpers (train/device_mirror.h): the batch upload overlapped with the previous step (pinned
  // memory, a copy stream), and the gradient norm reduced on the stream and read back behind an event.
  static void* uploader_create() { return cuda::uploader_create(); }
  static void uploader_destroy(void* u) { cuda::uploader_destroy(u); }
  static void uploader_put(void* u, T* dst, const T* src, size_t n) { cuda::uploader_put(u, dst, src, n * sizeof(T)); }
  static void grad_norm_enqueue(const T* g, size_t n) { cuda::sum_squares_enqueue(cuda::kSlotGradNorm, g, n); }
  static double grad_norm_wait() { return std::sqrt(cuda::read_deferred(cuda::kSlotGradNorm).a); }

  // train/adamw.h uses this instead of one adamw_update per tensor: one kernel over the flat buffer. `key` names
  // the parameter list: its segments are cached on the device and re-uploaded only when they change.
  static void adamw_step_flat(const AdamWSegment* segs, int nsegs, const void* key, T* p, T* m, T* v, const T* g,
                              float lr, float beta1, float beta2, float eps, float wd, long t) {
    cuda::OpScope scope("adamw_flat");
    cuda::adamw_flat(p, m, v, g, segs, nsegs, key, lr, beta1, beta2, eps, wd, t);
  }
};

}  // namespace mae
