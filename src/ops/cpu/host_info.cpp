#include "ops/cpu/host_info.h"

#include <cpuid.h>

#include <cstring>

#ifdef MAE_DNNL
#include "ops/cpu/dnnl_matmul.h"
#endif

// Weak: bench/gemm_shapes.cpp links this file into its BLIS build too, where OpenBLAS is absent (a null address).
extern "C" char* openblas_get_corename(void) __attribute__((weak));

namespace mae::cpu {

namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};
Regs cpuid(unsigned leaf, unsigned sub) {
  Regs r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) return Regs{};
  return r;
}
bool bit(unsigned v, int i) { return (v >> i) & 1u; }

// XCR0: which register states the OS saves on a context switch (an instruction set is usable only with them).
unsigned long long xcr0() {
  if (!bit(cpuid(1, 0).c, 27)) return 0;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

std::string brand() {
  if (cpuid(0x80000000u, 0).a < 0x80000004u) return "unknown CPU";
  char s[49] = {};
  for (unsigned i = 0; i < 3; ++i) {
    const Regs r = cpuid(0x80000002u + i, 0);
    std::memcpy(s + 16 * i, &r, 16);
  }
  std::string m(s);
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return m.substr(m.find_first_not_of(' ') == std::string::npos ? 0 : m.find_first_not_of(' '));
}

HostInfo detect() {
  HostInfo h;
  h.cpu_model = brand();
  const Regs l1 = cpuid(1, 0), l7 = cpuid(7, 0), l71 = cpuid(7, 1);
  const unsigned long long x = xcr0();
  const bool os_avx = (x & 0x6) == 0x6, os_zmm = (x & 0xe6) == 0xe6, os_amx = (x & 0x60000) == 0x60000;
  struct Ext {
    const char* name;
    bool has;
  } ext[] = {
      {"avx2", os_avx && bit(l7.b, 5)},       {"fma", os_avx && bit(l1.c, 12)},
      {"avx512f", os_zmm && bit(l7.b, 16)},   {"avx512bw", os_zmm && bit(l7.b, 30)},
      {"avx512vl", os_zmm && bit(l7.b, 31)},  {"avx512_vnni", os_zmm && bit(l7.c, 11)},
      {"avx512_bf16", os_zmm && bit(l71.a, 5)}, {"amx_bf16", os_amx && bit(l7.d, 22)},
      {"amx_tile", os_amx && bit(l7.d, 24)},
  };
  for (const Ext& e : ext)
    if (e.has) {
      if (!h.vector_ext.empty()) h.vector_ext += ' ';
      h.vector_ext += e.name;
    }
  if (h.vector_ext.empty()) h.vector_ext = "none of avx2/avx512";
  h.avx512_bf16 = os_zmm && bit(l7.b, 16) && bit(l71.a, 5);
  h.amx_bf16 = os_amx && bit(l7.d, 22);
  h.openblas_core = openblas_get_corename ? openblas_get_corename() : "(OpenBLAS not linked)";
#ifdef MAE_DNNL
  h.dnnl = dnnl_mm::describe();
#else
  h.dnnl = "none (built without oneDNN)";
#endif
  return h;
}

}  // namespace

std::string HostInfo::line() const {
  return cpu_model + "; " + vector_ext + "; OpenBLAS core " + openblas_core + "; " + dnnl;
}

const HostInfo& host_info() {
  static const HostInfo h = detect();
  return h;
}

}  // namespace mae::cpu
