// MaskedAutoencoderViT (official models_mae.py) with explicit forward and backward, on any backend (ops/backend.h).
//
// All trainable parameters live in one flat buffer laid out by the ParamList, gradients in another of the same
// layout. Activations are allocated once for (config, batch, mask_ratio); forward/backward allocate nothing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "model/vit_blocks.h"

namespace mae {

// Model FLOPs of the encoder's forward on `kept` visible patches of a batch (patch embedding, blocks on 1 + kept
// tokens: GEMMs and attention matmuls, 2·M·N·K each); kept = num_patches() for the features of all tokens.
double encoder_flops(const ModelConfig& cfg, int batch, int kept);

// Official initialize_weights() from a seed into out (plist.total values, make_mae_params(cfg) layout): xavier_uniform
// Linear weights, zero biases, LayerNorm 1/0, tokens N(0, .02), patch-embed bias U(±1/√(C·p·p)) as Conv2d's
// default. MaeModel::init runs it; `mae init` runs it alone (no activations: a model's arena can be far larger).
template <class T> void init_mae_weights(const ModelConfig& cfg, const ParamList& plist, uint64_t seed, T* out);

template <class Bk> class MaeModel {
 public:
  using T = typename Bk::T;

  // ModelMode::inference: forward only (no gradients, no backward buffers, one activation set per block stack).
  // shared_params (inference on a host backend only): the model reads its weights from this buffer (params().total
  // values, make_mae_params layout), which must outlive it and stay unchanged, instead of a copy of its own; init()
  // is then refused. Several models of one checkpoint (mae serve's batch sizes and mask ratios) share one set.
  MaeModel(const ModelConfig& cfg, int batch, double mask_ratio, ModelMode mode = ModelMode::train,
           T* shared_params = nullptr);
  ~MaeModel();
  MaeModel(const MaeModel&) = delete;
  MaeModel& operator=(const MaeModel&) = delete;

  const ModelConfig& config() const { return cfg_; }
  ModelMode mode() const { return mode_; }
  const ParamList& params() const { return plist_; }
  int batch() const { return B_; }
  double mask_ratio() const { return mask_ratio_; }
  int len_keep() const { return K_; }
  T* params_data() { return params_; }
  T* grads_data() { return grads_; }
  const T* params_data() const { return params_; }
  const T* grads_data() const { return grads_; }
  T* param(const std::string& name) { return params_ + plist_.find(name).offset; }
  T* grad(const std::string& name) { return grads_ + plist_.find(name).offset; }

  // init_mae_weights (above) into the model's weights.
  void init(uint64_t seed);
  void zero_grad();

  // imgs (B, C, H, W) already normalised, in the backend's memory (a device pointer on CUDA); noise (B, L) is
  // always a host array and decides the mask. Returns the loss; keeps what backward needs.
  T forward(const T* imgs, const float* noise);
  // forward without waiting for the loss: on a device backend it is reduced on the stream and copied back behind an
  // event, so backward and the optimizer step can be enqueued before loss_wait() blocks for it (no host
  // synchronisation inside a training step). Host backends have it at once. forward = forward_nowait + loss_wait.
  // One loss readback slot per process (CUDA) or thread (host): call loss_wait before another model's forward_nowait.
  // forward_nowait = set_mask + forward_masked; the split lets a CUDA graph capture the part after the masking
  // (train/step_graph.h), whose inputs then sit at fixed addresses.
  void forward_nowait(const T* imgs, const float* noise);
  T loss_wait();
  void set_mask(const float* noise);    // random_masking on the host; ids and mask to the backend
  void forward_masked(const T* imgs);   // the rest of forward_nowait
  void loss_replayed() { loss_pending_ = true; }  // a replayed graph of forward_masked enqueued its loss again
  // grads += dloss · ∂loss/∂params for the last forward (accumulates, so micro-batches add up; dloss = 1/accum_iter
  // reproduces the official `loss /= accum_iter`).
  void backward(T dloss = T(1));
  // Encoder half of forward: returns the latent (B, 1+K, D) after the final norm. With mask_ratio 0 and noise
  // increasing along L, the kept tokens are all patches in their original order (features for embed/probing).
  const T* forward_encoder(const T* imgs, const float* noise);

  // Results of the last forward. pred/mask/target live in the backend's memory (download them on CUDA); the ids
  // are host arrays.
  T loss() const { return loss_; }
  const T* pred() const { return pred_; }        // (B, 1+L, P), row 0 of each sample is the cls output
  const T* mask() const { return mask_; }        // (B, L), 1 = removed
  const T* target() const { return target_; }    // (B, L, P), normalised when norm_pix_loss
  const int* ids_restore() const { return ids_restore_; }  // (B, L)
  const int* ids_shuffle() const { return ids_shuffle_; }  // (B, L)

  size_t activation_elements() const { return act_total_; }
  const BlockStack<Bk>& encoder_blocks() const { return enc_; }  // blocks.*
  const BlockStack<Bk>& decoder_blocks() const { return dec_; }  // decoder_blocks.*
  // Model FLOPs of one forward (GEMMs and attention matmuls, 2·M·N·K each); a training step is 3× this.
  double forward_flops() const;

 private:
  ModelConfig cfg_;
  ModelMode mode_;
  ParamList plist_;
  int B_, L_, K_, P_;
  double mask_ratio_;
  T loss_ = 0;
  bool loss_pending_ = false;  // forward_masked enqueued a loss that loss_wait has not read

  const T* encode(const T* imgs);  // forward_encoder after the masking

  T* params_ = nullptr;
  bool own_params_ = true;  // false: params_ is shared_params
  T* grads_ = nullptr;
  T* arena_ = nullptr;  // all activations and backward scratch
  size_t act_total_ = 0;
  int* ids_shuffle_ = nullptr;
  int* ids_restore_ = nullptr;
  // The ids as the ops see them: copies in the backend's memory (masking runs on the host: argsort of the noise),
  // with the mask staged in host_mask_ before its upload.
  int* ids_shuffle_op_ = nullptr;
  int* ids_restore_op_ = nullptr;
  std::vector<T> host_mask_;

  // fixed tables
  T* pos_ = nullptr;   // (1+L, D)
  T* dpos_ = nullptr;  // (1+L, E)

  // parameter pointers (params / grads)
  T *patch_w_, *patch_b_, *cls_, *norm_w_, *norm_b_, *dembed_w_, *dembed_b_, *mask_tok_, *dnorm_w_, *dnorm_b_,
      *pred_w_, *pred_b_;
  T *g_patch_w_, *g_patch_b_, *g_cls_, *g_norm_w_, *g_norm_b_, *g_dembed_w_, *g_dembed_b_, *g_mask_tok_,
      *g_dnorm_w_, *g_dnorm_b_, *g_pred_w_, *g_pred_b_;

  BlockStack<Bk> enc_, dec_;  // blocks.*, decoder_blocks.*
  BlockScratch<T> scratch_;   // shared by both stacks (sized for the larger)

  // activations
  T *patches_, *tok_, *x0_, *enc_out_, *enc_mean_, *enc_rstd_, *y_, *z0_, *dn_, *dn_mean_, *dn_rstd_, *pred_,
      *target_, *mask_;
  const T *enc_last_ = nullptr, *dec_last_ = nullptr;
  // backward buffers (d_res_ sized for the larger stream)
  T *d_res_, *d_pred_, *d_dn_, *d_y_, *d_enc_, *d_tok_;
};

}  // namespace mae
