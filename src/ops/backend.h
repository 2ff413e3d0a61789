// A backend bundles one op namespace with an element type, so the model is written once (model/mae.h) and runs on
// the reference loops (the spec), the CPU kernels, and later CUDA, in float or double.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>

#include "ops/ops.h"

namespace mae {

#define MAE_BACKEND_OPS(ns)                                                   \
  static constexpr auto linear_forward = &ns::linear_forward<T>;              \
  static constexpr auto linear_backward = &ns::linear_backward<T>;            \
  static constexpr auto layernorm_forward = &ns::layernorm_forward<T>;        \
  static constexpr auto layernorm_backward = &ns::layernorm_backward<T>;      \
  static constexpr auto gelu_forward = &ns::gelu_forward<T>;                  \
  static constexpr auto gelu_backward = &ns::gelu_backward<T>;                \
  static constexpr auto add_forward = &ns::add_forward<T>;                    \
  static constexpr auto add_backward = &ns::add_backward<T>;                  \
  static constexpr auto attention_forward = &ns::attention_forward<T>;        \
  static constexpr auto attention_backward = &ns::attention_backward<T>;      \
  static constexpr auto im2patch_cij = &ns::im2patch_cij<T>;                  \
  static constexpr auto patchify_ijc = &ns::patchify_ijc<T>;                  \
  static constexpr auto unpatchify_ijc = &ns::unpatchify_ijc<T>;              \
  static constexpr auto encoder_embed_forward = &ns::encoder_embed_forward<T>; \
  static constexpr auto encoder_embed_backward = &ns::encoder_embed_backward<T>; \
  static constexpr auto decoder_embed_forward = &ns::decoder_embed_forward<T>; \
  static constexpr auto decoder_embed_backward = &ns::decoder_embed_backward<T>; \
  static constexpr auto normalize_target = &ns::normalize_target<T>;          \
  static constexpr auto masked_mse_forward = &ns::masked_mse_forward<T>;      \
  static constexpr auto masked_mse_backward = &ns::masked_mse_backward<T>;    \
  static constexpr auto adamw_update = &ns::adamw_update<T>;                  \
  static constexpr auto softmax_xent_forward = &ns::softmax_xent_forward<T>;  \
  static constexpr auto softmax_xent_backward = &ns::softmax_xent_backward<T>; \
  static constexpr auto batchnorm1d_train_forward = &ns::batchnorm1d_train_forward<T>; \
  static constexpr auto batchnorm1d_eval_forward = &ns::batchnorm1d_eval_forward<T>; \
  static constexpr auto batchnorm1d_backward = &ns::batchnorm1d_backward<T>; \
  static constexpr auto residual_scale_forward = &ns::residual_scale_forward<T>; \
  static constexpr auto residual_scale_backward = &ns::residual_scale_backward<T>; \
  static constexpr auto vit_embed_forward = &ns::vit_embed_forward<T>; \
  static constexpr auto vit_embed_backward = &ns::vit_embed_backward<T>; \
  static constexpr auto token_pool_forward = &ns::token_pool_forward<T>; \
  static constexpr auto token_pool_backward = &ns::token_pool_backward<T>; \
  static constexpr auto residual_layernorm_forward = &ns::residual_layernorm_forward<T>; \
  static constexpr auto linear_gelu_forward = &ns::linear_gelu_forward<T>;

// Host memory: 64-byte aligned, zero-filled.
struct HostMemory {
  template <class T> static T* alloc(size_t n) {
    void* p = std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64 + 64);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, n * sizeof(T));
    return static_cast<T*>(p);
  }
  static void release(void* p) { std::free(p); }
  template <class T> static void zero(T* p, size_t n) { std::memset(p, 0, n * sizeof(T)); }
  template <class T> static void upload(T* dst, const T* src, size_t n) { std::memcpy(dst, src, n * sizeof(T)); }
  template <class T> static void download(T* dst, const T* src, size_t n) { std::memcpy(dst, src, n * sizeof(T)); }
};

template <class T_> struct CpuBackend : HostMemory {
  using T = T_;
  static constexpr const char* name = "cpu";
  MAE_BACKEND_OPS(cpu)
};

template <class T_> struct RefBackend : HostMemory {
  using T = T_;
  static constexpr const char* name = "ref";
  MAE_BACKEND_OPS(ref)
};

}  // namespace mae
