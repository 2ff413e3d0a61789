#include "ops/cpu/linear_bf16.h"

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ops/cpu/bf16.h"
#include "ops/cpu/dnnl_matmul.h"

namespace mae::cpu {

namespace {

using dnnl_mm::Operand;

// Grow-only scratch for the rounded activation operands (per thread, as the oneDNN primitive cache).
uint16_t* scratch(int slot, size_t n) {
  thread_local std::vector<uint16_t> buf[2];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}
enum { kIn = 0, kGrad = 1 };

// bf16 copies of the weights, one per weight pointer. `refresh` (the forward) rounds W again: weights change
// between steps (AdamW, LARS, a loaded checkpoint), and the forward is the first use of W in a step. The backward
// reuses the copy, after a spot check of three elements that catches a different tensor at a reused address (a
// freed buffer in a test) — not a general invalidation: between a forward and its backward weights never change.
const uint16_t* weights_bf16(const float* W, size_t n, bool refresh) {
  thread_local std::unordered_map<const float*, std::vector<uint16_t>> cache;
  if (cache.size() > 4096 && !cache.count(W)) cache.clear();  // bound it for processes that build many models
  std::vector<uint16_t>& c = cache[W];
  const bool same = c.size() == n && c[0] == to_bf16(W[0]) && c[n / 2] == to_bf16(W[n / 2]) &&
                    c[n - 1] == to_bf16(W[n - 1]);
  if (refresh || !same) {
    c.resize(n);
    to_bf16(c.data(), W, n);
  }
  return c.data();
}

}  // namespace

void linear_forward_bf16(float* out, const float* in, const float* W, const float* b, int N, int I, int O) {
  const uint16_t* wb = weights_bf16(W, size_t(O) * I, true);
  uint16_t* ib = scratch(kIn, size_t(N) * I);
  to_bf16(ib, in, size_t(N) * I);
  // oneDNN adds the bias itself: no seeding pass over out.
  dnnl_mm::matmul(Operand::bf16, false, true, N, O, I, ib, I, wb, I, b, false, out, O);
}

void linear_backward_bf16(float* din, float* dW, const float* dout, const float* in, const float* W, int N, int I,
                          int O) {
  uint16_t* gb = scratch(kGrad, size_t(N) * O);
  to_bf16(gb, dout, size_t(N) * O);
  if (din) {
    const uint16_t* wb = weights_bf16(W, size_t(O) * I, false);
    dnnl_mm::matmul(Operand::bf16, false, false, N, I, O, gb, O, wb, I, nullptr, true, din, I);
  }
  if (dW) {
    uint16_t* ib = scratch(kIn, size_t(N) * I);
    to_bf16(ib, in, size_t(N) * I);
    dnnl_mm::matmul(Operand::bf16, true, false, O, I, N, gb, O, ib, I, nullptr, true, dW, I);
  }
}

}  // namespace mae::cpu
