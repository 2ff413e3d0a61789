// VisionTransformer for classification (official models_vit.py over timm's VisionTransformer) with explicit forward
// and backward, on any backend (ops/backend.h):
//
//   x = patch_embed(imgs); x = cat(cls_token, x) + pos_embed          (pos_embed LEARNED here, unlike in the MAE)
//   for blk in blocks: x = blk(x)                                      (with drop path while training)
//   global_pool: outcome = fc_norm(x[:, 1:, :].mean(dim=1))            (the official default)
//   else:        outcome = norm(x)[:, 0]                               (--cls_token)
//   logits = head(outcome)
//
// The parameter list uses the official names (cls_token, pos_embed, patch_embed.proj.*, blocks.N.*, fc_norm.* or
// norm.*, head.*), layer ids of util/lr_decay.py and weight-decay groups of param_groups_lrd.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "model/vit_blocks.h"

namespace mae {

struct ClassifierConfig {
  int nb_classes = 1000;
  bool global_pool = true;  // mean of patch tokens + fc_norm; false: cls token + norm
  double drop_path = 0.1;   // stochastic depth rate of the last block (linspace(0, rate, depth))
};

// Trainable parameters in timm's registration order: cls_token, pos_embed, patch_embed.proj.{weight,bias},
// blocks.*, norm.* (cls) , head.{weight,bias}, fc_norm.* (global pool; models_vit adds it after the head).
// Layer ids (get_layer_id_for_vit): cls_token, pos_embed, patch_embed → 0; blocks.i → i+1; the rest → depth+1.
// Weight decay: not for 1-D tensors (biases, norms) nor cls_token / pos_embed (no_weight_decay_list).
// Only the encoder fields of the ModelConfig matter (the decoder ones are carried along, unused).
ParamList make_vit_params(const ModelConfig& c, const ClassifierConfig& cc);

// Layer-wise lr decay (param_groups_lrd): scale[layer_id] = layer_decay^(depth + 1 − layer_id), layer_id 0..depth+1.
std::vector<double> layer_lr_scales(int depth, double layer_decay);

template <class Bk> class VitClassifier {
 public:
  using T = typename Bk::T;

  // `batch`: the largest batch forward() will see (evaluation may run smaller final batches).
  // ModelMode::inference (finetune --eval): forward and loss only — no gradients, no backward buffers, one
  // activation set shared by the blocks.
  VitClassifier(const ModelConfig& cfg, const ClassifierConfig& cc, int batch, ModelMode mode = ModelMode::train);
  ~VitClassifier();
  VitClassifier(const VitClassifier&) = delete;
  VitClassifier& operator=(const VitClassifier&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ClassifierConfig& classifier() const { return cc_; }
  const ParamList& params() const { return plist_; }
  int batch() const { return B_; }
  ModelMode mode() const { return mode_; }
  size_t activation_elements() const { return act_total_; }
  int num_classes() const { return cc_.nb_classes; }
  T* params_data() { return params_; }
  T* grads_data() { return grads_; }
  const T* params_data() const { return params_; }
  const T* grads_data() const { return grads_; }
  T* param(const std::string& name) { return params_ + plist_.find(name).offset; }
  T* grad(const std::string& name) { return grads_ + plist_.find(name).offset; }
  BlockStack<Bk>& blocks() { return blocks_; }

  // timm VisionTransformer init from a key: trunc_normal(.02) for cls_token and every Linear weight (the head too),
  // zero Linear biases, LayerNorm 1/0, Conv2d's default U(±1/√(C·p·p)) for the patch embedding; pos_embed starts
  // as the fixed 2-D sin-cos table of the MAE (zero cls row).
  void init(uint64_t key);
  // main_finetune.py after loading: trunc_normal_(model.head.weight, std=2e-5) (the bias is left as it is).
  void init_head(uint64_t key, double std = 2e-5);
  void zero_grad();

  // Drop path is applied only in training mode (model.train()); evaluation is deterministic.
  void set_training(bool on) { blocks_.set_training(on); }

  // imgs (B, C, H, W) normalised, B ≤ batch(). Returns logits (B, nb_classes); keeps what backward needs.
  const T* forward(const T* imgs, int B);
  // Mean soft-target cross-entropy of the last forward's logits: targets (B, nb_classes), rows summing to 1
  // (one-hot, label-smoothed or mixed). Keeps the softmax for backward.
  T loss(const T* targets, int B);
  // grads += dloss · ∂loss/∂params for the last forward + loss (dloss = 1/accum_iter as `loss /= accum_iter`);
  // the targets given to loss() must still be valid.
  void backward(T dloss, int B);
  // grads += ∂(Σ dlogits ⊙ logits)/∂params: the backward from given logit gradients (B, nb_classes).
  void backward_logits(const T* dlogits, int B);

  const T* logits() const { return logits_; }      // (B, nb_classes)
  const T* probs() const { return probs_; }        // (B, nb_classes), after loss()
  const T* features() const { return feat_; }      // (B, D): the normalised pooled feature fed to the head
  double forward_flops(int B) const;

 private:
  void backward_from_dlogits(int B);  // uses d_logits_

  ModelConfig cfg_;
  ClassifierConfig cc_;
  ModelMode mode_;
  ParamList plist_;
  int B_, L_, D_, NC_;
  T* params_ = nullptr;
  T* grads_ = nullptr;
  T* arena_ = nullptr;
  size_t act_total_ = 0;

  T *patch_w_, *patch_b_, *cls_, *pos_, *norm_w_, *norm_b_, *head_w_, *head_b_;
  T *g_patch_w_, *g_patch_b_, *g_cls_, *g_pos_, *g_norm_w_, *g_norm_b_, *g_head_w_, *g_head_b_;

  BlockStack<Bk> blocks_;
  BlockScratch<T> scratch_;

  // activations
  T *patches_, *tok_, *x0_, *pooled_, *feat_, *feat_mean_, *feat_rstd_, *logits_, *probs_;
  const T* last_ = nullptr;
  const T* targets_ = nullptr;  // of the last loss()
  // backward (train mode only)
  T *d_logits_ = nullptr, *d_feat_ = nullptr, *d_pooled_ = nullptr, *d_res_ = nullptr, *d_tok_ = nullptr;
};

}  // namespace mae
