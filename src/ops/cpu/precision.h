// The GEMM precision of the CPU backend for a run (--precision, handed down as a DeviceSpec; ops/dispatch.h opens
// a PrecisionScope around the run, like the CUDA backend's). Precision::bf16 has the meaning it has on CUDA: the
// linear layers' GEMM operands are rounded to bf16, products accumulate in fp32 into fp32 outputs; master weights,
// gradients, AdamW, LayerNorm statistics, softmax, attention and the loss stay fp32. Float ops only (the double
// instantiations used by the tests always compute in double).
#pragma once
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

}  // namespace mae::cpu
