// Training state of a model whose buffers may live on a device (CUDA): the pretraining loop keeps reading and
// writing HOST buffers for checkpoints, broadcasts and all-reduces, and this class moves them across when the
// backend is not host memory. On host backends (cpu, ref) every call is a no-op or a plain pointer: the loop is
// unchanged.
#pragma once
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "model/mae.h"
#include "ops/backend.h"
#include "train/run_state.h"

namespace mae {

// Model: any model with params(), params_data() and grads_data() (MaeModel, VitClassifier).
template <class Bk, class Model = MaeModel<Bk>> class TrainMirror {
 public:
  static constexpr bool kHost = std::is_base_of_v<HostMemory, Bk>;

  explicit TrainMirror(Model& model) : model_(model), np_(model.params().total) {
    m_.assign(np_, 0.0f), v_.assign(np_, 0.0f);
    if constexpr (!kHost) {
      hp_.assign(np_, 0.0f), hg_.assign(np_, 0.0f);
      dm_ = Bk::template alloc<float>(np_);
      dv_ = Bk::template alloc<float>(np_);
    }
  }
  ~TrainMirror() {
    if constexpr (!kHost) {
      Bk::release(dm_);
      Bk::release(dv_);
      Bk::release(dimgs_);
      Bk::uploader_destroy(uploader_);
    }
  }
  TrainMirror(const TrainMirror&) = delete;
  TrainMirror& operator=(const TrainMirror&) = delete;

  // What checkpoints and broadcasts read and write (host memory in every case).
  TrainBuffers host_buffers() {
    if constexpr (kHost) return {model_.params_data(), m_.data(), v_.data(), model_.grads_data()};
    else return {hp_.data(), m_.data(), v_.data(), hg_.data()};
  }
  // AdamW moments in the backend's memory.
  float* m() { return kHost ? m_.data() : dm_; }
  float* v() { return kHost ? v_.data() : dv_; }

  // Device → host mirrors (before a checkpoint or a broadcast from this rank).
  void to_host(bool grads) {
    if constexpr (!kHost) {
      Bk::download(hp_.data(), model_.params_data(), np_);
      Bk::download(m_.data(), dm_, np_);
      Bk::download(v_.data(), dv_, np_);
      if (grads) Bk::download(hg_.data(), model_.grads_data(), np_);
    }
  }
  // Host mirrors → device (after a resume or a broadcast).
  void to_device(bool grads) {
    if constexpr (!kHost) {
      Bk::upload(model_.params_data(), hp_.data(), np_);
      Bk::upload(dm_, m_.data(), np_);
      Bk::upload(dv_, v_.data(), np_);
      if (grads) Bk::upload(model_.grads_data(), hg_.data(), np_);
    }
  }

  // The loader's host batch as the model's input, in one fixed buffer of the backend's memory. On CUDA the copy
  // overlaps with the previous step's backward and optimizer (cuda::uploader_put: pinned memory, a copy stream).
  const float* images(const std::vector<float>& host) {
    if constexpr (kHost) {
      return host.data();
    } else {
      if (host.size() > nimgs_) {
        Bk::release(dimgs_);
        dimgs_ = Bk::template alloc<float>(host.size());
        nimgs_ = host.size();
      }
      if (!uploader_) uploader_ = Bk::uploader_create();
      Bk::uploader_put(uploader_, dimgs_, host.data(), host.size());
      return dimgs_;
    }
  }

  // Runs f(float* host_grads) on the gradients (an all-reduce): on a device backend they go down and back up.
  template <class F> void on_host_grads(F&& f) {
    if constexpr (kHost) {
      f(model_.grads_data());
    } else {
      Bk::download(hg_.data(), model_.grads_data(), np_);
      f(hg_.data());
      Bk::upload(model_.grads_data(), hg_.data(), np_);
    }
  }

  // ‖grads‖₂ computed where the gradients are (host_norm: the loop's own host function), in two halves so a device
  // backend does not wait: grad_norm_start enqueues the reduction of the gradients (call it before zero_grad),
  // grad_norm_wait returns the value.
  template <class H> void grad_norm_start(H&& host_norm) {
    if constexpr (kHost) {
      gnorm_ = host_norm(model_.grads_data(), np_);
    } else {
      Bk::grad_norm_enqueue(model_.grads_data(), np_);
    }
  }
  double grad_norm_wait() {
    if constexpr (!kHost) return Bk::grad_norm_wait();
    else return gnorm_;
  }

 private:
  Model& model_;
  size_t np_;
  std::vector<float> m_, v_, hp_, hg_;
  float *dm_ = nullptr, *dv_ = nullptr, *dimgs_ = nullptr;
  size_t nimgs_ = 0;
  void* uploader_ = nullptr;  // device backends: Bk::uploader_create()
  double gnorm_ = 0;
};

}  // namespace mae
