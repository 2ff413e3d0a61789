// CudaBackend: the op set of ops_cuda.h with device memory, so MaeModel<CudaBackend<float>> runs on the GPU.
// Plain C++ (no CUDA headers). Only float is instantiated: tests compare the CUDA ops to the CPU float ops.
#pragma once
#include <cstddef>
#include <vector>

#include "model/params.h"
#include "ops/backend.h"
#include "ops/cuda/ops_cuda.h"

namespace mae {

// Device memory with the HostMemory interface: alloc zero-filled, release, zero, upload (host → device),
// download (device → host). zero is enqueued on the compute stream (ordered with the ops).
struct CudaMemory {
  template <class T> static T* alloc(size_t n) { return static_cast<T*>(cuda::alloc_bytes(n * sizeof(T))); }
  static void release(void* p) { cuda::free_bytes(p); }
  template <class T> static void zero(T* p, size_t n) { cuda::zero_bytes(p, n * sizeof(T)); }
  template <class T> static void upload(T* dst, const T* src, size_t n) { cuda::upload_bytes(dst, src, n * sizeof(T)); }
  template <class T> static void download(T* dst, const T* src, size_t n) {
    cuda::download_bytes(dst, src, n * sizeof(T));
  }
};

template <class T_> struct CudaBackend : CudaMemory {
  using T = T_;
  static constexpr const char* name = "cuda";
  MAE_BACKEND_OPS(cuda)

  // MaeModel::forward_nowait / loss_wait: the masked MSE reduced on the stream, read back behind an event.
  static void masked_mse_enqueue(const T* pred, const T* target, const T* mask, int B, int L, int P) {
    cuda::masked_mse_enqueue(cuda::kSlotLoss, pred, target, mask, B, L, P);
  }
  static T masked_mse_read() {
    const cuda::DeferredPair s = cuda::read_deferred(cuda::kSlotLoss);
    return T(s.a / s.b);
  }

  // train/adamw.h uses this instead of one adamw_update per tensor: one kernel over the flat buffer.
  static void adamw_step_flat(const ParamList& list, T* p, T* m, T* v, const T* g, float lr, float beta1,
                              float beta2, float eps, float wd, long t) {
    thread_local const ParamList* cached = nullptr;
    thread_local std::vector<cuda::AdamWSegment> segs;
    if (cached != &list || segs.size() != list.specs.size()) {
      segs.clear();
      for (const auto& s : list.specs) segs.push_back({s.offset, s.numel, s.decay});
      cached = &list;
    }
    cuda::adamw_flat(p, m, v, g, segs.data(), int(segs.size()), &list, lr, beta1, beta2, eps, wd, t);
  }
};

}  // namespace mae
