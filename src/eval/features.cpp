#include "eval/features.h"

#include <algorithm>

#include "core/error.h"
#include "data/loader.h"

namespace mae {

void pool_latent(const float* latent, int n, int L, int D, bool global_pool, float* feats) {
  for (int b = 0; b < n; b++) {
    const float* x = latent + size_t(b) * (1 + L) * D;  // (1+L, D)
    float* f = feats + size_t(b) * D;
    if (!global_pool) {
      std::copy_n(x, D, f);  // x[:, 0]: cls token
      continue;
    }
    // x[:, 1:, :].mean(dim=1), summed in double so the result does not depend on L's size
    for (int d = 0; d < D; d++) {
      double s = 0;
      for (int l = 1; l <= L; l++) s += x[size_t(l) * D + d];
      f[d] = float(s / L);
    }
  }
}

TransformConfig eval_transform(const ModelConfig& cfg, const Normalization& norm, double crop_pct) {
  TransformConfig t;
  t.size = cfg.img_size;
  t.channels = cfg.in_chans;
  t.train = false;
  t.crop_pct = crop_pct;
  t.norm = norm;
  return t;
}

std::vector<float> compute_features(InferenceModel& model, const Dataset& ds,
                                    const TransformConfig& transform, bool global_pool, int num_workers,
                                    const FeatureProgress& progress) {
  const ModelConfig& c = model.config();
  const int B = model.batch(), L = c.num_patches(), D = c.embed_dim;
  if (model.len_keep() != L)
    fail("compute_features: the model masks patches (mask_ratio ", model.mask_ratio(), "); build it with 0");
  if (transform.size != c.img_size || transform.channels != c.in_chans)
    fail("compute_features: transform gives (", transform.channels, ", ", transform.size, ", ", transform.size,
         ") but the model takes (", c.in_chans, ", ", c.img_size, ", ", c.img_size, ")");
  const size_t N = ds.size(), img_elems = size_t(c.in_chans) * c.img_size * c.img_size;
  std::vector<float> feats(N * D);
  if (N == 0) return feats;

  // noise increasing along L: argsort keeps patches in their original order, all of them
  std::vector<float> noise(size_t(B) * L);
  for (int b = 0; b < B; b++)
    for (int l = 0; l < L; l++) noise[size_t(b) * L + l] = float(l) / float(L);
  std::vector<float> padded(B * img_elems, 0.0f);

  const LoaderConfig lc = LoaderConfig::in_order(B, transform, num_workers);
  Loader loader(ds, lc);
  loader.start_epoch(0);
  size_t done = 0;
  while (const Batch* b = loader.next()) {
    const float* imgs = b->images.data();
    if (b->size < B) {  // final partial batch: the model computes B rows, the padding is dropped
      std::copy_n(b->images.data(), size_t(b->size) * img_elems, padded.data());
      imgs = padded.data();
    }
    const float* latent = model.forward_encoder(imgs, noise.data());  // (B, 1+L, D)
    MAE_CHECK(b->size > 0 && size_t(b->indices[0]) == done, b->indices[0], done);
    pool_latent(latent, b->size, L, D, global_pool, feats.data() + done * D);
    done += b->size;
    if (progress) progress(done, N);
  }
  MAE_CHECK(done == N, done, N);
  return feats;
}

std::vector<float> compute_features(const ModelConfig& cfg, const float* params, const Dataset& ds,
                                    const TransformConfig& transform, bool global_pool, int batch, int num_workers,
                                    const FeatureProgress& progress) {
  auto model = make_inference_model(cfg, std::max(1, int(std::min<size_t>(batch, std::max<size_t>(ds.size(), 1)))),
                                    0.0, {}, params);
  return compute_features(*model, ds, transform, global_pool, num_workers, progress);
}

}  // namespace mae
