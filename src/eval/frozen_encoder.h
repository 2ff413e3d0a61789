// The frozen MAE encoder as a feature extractor for k-NN and linear probing, and the features of a whole dataset.
//
// Features (B, D) are those of src/eval/features.h (shared with `mae embed`): the encoder's latent after the final
// norm, every patch kept in order; the cls token row, or with global_pool the mean of the patch-token rows.
// Note: the official models_vit global pool is fc_norm(x[:, 1:].mean(1)) on the block output BEFORE the final norm,
// with a freshly initialised (identity) fc_norm in linear probing; the mean of the normalised tokens differs from it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/host_alloc.h"
#include "data/dataset.h"
#include "data/transforms.h"
#include "eval/features.h"
#include "model/config.h"
#include "model/inference_model.h"
#include "ops/device_spec.h"

namespace mae {

struct EncoderSpec {
  std::string checkpoint;    // any file load_weights_any reads; with random_init only its config is used
  std::string model;         // preset name: overrides the file's config (and is enough for random_init alone)
  bool random_init = false;  // official initialize_weights() from `seed` instead of the file's weights
  uint64_t seed = 0;
  DeviceSpec device;         // where the encoder runs (--device/--precision, parsed by the CLI)
};

class FrozenEncoder {
 public:
  // Loads (or initialises) the encoder for batches of up to `batch` images. Throws mae::Error naming the file.
  FrozenEncoder(const EncoderSpec& spec, int batch);
  ~FrozenEncoder();
  FrozenEncoder(const FrozenEncoder&) = delete;
  FrozenEncoder& operator=(const FrozenEncoder&) = delete;

  const ModelConfig& config() const { return cfg_; }
  int dim() const { return cfg_.embed_dim; }
  int batch() const { return batch_; }
  const std::string& description() const { return desc_; }  // where the weights came from, for logs
  // FNV-1a of the encoder's parameter bytes: tells whether a file still holds the weights a probe was trained on.
  uint64_t fingerprint() const;

  // imgs (n, C, S, S) normalised → out (n, D), in runs of batch() images.
  void encode(const float* imgs, int n, bool global_pool, float* out);
  // The model (mask ratio 0, batch() images), for compute_features.
  InferenceModel& model() { return *model_; }

 private:
  ModelConfig cfg_;
  int batch_;
  std::string desc_;
  // The weights as loaded (fingerprint); on the CPU model_ reads them in place (declared first: they outlive it).
  std::vector<float, HostAllocator<float>> host_params_;
  std::unique_ptr<InferenceModel> model_;
  std::vector<float> noise_;  // (B, L): l / L, increasing along L
  std::vector<float> pad_;    // (B, C, S, S) for a final partial batch
};

// If `path` is one of our linear-probe checkpoints (head only), throws saying `flag` needs an encoder checkpoint.
void reject_probe_checkpoint(const std::string& path, const std::string& flag);

// The model must be able to read the data: same channel count, and for data of one fixed size, that size equals
// img_size (no silent resizing of 28-px images to 224). Throws naming both (`what` names the checkpoint).
void check_encoder_fits_data(const ModelConfig& cfg, const std::string& what, const Dataset& ds);

// The transform of every frozen-feature command (embed, knn, linprobe), so that the same flags give the same
// features: the data's normalisation (what `mae pretrain` on that data trained with) for a model of `size` px and
// `channels` channels, then Resize(int(S / crop_pct), bicubic) + CenterCrop(S). crop_pct 0 = auto: the official
// 224/256, or the identity (1) when the data already has the model's size (for 28-px Fashion-MNIST the official
// ratio would upscale to 32 and crop the border away).
TransformConfig probe_eval_transform(const Dataset& ds, int size, int channels, double crop_pct = 0);

struct FeatureSet {
  int64_t n = 0;
  int dim = 0;
  std::vector<float> x;         // (n, dim)
  std::vector<int32_t> labels;  // (n)
};

// Features of every image of `ds`, in dataset order, through the deterministic transform `tc`. encoder == nullptr:
// the normalised image flattened (raw-pixel baseline). Prints a progress line to stderr labelled `label`.
FeatureSet extract_features(FrozenEncoder* encoder, const Dataset& ds, const TransformConfig& tc, bool global_pool,
                            int batch, int num_workers, const std::string& label);

// Scales each row of x (n, d) to unit L2 norm (rows of zeros stay zero).
void l2_normalize_rows(float* x, int64_t n, int d);

}  // namespace mae
