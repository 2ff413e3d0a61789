#include "model/masking.h"

#include <algorithm>
#include <numeric>

namespace mae {

template <class T>
void random_masking(int* ids_shuffle, int* ids_restore, T* mask, const float* noise, int B, int L, int len_keep) {
  for (int b = 0; b < B; ++b) {
    int* shuf = ids_shuffle + size_t(b) * L;
    int* rest = ids_restore + size_t(b) * L;
    const float* nz = noise + size_t(b) * L;
    // ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small is keep, large is remove
    std::iota(shuf, shuf + L, 0);
    std::stable_sort(shuf, shuf + L, [nz](int a, int c) { return nz[a] < nz[c]; });
    // ids_restore = torch.argsort(ids_shuffle, dim=1)
    for (int i = 0; i < L; ++i) rest[shuf[i]] = i;
    // mask = torch.ones([N, L]); mask[:, :len_keep] = 0; mask = torch.gather(mask, dim=1, index=ids_restore)
    for (int l = 0; l < L; ++l) mask[size_t(b) * L + l] = rest[l] < len_keep ? T(0) : T(1);
  }
}

template void random_masking<float>(int*, int*, float*, const float*, int, int, int);
template void random_masking<double>(int*, int*, double*, const float*, int, int, int);

}  // namespace mae
