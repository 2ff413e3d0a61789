#include "ops/cpu/precision.h"

#include <atomic>

#include "core/error.h"
#include "ops/cpu/host_info.h"
#ifdef MAE_DNNL
#include "ops/cpu/dnnl_matmul.h"
#endif

namespace mae::cpu {

namespace {
// Set for the scope of a run by the thread that runs it; read by the linear ops (never by the loader's threads).
Precision g_precision = Precision::fp32;

std::string probe() {  // "" when bf16 GEMMs can run natively, else the reason
  const HostInfo& h = host_info();
  if (!h.avx512_bf16 && !h.amx_bf16)
    return "this CPU (" + h.cpu_model + ") has neither avx512_bf16 nor AMX-BF16 (has: " + h.vector_ext + ")";
#ifdef MAE_DNNL
  std::string why;
  if (!dnnl_mm::native_bf16(&why)) return why;
  return "";
#else
  return "this mae was built without oneDNN (install libdnnl-dev and reconfigure)";
#endif
}
}  // namespace

bool bf16_available(std::string* why) {
  static const std::string reason = probe();  // cpuid and one oneDNN probe, once per process
  if (why) *why = reason;
  return reason.empty();
}

void require_bf16() {
  std::string why;
  if (!bf16_available(&why)) fail("--precision bf16 on the CPU needs native bf16 GEMMs: ", why);
}

void set_precision(Precision p) {
  if (p == Precision::bf16) require_bf16();
  g_precision = p;
}

Precision precision() { return g_precision; }

namespace {
thread_local uint64_t t_frozen_version = 0;
}
FrozenWeightsScope::FrozenWeightsScope(uint64_t version) : prev_(t_frozen_version) { t_frozen_version = version; }
FrozenWeightsScope::~FrozenWeightsScope() { t_frozen_version = prev_; }
uint64_t frozen_weights_version() { return t_frozen_version; }

namespace {
#ifdef MAE_DNNL
std::atomic<bool> g_inference_onednn{true};
#else
std::atomic<bool> g_inference_onednn{false};
#endif
}  // namespace
void set_inference_onednn(bool on) {
#ifdef MAE_DNNL
  g_inference_onednn = on;
#else
  if (on)
    fail("oneDNN for the inference forward: this mae was built without oneDNN (install libdnnl-dev and reconfigure)");
#endif
}
bool inference_onednn_enabled() { return g_inference_onednn.load(std::memory_order_relaxed); }
bool inference_onednn_built() {
#ifdef MAE_DNNL
  return true;
#else
  return false;
#endif
}
bool inference_onednn() {
  return inference_onednn_enabled() && t_frozen_version != 0 && g_precision == Precision::fp32;
}

}  // namespace mae::cpu
