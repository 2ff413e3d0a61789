// Reference residual add: out = a + b; backward: da += dout, db += dout.
#include "ops/ops.h"

namespace mae::ref {

template <class T> void add_forward(T* out, const T* a, const T* b, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T> void add_backward(T* da, T* db, const T* dout, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const T d = dout[i];  // read once: da may alias dout
    if (da) da[i] += d;
    if (db) db[i] += d;
  }
}

template void add_forward<float>(float*, const float*, const float*, size_t);
template void add_forward<double>(double*, const double*, const double*, size_t);
template void add_backward<float>(float*, float*, const float*, size_t);
template void add_backward<double>(double*, double*, const double*, size_t);

}  // namespace mae::ref
