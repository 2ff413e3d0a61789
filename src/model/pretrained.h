// A model for inference (reconstruct, embed, k-NN, probes) from a checkpoint in any format load_weights_any reads,
// with the input normalisation it was trained with. The one place that turns a user's --checkpoint into weights.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/host_alloc.h"
#include "data/dataset.h"
#include "model/config.h"
#include "model/inference_model.h"

namespace mae {

struct Pretrained {
  std::string path, format, config_source;
  ModelConfig config;
  bool has_decoder = false;
  // Flat buffer laid out by make_mae_params(config); decoder zero when absent. Huge-page memory (core/host_alloc.h).
  std::vector<float, HostAllocator<float>> params;
  Normalization norm;         // per model channel, in [0, 1] pixel units
  std::string norm_source;    // where norm came from, for the log line

  // A model of these weights, for `batch` images at `mask_ratio` (0: every patch kept, for features), on the CPU or
  // (cuda) the GPU. On the CPU it reads `params` in place (no copy: every model of one checkpoint shares them), so
  // this Pretrained must outlive it (a temporary's model would not compile).
  std::unique_ptr<InferenceModel> make_model(int batch, double mask_ratio, const DeviceSpec& device = {}) const&;
  std::unique_ptr<InferenceModel> make_model(int, double, const DeviceSpec& = {}) const&& = delete;
};

// need_decoder: reconstruct needs one; an encoder-only file (mae_pretrain_vit_*.pth, or decoder* dropped) is then an
// error naming the file. model_name overrides the file's config (as --model does everywhere).
Pretrained load_pretrained(const std::string& path, const std::string& model_name, bool need_decoder);

// Normalisation the checkpoint's model was trained with, in order: metadata "normalize" ({"mean": [..], "std": [..]}),
// metadata "args" → "normalize" (what `mae pretrain` writes), else by channels: ImageNet's for 3 (the official
// recipe), Fashion-MNIST's measured train statistics (mean 0.2860, std 0.3530) for 1 (our 1-channel default data).
// A Hugging Face folder: its preprocessor_config.json's image_mean/image_std. Non-safetensors files (.pth) carry
// none and get the defaults. `source` says which rule applied.
Normalization checkpoint_normalization(const std::string& path, int channels, std::string* source = nullptr);

// Fashion-MNIST's train-split statistics as `mae pretrain` measures them (population mean/std of pixel/255).
Normalization fashion_mnist_normalization();

}  // namespace mae
