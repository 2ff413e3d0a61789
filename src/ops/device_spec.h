// Where a run computes, parsed once from --device / --precision and passed down as a value: the CLI makes it
// (parse_device_spec), ops/dispatch.h turns it into a backend type, nothing else reads the flags.
#pragma once
#include <cstdint>
#include <string>

namespace mae {

enum class Device { cpu, cuda };
// GEMM precision: fp32, or bf16 operands with fp32 accumulation (fp32 master weights, statistics, softmax, loss).
enum class Precision { fp32, bf16 };

// A backend's GEMM precision for a scope (a run; ops/dispatch.h opens one around it): set at the start, the previous
// value restored at the end, so a DeviceSpec handed down decides it rather than a process-wide flag.
template <void (*Set)(Precision), Precision (*Get)()>
class PrecisionScopeOf {
 public:
  explicit PrecisionScopeOf(Precision p) : prev_(Get()) { Set(p); }
  ~PrecisionScopeOf() { Set(prev_); }
  PrecisionScopeOf(const PrecisionScopeOf&) = delete;
  PrecisionScopeOf& operator=(const PrecisionScopeOf&) = delete;

 private:
  Precision prev_;
};

// An id for one set of weight values (an inference model's set_params/init), unique in the process. Inference models
// run their forwards inside their backend's FrozenWeights scope with it: a backend that keeps derived copies of the
// weights (the CPU's bf16 copies) may reuse them from one forward to the next while the id stays the same. Training
// opens no such scope (an optimizer changes the weights in place between forwards).
uint64_t new_weights_version();

// The FrozenWeights of a backend that keeps no copies of the weights between forwards.
struct NoFrozenWeights {
  explicit NoFrozenWeights(uint64_t) {}
};

struct DeviceSpec {
  Device device = Device::cpu;
  Precision precision = Precision::fp32;
  bool cuda() const { return device == Device::cuda; }
  std::string name() const {
    return std::string(cuda() ? "cuda" : "cpu") + (precision == Precision::bf16 ? " (bf16)" : "");
  }
};

// "cpu" | "cuda" and "fp32" | "bf16". One error for every command: an unknown device or precision, bf16 on a CPU
// without bf16 instructions or in a build without oneDNN, cuda in a build without the CUDA backend or on a
// machine without a device — each a mae::Error naming the flag and the reason.
DeviceSpec parse_device_spec(const std::string& device, const std::string& precision);

}  // namespace mae
