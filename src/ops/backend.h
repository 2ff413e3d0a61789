// A backend bundles one op namespace with an element type, so the model is written once (model/mae.h) and runs on
// the reference loops (the spec), the CPU kernels, and later CUDA, in float or double.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "core/host_alloc.h"
#include "ops/cpu/precision.h"
#include "ops/cpu/row_tiles.h"
#include "ops/device_spec.h"
#include "ops/op_profile.h"
#include "ops/ops.h"

namespace mae {

// The op list once (an X-macro: X(ns, op) for every op of op_decls.inc), so each backend binds all of them the
// same way: the reference loops as plain function pointers, the CPU and CUDA backends through wrappers that time
// each op when profiling is on (mae bench --profile). The model and the op tests (tests/op_harness.h) call ops
// only through these bindings.
#define MAE_OP_LIST(X, ns) \
  X(ns, linear_forward) \
  X(ns, linear_backward) \
  X(ns, layernorm_forward) \
  X(ns, layernorm_backward) \
  X(ns, gelu_forward) \
  X(ns, gelu_backward) \
  X(ns, gelu_backward_recompute) \
  X(ns, add_forward) \
  X(ns, add_backward) \
  X(ns, attention_forward) \
  X(ns, attention_backward) \
  X(ns, im2patch_cij) \
  X(ns, im2patch_cij_backward) \
  X(ns, patchify_ijc) \
  X(ns, unpatchify_ijc) \
  X(ns, encoder_embed_forward) \
  X(ns, encoder_embed_backward) \
  X(ns, decoder_embed_forward) \
  X(ns, decoder_embed_backward) \
  X(ns, normalize_target) \
  X(ns, masked_mse_forward) \
  X(ns, masked_mse_backward) \
  X(ns, adamw_update) \
  X(ns, softmax_xent_forward) \
  X(ns, softmax_xent_backward) \
  X(ns, batchnorm1d_train_forward) \
  X(ns, batchnorm1d_eval_forward) \
  X(ns, batchnorm1d_backward) \
  X(ns, residual_scale_forward) \
  X(ns, residual_scale_backward) \
  X(ns, vit_embed_forward) \
  X(ns, vit_embed_backward) \
  X(ns, token_pool_forward) \
  X(ns, token_pool_backward) \
  X(ns, residual_layernorm_forward) \
  X(ns, linear_gelu_forward)
#define MAE_OP_POINTER(ns, op) static constexpr auto op = &ns::op<T>;
#define MAE_BACKEND_OPS(ns) MAE_OP_LIST(MAE_OP_POINTER, ns)
#define MAE_OP_HOST_TIMED(ns, op)                     \
  template <class... A> static auto op(A&&... args) { \
    prof::HostScope scope(#op);                       \
    return ns::op<T>(std::forward<A>(args)...);       \
  }

// Host memory: 64-byte aligned, zero-filled (core/host_alloc.h: big blocks mapped with huge pages asked for). Their
// pages are zero already and cost nothing until first touched, so buffers a run never uses (an encoder-only run's
// decoder activations) take no memory and no time, and those it fills (weights copied in) are touched once.
struct HostMemory {
  template <class T> static T* alloc(size_t n) { return host_alloc_array<T>(n); }
  static void release(void* p) { host_free(p); }
  template <class T> static void zero(T* p, size_t n) { host_zero(p, n * sizeof(T)); }
  template <class T> static void upload(T* dst, const T* src, size_t n) { std::memcpy(dst, src, n * sizeof(T)); }
  template <class T> static void download(T* dst, const T* src, size_t n) { std::memcpy(dst, src, n * sizeof(T)); }
  // The GEMM precision for a scope: the reference loops compute in T whatever it says; CpuBackend replaces this
  // with cpu::PrecisionScope (bf16 linear products where the CPU has bf16 instructions).
  struct PrecisionScope {
    explicit PrecisionScope(Precision) {}
  };
  // Nothing to reuse between inference forwards here; CpuBackend keeps its bf16 weight copies in a
  // cpu::FrozenWeightsScope.
  using FrozenWeights = NoFrozenWeights;
  // Benchmarks and profiles (mae bench): host work is done when the call returns; wall time per op.
  static void synchronize() {}
  static size_t peak_allocated_bytes() { return 0; }
  static void set_profiling(bool on) { prof::set_on(on); }
  static std::vector<prof::OpTime> profile_report() { return prof::report(); }
};

// The loss of MaeModel::forward_nowait, as the device backends have it: enqueued, then read. A host backend computes
// it at once and keeps it in one slot per thread until the read (CUDA has one per process), so the model has no
// host/device branch.
#define MAE_HOST_DEFERRED_LOSS                                                                  \
  static T& loss_slot() {                                                                       \
    static thread_local T slot = 0;                                                             \
    return slot;                                                                                \
  }                                                                                             \
  static void masked_mse_enqueue(const T* pred, const T* target, const T* mask, int B, int L, int P) { \
    loss_slot() = masked_mse_forward(pred, target, mask, B, L, P);                              \
  }                                                                                             \
  static T masked_mse_read() { return loss_slot(); }

template <class T_> struct CpuBackend : HostMemory {
  using T = T_;
  static constexpr const char* name = "cpu";
  using PrecisionScope = cpu::PrecisionScope;  // ops/cpu/precision.h
  using FrozenWeights = cpu::FrozenWeightsScope;
  static uint64_t frozen_weights_version() { return cpu::frozen_weights_version(); }  // this thread's scope, or 0
  // Block stacks run in row tiles on this many threads (1: not at all; ops/cpu/row_tiles.h).
  static int row_tile_threads() { return cpu::row_tile_threads(); }
  MAE_OP_LIST(MAE_OP_HOST_TIMED, cpu)
  MAE_HOST_DEFERRED_LOSS
};

template <class T_> struct RefBackend : HostMemory {
  using T = T_;
  static constexpr const char* name = "ref";
  MAE_BACKEND_OPS(ref)
  MAE_HOST_DEFERRED_LOSS
};
#undef MAE_HOST_DEFERRED_LOSS

}  // namespace mae
