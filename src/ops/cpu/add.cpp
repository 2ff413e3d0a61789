// CPU residual add, OpenMP over elements. out may alias a or b; da may alias dout (each element is read once).
#include "ops/ops.h"

namespace mae::cpu {

namespace {
constexpr size_t kParallelMin = 65536;  // pure bandwidth: only large tensors pay for the threads
}

template <class T> void add_forward(T* out, const T* a, const T* b, size_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T> void add_backward(T* da, T* db, const T* dout, size_t n) {
  if (da && db) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (size_t i = 0; i < n; ++i) {
      const T d = dout[i];
      da[i] += d;
      db[i] += d;
    }
  } else if (da || db) {
    T* d = da ? da : db;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (size_t i = 0; i < n; ++i) d[i] += dout[i];
  }
}

template void add_forward<float>(float*, const float*, const float*, size_t);
template void add_forward<double>(double*, const double*, const double*, size_t);
template void add_backward<float>(float*, float*, const float*, size_t);
template void add_backward<double>(double*, double*, const double*, size_t);

}  // namespace mae::cpu
