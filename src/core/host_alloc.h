// Host memory for big buffers (model parameters, activations, weights read from files): zero-filled, 64-byte
// aligned, and for blocks of 2 MiB and more mapped on their own, 2 MiB-aligned, with transparent huge pages asked
// for (madvise MADV_HUGEPAGE: the kernels' default "madvise" mode gives them only when asked).
//
// Why: a page's first touch is a page fault, and on virtual machines a fault is dear: on the paravirtualised VMs we
// run on, ~9 µs per 4 KiB page, so copying ViT-B/16's 447 MB of weights into fresh memory took ~2 s of system time
// per copy (`mae embed` start-up). Huge pages fault once per 2 MiB (measured: 447 MB first touched in 0.05–1.3 s
// instead of ~2.0 s). Mapped blocks are zero already and cost nothing until touched, so buffers a run never uses
// (an encoder-only run's decoder) take no memory. Small blocks come from calloc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>

namespace mae {

// Zero-filled, 64-byte aligned; never null (throws std::bad_alloc, also past kHostAllocMaxBytes). Free with host_free.
constexpr size_t kHostAllocMaxBytes = SIZE_MAX / 2;
void* host_alloc_zeroed(size_t bytes);
void host_free(void* p);
// memset(p, 0, bytes), split over the OpenMP threads for big blocks: the backward pass zeroes gradient buffers of
// tens of MB before accumulating into them (~0.8 GB per mae_vit_fmnist b256 step), and one core's stores reach
// about half of what two reach on the 2-vCPU machines we run on.
void host_zero(void* p, size_t bytes);

// n zero-filled T: the count checked against the same limit before it is multiplied.
template <class T> T* host_alloc_array(size_t n) {
  if (n > kHostAllocMaxBytes / sizeof(T)) throw std::bad_alloc();
  return static_cast<T*>(host_alloc_zeroed(n * sizeof(T)));
}

// A std allocator on host_alloc_zeroed, for the big std::vectors (weights read from files): their pages fault in
// 2 MiB at a time. (Value-initialisation still writes its zeros: skipping it would be wrong for a vector that
// shrinks and grows again.)
template <class T> struct HostAllocator {
  using value_type = T;
  HostAllocator() = default;
  template <class U> HostAllocator(const HostAllocator<U>&) {}
  T* allocate(size_t n) { return host_alloc_array<T>(n); }
  void deallocate(T* p, size_t) { host_free(p); }
  template <class U> bool operator==(const HostAllocator<U>&) const { return true; }
};

}  // namespace mae
