#include "eval/frozen_encoder.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "data/loader.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "core/progress.h"

namespace mae {

void reject_probe_checkpoint(const std::string& path, const std::string& flag) {
  std::string encoder;
  bool probe = false;
  try {
    io::SafeTensorsReader f(path);
    auto it = f.metadata().find("linprobe");
    if (it != f.metadata().end()) {
      probe = true;
      auto e = f.metadata().find("encoder_checkpoint");
      if (e != f.metadata().end()) encoder = e->second;
    }
  } catch (const Error&) {
    // not safetensors (a .pth) or unreadable: load_weights_any gives the precise message
  }
  if (probe)
    fail(flag, " ", path, " is a linear-probe checkpoint (BatchNorm + linear head only), not an encoder: give the "
         "encoder checkpoint", encoder.empty() ? std::string() : " (this probe was trained on " + encoder + ")");
}

FrozenEncoder::FrozenEncoder(const EncoderSpec& spec, int batch) : batch_(batch) {
  limits::check_batch_size(batch);
  LoadedWeights w;
  bool have_file = !spec.checkpoint.empty();
  if (have_file) {
    reject_probe_checkpoint(spec.checkpoint, "--checkpoint");
    w = load_weights_any(spec.checkpoint, spec.model, "", /*defer_reads=*/true);  // read once, into host_params_
    cfg_ = w.config;
  } else if (!spec.model.empty()) {
    cfg_ = preset(spec.model);
  } else {
    fail("no encoder: give --checkpoint (or --model NAME with --random_init)");
  }
  cfg_.validate(have_file ? spec.checkpoint : "--model " + spec.model);
  const ParamList plist = make_mae_params(cfg_);
  host_params_.assign(plist.total, 0.0f);
  if (spec.random_init) {
    // The same initialisation `mae pretrain --seed` starts from (step 0 of pretraining).
    model_ = make_inference_model(cfg_, batch, 0.0, spec.device);
    model_->init(Rng::derive(spec.seed, stream::init));
    model_->get_params(host_params_.data());
    desc_ = "random init (official initialize_weights, seed " + std::to_string(spec.seed) + ") with the config of " +
            (have_file ? spec.checkpoint : "--model " + spec.model);
  } else {
    if (!have_file) fail("--model alone gives no weights: add --checkpoint, or --random_init for a random encoder");
    fill_params(w, plist, host_params_.data(), /*need_decoder=*/false);
    model_ = make_inference_model(cfg_, batch, 0.0, spec.device, host_params_.data());
    desc_ = spec.checkpoint + " (" + w.format + ", config from " + w.config_source + ")";
  }
  const int L = cfg_.num_patches();
  noise_.resize(size_t(batch) * L);
  for (int b = 0; b < batch; ++b)
    for (int l = 0; l < L; ++l) noise_[size_t(b) * L + l] = float(l) / float(L);  // argsort keeps patch order
}

FrozenEncoder::~FrozenEncoder() = default;

uint64_t FrozenEncoder::fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const auto& s : model_->params().specs) {
    if (s.name.rfind("decoder", 0) == 0 || s.name == "mask_token") continue;  // the encoder only
    const auto* p = reinterpret_cast<const unsigned char*>(host_params_.data() + s.offset);
    for (size_t i = 0; i < s.numel * sizeof(float); ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  }
  return h;
}

void FrozenEncoder::encode(const float* imgs, int n, bool global_pool, float* out) {
  MAE_CHECK(n >= 0, "n = ", n);
  const int C = cfg_.in_chans, S = cfg_.img_size, L = cfg_.num_patches(), D = cfg_.embed_dim;
  const size_t per = size_t(C) * S * S;
  for (; n > batch_; n -= batch_, imgs += size_t(batch_) * per, out += size_t(batch_) * D)
    encode(imgs, batch_, global_pool, out);
  if (n == 0) return;
  const float* x = imgs;
  if (n < batch_) {  // the model is sized for a full batch: pad with zeros (their features are discarded)
    pad_.assign(size_t(batch_) * per, 0.0f);
    std::memcpy(pad_.data(), imgs, size_t(n) * per * sizeof(float));
    x = pad_.data();
  }
  const float* lat = model_->forward_encoder(x, noise_.data());  // (B, 1+L, D) after the final norm
  pool_latent(lat, n, L, D, global_pool, out);
}

