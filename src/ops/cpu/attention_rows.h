// The row-wise parts of CPU attention between its products: softmax over score rows in place (the fp32 path in
// attention.cpp and the bf16 forward in attention_dnnl.cpp), and the softmax backward of rows (attention.cpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "ops/cpu/fast_math.h"

namespace mae::cpu {

inline float attn_exp(float x) { return fast_exp(x); }  // vectorisable; libm's expf was 2% of a training step
inline double attn_exp(double x) { return std::exp(x); }

// In place: each of the `rows` rows of s (rows, n) becomes softmax(row).
template <class T> void softmax_rows(T* s, int rows, int n) {
  for (int i = 0; i < rows; ++i) {
    T* r = s + size_t(i) * n;
    T mx = r[0];
    for (int j = 1; j < n; ++j) mx = std::max(mx, r[j]);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; ++j) {
      r[j] = attn_exp(r[j] - mx);
      sum += r[j];
    }
    const T inv = T(1) / sum;
#pragma omp simd
    for (int j = 0; j < n; ++j) r[j] *= inv;
  }
}

// In place: ds (rows, n) holds ∂loss/∂att on entry and ∂loss/∂scores on exit, att (rows, n) the probabilities:
// dscores = att ⊙ (datt − Σ datt ⊙ att).
template <class T> void softmax_backward_rows(T* ds, const T* att, int rows, int n) {
  for (int i = 0; i < rows; ++i) {
    const T* ar = att + size_t(i) * n;
    T* dr = ds + size_t(i) * n;
    T dot = 0;
    for (int j = 0; j < n; ++j) dot += dr[j] * ar[j];
    for (int j = 0; j < n; ++j) dr[j] = ar[j] * (dr[j] - dot);
  }
}

}  // namespace mae::cpu
