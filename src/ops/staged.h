// Host arrays in and out of a backend's memory, for code written once for every backend (fine-tuning, inference):
// on the CPU both are the pointer itself (no copy); on a device, an upload into a grow-only buffer and a download
// into a host mirror.
#pragma once
#include <cstddef>
#include <type_traits>
#include <vector>

#include "ops/backend.h"

namespace mae {

template <class Bk> constexpr bool kHostBk = std::is_base_of_v<HostMemory, Bk>;

// A host array handed to the model: the pointer itself on the CPU, an upload into a grow-only buffer of the
// backend's memory on a device (images, targets). The buffer stays valid until the next put.
template <class Bk> class Staged {
 public:
  Staged() = default;
  Staged(const Staged&) = delete;
  Staged& operator=(const Staged&) = delete;
  ~Staged() {
    if constexpr (!kHostBk<Bk>) Bk::release(d_);
  }
  const float* put(const float* host, size_t n) {
    if constexpr (kHostBk<Bk>) {
      return host;
    } else {
      if (n > cap_) {
        Bk::release(d_);
        d_ = Bk::template alloc<float>(n);
        cap_ = n;
      }
      Bk::upload(d_, host, n);
      return d_;
    }
  }

 private:
  float* d_ = nullptr;
  size_t cap_ = 0;
};

// The backend's array as a host pointer: itself on the CPU, a download into `mirror` on a device.
template <class Bk> const float* on_host(const float* p, size_t n, std::vector<float>& mirror) {
  if constexpr (kHostBk<Bk>) {
    return p;
  } else {
    mirror.resize(n);
    Bk::download(mirror.data(), p, n);
    return mirror.data();
  }
}

}  // namespace mae
