// The GEMM precision of the CPU backend for a run (--precision, handed down as a DeviceSpec; ops/dispatch.h opens
// a PrecisionScope around the run, like the CUDA backend's). Precision::bf16 has the meaning it has on CUDA: the
// operands of the linear layers' GEMMs and of attention's forward products (as on CUDA's cuBLAS attention path) are
// rounded to bf16, products accumulate in fp32 into fp32 outputs; master weights, gradients, AdamW, LayerNorm
// statistics, attention scores, softmax and the loss stay fp32. Float ops only (the double instantiations used by
// the tests always compute in double).
#pragma once
#include <cstdint>
#include <string>

#include "ops/device_spec.h"

namespace mae::cpu {

// Whether bf16 GEMMs can run natively here: a build with oneDNN (MAE_DNNL), a CPU with avx512_bf16 or AMX-BF16
// (cpuid, with the OS saving the registers) and oneDNN choosing a bf16 kernel for them. `why` says what is missing.
bool bf16_available(std::string* why = nullptr);

// Throws mae::Error naming --precision bf16 and the reason when bf16 is not available.
void require_bf16();

void set_precision(Precision p);  // bf16: require_bf16() first
Precision precision();

using PrecisionScope = PrecisionScopeOf<set_precision, precision>;

// Inference (InferenceModel, InferenceClassifier): within this scope the linear ops' weights are those of weight
// version `version` (ops/device_spec.h), so the bf16 weight copies one forward made serve the next forwards instead
// of being rounded again (ViT-B: 86 M weights, ~0.5 GB of memory traffic per batch). Outside any scope (training,
// the op tests) every forward rounds them again. Per thread, like the copies.
class FrozenWeightsScope {
 public:
  explicit FrozenWeightsScope(uint64_t version);
  ~FrozenWeightsScope();
  FrozenWeightsScope(const FrozenWeightsScope&) = delete;
  FrozenWeightsScope& operator=(const FrozenWeightsScope&) = delete;

 private:
  uint64_t prev_;
};
uint64_t frozen_weights_version();  // 0 outside a scope

// The fp32 forward of an inference model (inside a FrozenWeightsScope: no backward follows) through oneDNN instead
// of OpenBLAS: the linear layers as matmuls that add their bias themselves (no seeding pass over the output) and,
// for fc1, apply the exact GELU as they write (no separate GELU pass; the pre-activation, which only a backward
// reads, is not written), and attention's two products as one batched matmul each over all (batch, head) pairs.
// Measured on the encoder on all tokens (mae bench --features --inference_gemm ab; bench/results). On by default
// in builds with oneDNN; process-wide.
void set_inference_onednn(bool on);  // on: throws mae::Error in a build without oneDNN
bool inference_onednn_enabled();      // the switch
bool inference_onednn_built();        // the build has oneDNN (on is then the default)
// Whether this forward takes that path: a build with oneDNN, switched on, fp32 (bf16 has its own), inside a
// FrozenWeightsScope.
bool inference_onednn();

}  // namespace mae::cpu
