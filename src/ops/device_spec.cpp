#include "ops/device_spec.h"

#include <atomic>

#include "core/error.h"
#include "ops/cpu/precision.h"
#include "ops/dispatch.h"

namespace mae {

uint64_t new_weights_version() {
  static std::atomic<uint64_t> next{1};  // 0 means "no frozen weights"
  return next.fetch_add(1, std::memory_order_relaxed);
}

DeviceSpec parse_device_spec(const std::string& device, const std::string& precision) {
  DeviceSpec s;
  if (precision == "bf16") s.precision = Precision::bf16;
  else if (precision != "fp32") fail("--precision must be fp32 or bf16, got '", precision, "'");
  if (device == "cuda") s.device = Device::cuda;
  else if (device != "cpu") fail("--device must be cpu or cuda, got '", device, "'");
  if (s.cuda()) require_cuda_device();
  else if (s.precision == Precision::bf16) cpu::require_bf16();  // names the flag and what the CPU or build lacks
  return s;
}

}  // namespace mae
