// The one place that turns a DeviceSpec into a backend type: with_backend(spec, [&]<class Bk>() { ... }) runs the
// lambda instantiated for CpuBackend<float> or CudaBackend<float> (with the spec's precision in force for the
// call: a PrecisionScope of that backend around it). Every command that runs a model goes through it, so the
// backend choice, its errors and the CUDA build switch live here and nowhere above the op layer.
#pragma once
#include <utility>

#include "core/error.h"
#include "ops/backend.h"
#include "ops/device_spec.h"
#ifdef MAE_CUDA
#include "ops/cuda/backend_cuda.h"
#endif

namespace mae {

// Whether this build has the CUDA backend (for code that must know without instantiating it).
#ifdef MAE_CUDA
inline constexpr bool kHaveCuda = true;
#else
inline constexpr bool kHaveCuda = false;
#endif

// Throws "built without CUDA" / "no CUDA device found (<driver's reason>)"; returns when a device is usable.
inline void require_cuda_device() {
#ifdef MAE_CUDA
  if (cuda::device_count() == 0) cuda::require_device();  // throws with the driver's reason
  if (cuda::device_count() == 0) fail("--device cuda: no CUDA device found");
#else
  fail("--device cuda: this mae was built without CUDA (reconfigure with -DMAE_CUDA=ON on a machine with nvcc)");
#endif
}

template <class F> decltype(auto) with_backend(const DeviceSpec& spec, F&& f) {
  if (spec.cuda()) {
#ifdef MAE_CUDA
    const CudaBackend<float>::PrecisionScope scope(spec.precision);
    return std::forward<F>(f).template operator()<CudaBackend<float>>();
#else
    require_cuda_device();  // throws
#endif
  }
  const CpuBackend<float>::PrecisionScope scope(spec.precision);
  return std::forward<F>(f).template operator()<CpuBackend<float>>();
}

}  // namespace mae
