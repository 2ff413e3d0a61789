#include "ops/cpu/bf16.h"

#include <vector>

#include "core/host_alloc.h"

namespace mae::cpu {

void to_bf16(uint16_t* out, const float* in, size_t n) {
  // Memory-bound (6 bytes per element): one thread already streams ~10 GB/s, so only large copies are split.
  const long long N = static_cast<long long>(n);
#pragma omp parallel for schedule(static) if (n > (size_t(1) << 16))
  for (long long i = 0; i < N; ++i) out[i] = to_bf16(in[i]);
}

uint16_t* bf16_scratch(Bf16Slot slot, size_t n) {
  thread_local std::vector<uint16_t, HostAllocator<uint16_t>> buf[2];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}

}  // namespace mae::cpu
