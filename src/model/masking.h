// Per-sample random masking (official random_masking), on the host: the noise is an input (uniform [0,1) from our
// RNG by default, or given explicitly by `mae forward`, like HF's `noise` argument).
#pragma once

namespace mae {

// noise (B, L) → ids_shuffle = argsort(noise) (ascending: small noise is kept), ids_restore = argsort(ids_shuffle),
// mask (B, L) in original patch order: 0 for the first len_keep of ids_shuffle (kept), 1 for removed.
// The sort is stable so ties (impossible with continuous noise) resolve deterministically by index.
template <class T>
void random_masking(int* ids_shuffle, int* ids_restore, T* mask, const float* noise, int B, int L, int len_keep);

}  // namespace mae
