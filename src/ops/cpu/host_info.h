// What a CPU timing was measured on, so figures from different hosts are never mixed up: the CPU model, the vector
// extensions that matter to GEMMs, and the GEMM kernels each library picked (OpenBLAS core, oneDNN ISA).
#pragma once
#include <string>

namespace mae::cpu {

struct HostInfo {
  std::string cpu_model;      // "AMD EPYC 9R45" (cpuid brand string)
  std::string vector_ext;     // "avx2 avx512f avx512_bf16 ..." (only the GEMM-relevant ones, as cpuid reports)
  std::string openblas_core;  // openblas_get_corename(): "Cooperlake", "Haswell" (OPENBLAS_CORETYPE) ...
  std::string dnnl;           // "oneDNN 2.6.3, ISA avx512_core_bf16" or "none (built without oneDNN)"
  bool avx512_bf16 = false;   // cpuid leaf 7.1 EAX bit 5, and the OS saves the ZMM state
  bool amx_bf16 = false;      // cpuid leaf 7.0 EDX bit 22, and the OS saves the tile state
  std::string line() const;   // one line with all of the above
};

const HostInfo& host_info();

}  // namespace mae::cpu
