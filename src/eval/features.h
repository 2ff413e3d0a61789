// Frozen-encoder features of a dataset: what `mae embed` writes and what k-NN and the linear probe consume.
//
// A feature is read from the encoder's latent after its final `norm` (forward_encoder with mask ratio 0, every
// patch kept in order): the cls token row (the official linear probe's choice), or with global_pool the mean of the
// L patch-token rows. Note the official fine-tuning global pool differs: it averages the blocks' output *before*
// `norm` and then applies a trained `fc_norm`; a pretraining checkpoint has no fc_norm, so here it is the mean of
// the normed tokens.
#pragma once
#include <functional>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "model/inference_model.h"

namespace mae {

// done, total: called after every batch (for a progress line).
using FeatureProgress = std::function<void(size_t done, size_t total)>;

// latent (B, 1+L, D) → feats (n, D) for the first n rows: row 0, or the mean of rows 1..L.
void pool_latent(const float* latent, int n, int L, int D, bool global_pool, float* feats);

// Features (N, D) of every dataset image in index order, model.batch() images per forward (the last batch padded).
// `model` must keep every patch (built with mask_ratio 0). `transform` should be the eval one (train = false);
// its size/channels must be the model's. Images are decoded by `num_workers` threads ahead (0: inline).
// Throws mae::Error naming the file of an image that fails to load.
std::vector<float> compute_features(InferenceModel& model, const Dataset& ds,
                                    const TransformConfig& transform, bool global_pool, int num_workers = 2,
                                    const FeatureProgress& progress = {});

// The same with a model built here for `batch` images from a flat parameter buffer (make_mae_params(cfg) layout).
std::vector<float> compute_features(const ModelConfig& cfg, const float* params, const Dataset& ds,
                                    const TransformConfig& transform, bool global_pool, int batch,
                                    int num_workers = 2, const FeatureProgress& progress = {});

// The eval transform for a model: shorter side resized (bicubic) to img_size / crop_pct, centre crop, channels
// converted, normalised with `norm`. crop_pct 1 keeps data already at the model's size untouched.
TransformConfig eval_transform(const ModelConfig& cfg, const Normalization& norm, double crop_pct = 1.0);

}  // namespace mae