void check_encoder_fits_data(const ModelConfig& cfg, const std::string& what, const Dataset& ds) {
  if (cfg.in_chans != ds.channels())
    fail(what, " takes ", cfg.in_chans, "-channel images (in_chans ", cfg.in_chans, ") but the data has ",
         ds.channels(), " channel", ds.channels() == 1 ? "" : "s", ": ", ds.description());
  if (ds.height() > 0 && (ds.height() != cfg.img_size || ds.width() != cfg.img_size))
    fail(what, " takes ", cfg.img_size, "x", cfg.img_size, " images (img_size ", cfg.img_size, ") but the data is ",
         ds.width(), "x", ds.height(), ": ", ds.description(), " (pretrain with --input_size ", ds.height(),
         " for this data)");
}

TransformConfig probe_eval_transform(const Dataset& ds, int size, int channels, double crop_pct) {
  ModelConfig c;
  c.img_size = size;
  c.in_chans = channels;
  if (crop_pct <= 0) crop_pct = (ds.height() == size && ds.width() == size) ? 1.0 : 224.0 / 256.0;
  return eval_transform(c, normalization_for_channels(ds.normalization(), channels), crop_pct);
}

FeatureSet extract_features(FrozenEncoder* encoder, const Dataset& ds, const TransformConfig& tc, bool global_pool,
                            int batch, int num_workers, const std::string& label) {
  MAE_CHECK(!tc.train, "features use the deterministic eval transform");
  FeatureSet fs;
  fs.n = int64_t(ds.size());
  fs.dim = encoder ? encoder->dim() : tc.channels * tc.size * tc.size;
  fs.labels.resize(fs.n);
  for (int64_t i = 0; i < fs.n; ++i) fs.labels[i] = ds.label(size_t(i));
  Progress progress(5.0);
  const auto t0 = std::chrono::steady_clock::now();
  auto report = [&](size_t done, size_t total) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char line[256];
    std::snprintf(line, sizeof line, "%s: %zu/%zu images  %.0f img/s  ETA %s", label.c_str(), done, total,
                  double(done) / std::max(el, 1e-9),
                  format_duration(el / double(std::max<size_t>(done, 1)) * double(total - done)).c_str());
    progress.update(line, done == total);
  };
  if (encoder) {
    fs.x = compute_features(encoder->model(), ds, tc, global_pool, num_workers, report);
  } else {  // raw pixels: the transformed image itself
    fs.x.resize(size_t(fs.n) * fs.dim);
    const LoaderConfig lc = LoaderConfig::in_order(batch, tc, num_workers);
    Loader loader(ds, lc);
    loader.start_epoch(0);
    size_t done = 0;
    while (const Batch* b = loader.next()) {
      MAE_CHECK(b->size > 0 && size_t(b->indices[0]) == done, b->indices[0], done);
      std::memcpy(fs.x.data() + done * fs.dim, b->images.data(), size_t(b->size) * fs.dim * sizeof(float));
      done += b->size;
      report(done, ds.size());
    }
    MAE_CHECK(done == ds.size(), done, ds.size());
  }
  progress.done();
  return fs;
}

void l2_normalize_rows(float* x, int64_t n, int d) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float* r = x + size_t(i) * d;
    double s = 0;
    for (int j = 0; j < d; ++j) s += double(r[j]) * r[j];
    // F.normalize(x, dim=1, p=2): x / max(‖x‖, 1e-12)
    const float inv = float(1.0 / std::max(std::sqrt(s), 1e-12));
    for (int j = 0; j < d; ++j) r[j] *= inv;
  }
}

}  // namespace mae
