// mae::api::Model (include/mae/mae.h): the commands' own pieces behind one thread-safe object.
//   loading        model/pretrained.h (MAE, any format), model/inference_classifier.h (fine-tuned classifier)
//   preprocessing  data/transforms.h with eval/features.h's eval_transform, on the caller's thread
//   embed          InferenceModel::forward_encoder + pool_latent (mae embed)
//   reconstruct    eval/reconstruct.h (mae reconstruct), masks keyed as mae reconstruct --seed
//   classify       InferenceClassifier (mae finetune --eval's preprocessing and forward)
// The networks live on the batcher's compute thread (api/batcher.h), which alone touches them.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <nlohmann/json.hpp>

#include "api/batcher.h"
#include "api/convert.h"
#include "api/errors.h"
#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "data/transforms.h"
#include "eval/features.h"
#include "eval/frozen_encoder.h"
#include "eval/reconstruct.h"
#include "mae/mae.h"
#include "model/inference_classifier.h"
#include "model/pretrained.h"
#include "ops/device_spec.h"

namespace mae::api {
namespace {

using api_internal::Job;
using api_internal::to_pixels;

// Bounds of the options (a server passes them from flags).
constexpr int kMaxBatch = 1024, kMaxQueue = 1 << 20;
// Reconstruction networks kept, one per (number of kept patches, batch): a mask-ratio slider visits a few.
constexpr size_t kReconstructModels = 4;

enum Kind : uint64_t { kEmbed = 1, kReconstruct = 2, kClassify = 3 };

struct StagedJob : Job {
  const float* imgs = nullptr;  // (n, C, S, S) normalised
};
struct EmbedJob : StagedJob {
  Pool pool = Pool::cls;
  std::vector<std::vector<float>>* out = nullptr;
};
struct ReconstructJob : Job {
  const std::vector<Image>* crops = nullptr;  // (S, S, C) model-ready
  const std::vector<float>* noise = nullptr;  // (n, L)
  double mask_ratio = 0;
  std::vector<ReconstructPanels>* out = nullptr;
};
struct ClassifyJob : StagedJob {
  std::vector<float>* logits = nullptr;  // (n, NC)
};

class ModelImpl final : public Model {
 public:
  ModelImpl(const std::string& path, const ModelOptions& o) : opt_(o), spec_(parse_device_spec(o.device, o.precision)) {
    if (o.max_batch < 1 || o.max_batch > kMaxBatch)
      fail("max_batch must be in [1, ", kMaxBatch, "], got ", o.max_batch);
    if (o.max_queue < 1 || o.max_queue > kMaxQueue) fail("max_queue must be in [1, ", kMaxQueue, "], got ", o.max_queue);
    if (o.threads < 0 || o.threads > limits::kThreads)
      fail("threads must be in [0, ", limits::kThreads, "], got ", o.threads);
    if (o.threads == 0) limits::check_default_threads();
    if (!(o.timeout_s >= 0)) fail("timeout_s must be ≥ 0, got ", o.timeout_s);
    reject_probe_checkpoint(path, "model");
    const LoadedWeights probe = load_weights_any(path, o.model);
    info_.path = path;
    info_.format = probe.format;
    if (probe.tensors.count("head.weight")) {
      cls_ = std::make_unique<LoadedClassifier>(load_classifier(path, o.model));
      cfg_ = cls_->config;
      norm_ = cls_->norm;
      info_.kind = "classifier";
      info_.can_classify = true;
      info_.class_names = cls_->class_names;
    } else {
      pt_ = std::make_unique<Pretrained>(load_pretrained(path, o.model, /*need_decoder=*/false));
      cfg_ = pt_->config;
      norm_ = pt_->norm;
      info_.kind = pt_->has_decoder ? "mae" : "encoder";
      info_.can_embed = true;
      info_.can_reconstruct = pt_->has_decoder;
    }
    info_.config_json = config_to_json(cfg_).dump();
    info_.img_size = cfg_.img_size, info_.patch_size = cfg_.patch_size, info_.in_chans = cfg_.in_chans;
    info_.embed_dim = cfg_.embed_dim, info_.norm_pix_loss = cfg_.norm_pix_loss;
    info_.mean = norm_.mean, info_.std = norm_.std;
    // Noise increasing along L keeps every patch in order (features); the staging buffer pads a last chunk.
    const int L = cfg_.num_patches();
    ordered_noise_.resize(size_t(o.max_batch) * L);
    for (int b = 0; b < o.max_batch; b++)
      for (int l = 0; l < L; l++) ordered_noise_[size_t(b) * L + l] = float(l) / float(L);
    staging_.assign(size_t(o.max_batch) * image_elems(), 0.0f);
    batcher_ = std::make_unique<api_internal::Batcher>(
        o.max_batch, o.max_queue,
        [t = o.threads] {  // OpenMP's thread count is per thread: set it on the thread that computes
          if (t > 0) omp_set_num_threads(t), openblas_set_num_threads(t);
        },
        [this](const std::vector<Job*>& g) { run_group(g); });
  }

  const ModelInfo& info() const override { return info_; }

  std::string info_json() const override {
    nlohmann::json j = {{"path", info_.path},
                        {"format", info_.format},
                        {"kind", info_.kind},
                        {"config", nlohmann::json::parse(info_.config_json)},
                        {"can_embed", info_.can_embed},
                        {"can_reconstruct", info_.can_reconstruct},
                        {"can_classify", info_.can_classify},
                        {"normalize", {{"mean", info_.mean}, {"std", info_.std}}},
                        {"device", spec_.name()},
                        {"max_batch", opt_.max_batch}};
    if (info_.can_classify) j["class_names"] = info_.class_names;
    return j.dump();
  }

  std::vector<std::vector<float>> embed(const std::vector<Pixels>& images, Pool pool) override {
    return api_internal::translate_errors([&] {
      need(info_.can_embed, "embed", "an MAE or encoder checkpoint");
      std::vector<float> imgs = normalised(images, /*crop_pct=*/0);
      std::vector<std::vector<float>> out(images.size());
      EmbedJob job;
      job.key = kEmbed, job.images = int(images.size()), job.imgs = imgs.data(), job.pool = pool, job.out = &out;
      batcher_->submit(job, opt_.timeout_s);
      return out;
    });
  }

  std::vector<Reconstruction> reconstruct(const std::vector<Pixels>& images, double mask_ratio,
                                          uint64_t seed) override {
    return api_internal::translate_errors([&] {
      need(info_.can_reconstruct, "reconstruct", "an MAE checkpoint with its decoder");
      if (images.empty()) fail("no image given");
      if (!(mask_ratio >= 0.0 && mask_ratio < 1.0)) fail("mask_ratio must be in [0, 1), got ", mask_ratio);
      const int L = cfg_.num_patches(), keep = cfg_.len_keep(mask_ratio);
      if (keep < 1) fail("mask_ratio ", mask_ratio, " keeps no patch of ", L);
      // mae reconstruct's crop (crop_pct 1: shorter side to S, centre crop) and masks: image k's from (seed, k)
      std::vector<Image> crops(images.size());
      Transform tf(eval_transform(cfg_, norm_, 1.0));
      TransformScratch scratch;
      Rng unused(0);
      Image img;
      for (size_t k = 0; k < images.size(); k++) tf.apply_u8(to_image(images[k], k, img), unused, crops[k], scratch);
      std::vector<float> noise(images.size() * L);
      const uint64_t key = Rng::derive(seed, stream::mask);
      for (size_t k = 0; k < images.size(); k++) {
        Rng r = Rng::keyed(key, 0, uint64_t(k));
        for (int l = 0; l < L; l++) noise[k * L + l] = r.uniform_f();
      }
      std::vector<ReconstructPanels> panels;
      ReconstructJob job;
      job.key = uint64_t(kReconstruct) << 32 | uint64_t(keep);
      job.images = int(images.size()), job.crops = &crops, job.noise = &noise, job.mask_ratio = mask_ratio;
      job.out = &panels;
      batcher_->submit(job, opt_.timeout_s);
      std::vector<Reconstruction> out(panels.size());
      for (size_t k = 0; k < panels.size(); k++) {
        ReconstructPanels& p = panels[k];
        Reconstruction& r = out[k];
        r.original = to_pixels(p.original), r.masked = to_pixels(p.masked);
        r.reconstruction = to_pixels(p.recon), r.paste = to_pixels(p.paste);
        r.grid = cfg_.grid(), r.mask = std::move(p.mask), r.patch_loss = std::move(p.patch_loss), r.loss = p.loss;
      }
      return out;
    });
  }

  std::vector<std::vector<ClassScore>> classify(const std::vector<Pixels>& images, int top_k) override {
    return api_internal::translate_errors([&] {
      need(info_.can_classify, "classify", "a fine-tuned classifier (mae finetune)");
      const int NC = cls_->head.nb_classes;
      if (top_k < 1) fail("top_k must be ≥ 1, got ", top_k);
      top_k = std::min(top_k, NC);
      std::vector<float> imgs = normalised(images, classifier_crop_pct(cfg_.img_size));
      std::vector<float> logits(images.size() * NC);
      ClassifyJob job;
      job.key = kClassify, job.images = int(images.size()), job.imgs = imgs.data(), job.logits = &logits;
      batcher_->submit(job, opt_.timeout_s);
      std::vector<std::vector<ClassScore>> out(images.size());
      std::vector<int> order(NC);
      std::vector<double> p(NC);
      for (size_t k = 0; k < images.size(); k++) {
        const float* l = logits.data() + k * NC;
        const double mx = *std::max_element(l, l + NC);
        double sum = 0;
        for (int c = 0; c < NC; c++) sum += p[c] = std::exp(double(l[c]) - mx);
        for (int c = 0; c < NC; c++) order[c] = c;
        // ties: lower index first, as the accuracy of finetune --eval counts them
        std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                          [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
        for (int t = 0; t < top_k; t++)
          out[k].push_back({order[t], cls_->class_names[order[t]], float(p[order[t]] / sum)});
      }
      return out;
    });
  }

 private:
  size_t image_elems() const { return size_t(cfg_.in_chans) * cfg_.img_size * cfg_.img_size; }

  void need(bool can, const char* what, const char* kind) const {
    if (!can) fail("this model cannot ", what, ": ", info_.path, " is ", info_.kind == "mae" ? "an MAE" : "a",
                   info_.kind == "mae" ? "" : " " + info_.kind, " checkpoint; ", what, " needs ", kind);
  }

  static const Image& to_image(const Pixels& p, size_t k, Image& img) {
    return api_internal::to_image(p, "image " + std::to_string(k), img);
  }

  // Images → (n, C, S, S) normalised. crop_pct 0: mae embed's automatic choice per image (1 when the image already
  // has the model's size, else 224/256).
  std::vector<float> normalised(const std::vector<Pixels>& images, double crop_pct) const {
    if (images.empty()) fail("no image given");
    const int S = cfg_.img_size;
    std::vector<float> out(images.size() * image_elems());
    TransformScratch scratch;
    Rng unused(0);
    Image img;
    std::unique_ptr<Transform> tf[2];  // [identity crop, 224/256]
    for (size_t k = 0; k < images.size(); k++) {
      const Image& im = to_image(images[k], k, img);
      const double pct = crop_pct > 0 ? crop_pct : (im.w == S && im.h == S ? 1.0 : 224.0 / 256.0);
      auto& t = tf[pct == 1.0 ? 0 : 1];
      if (!t) t = std::make_unique<Transform>(eval_transform(cfg_, norm_, pct));
      t->apply(im, unused, out.data() + k * image_elems(), scratch);
    }
    return out;
  }

  // ------------------------------------------------------------------------------- the compute thread's side

  void run_group(const std::vector<Job*>& group) {
    try {
      switch (Kind(group[0]->key >> 32 ? group[0]->key >> 32 : group[0]->key)) {
        case kEmbed: return run_embed(group);
        case kReconstruct: return run_reconstruct(group);
        case kClassify: return run_classify(group);
      }
    } catch (const std::exception& e) {
      throw api_internal::ComputeError(e.what());
    }
  }

  // The MAE networks compute a whole batch whatever the images given (a last chunk is padded), so a lone image
  // runs on a network built for one image instead of paying for max_batch: index 0 of the pairs below.
  int chunk_batch(int total) const { return total == 1 ? 1 : opt_.max_batch; }

  // The group's images, in order, through the staging buffer in chunks of B = chunk_batch(total) images:
  // results(first, n, B) reads the chunk of images first .. first + n − 1.
  template <class J, class Results> void run_staged(const std::vector<Job*>& g, Results&& results) {
    int total = 0;
    for (Job* j : g) total += j->images;
    const size_t E = image_elems();
    const int B = chunk_batch(total);
    for (int first = 0; first < total; first += B) {
      const int n = std::min(B, total - first);
      for (int i = 0; i < n; i++) {
        auto [j, k] = locate<J>(g, first + i);
        std::copy_n(j->imgs + size_t(k) * E, E, staging_.data() + size_t(i) * E);
      }
      results(first, n, B);
    }
  }

  // (job, image within job) of image i in group order
  template <class J> static std::pair<J*, int> locate(const std::vector<Job*>& g, int i) {
    for (Job* j : g) {
      if (i < j->images) return {static_cast<J*>(j), i};
      i -= j->images;
    }
    MAE_CHECK(false, "image index past the group");
    return {nullptr, 0};
  }

  void run_embed(const std::vector<Job*>& g) {
    const int L = cfg_.num_patches(), D = cfg_.embed_dim;
    for (Job* j : g) static_cast<EmbedJob*>(j)->out->assign(j->images, std::vector<float>(D));
    run_staged<EmbedJob>(g, [&](int first, int n, int B) {
      auto& enc = encoders_[B == 1 ? 0 : 1];
      if (!enc) enc = pt_->make_model(B, 0.0, spec_);
      const float* lat = enc->forward_encoder(staging_.data(), ordered_noise_.data());
      for (int r = 0; r < n; r++) {
        auto [j, k] = locate<EmbedJob>(g, first + r);
        pool_latent(lat + size_t(r) * (1 + L) * D, 1, L, D, j->pool == Pool::mean, (*j->out)[k].data());
      }
    });
  }

  void run_reconstruct(const std::vector<Job*>& g) {
    auto* j0 = static_cast<ReconstructJob*>(g[0]);
    int total = 0;
    for (Job* j : g) total += j->images;
    const int B = chunk_batch(total);
    const std::pair<int, int> key(int(g[0]->key & 0xffffffffu), B);  // (kept patches, batch)
    // the network for it: most recently used first, at most kReconstructModels
    auto it = std::find_if(decoders_.begin(), decoders_.end(), [&](const auto& m) { return m.first == key; });
    if (it == decoders_.end()) {
      if (decoders_.size() >= kReconstructModels) decoders_.pop_back();
      decoders_.emplace_front(key, pt_->make_model(B, j0->mask_ratio, spec_));
    } else {
      decoders_.splice(decoders_.begin(), decoders_, it);
    }
    InferenceModel& m = *decoders_.front().second;
    std::vector<Image> crops;
    std::vector<float> noise;
    for (Job* j : g) {
      auto* r = static_cast<ReconstructJob*>(j);
      crops.insert(crops.end(), r->crops->begin(), r->crops->end());
      noise.insert(noise.end(), r->noise->begin(), r->noise->end());
    }
    std::vector<ReconstructPanels> all = mae::reconstruct(m, crops, norm_, noise, cfg_.norm_pix_loss);
    size_t at = 0;
    for (Job* j : g) {
      auto* r = static_cast<ReconstructJob*>(j);
      r->out->assign(std::make_move_iterator(all.begin() + at), std::make_move_iterator(all.begin() + at + j->images));
      at += j->images;
    }
  }

  void run_classify(const std::vector<Job*>& g) {
    if (!classifier_) classifier_ = make_inference_classifier(*cls_, opt_.max_batch, spec_);
    const int NC = cls_->head.nb_classes;
    run_staged<ClassifyJob>(g, [&](int first, int n, int) {  // VitClassifier runs n rows, no padding
      const float* logits = classifier_->forward(staging_.data(), n);
      for (int r = 0; r < n; r++) {
        auto [j, k] = locate<ClassifyJob>(g, first + r);
        std::copy_n(logits + size_t(r) * NC, NC, j->logits->data() + size_t(k) * NC);
      }
    });
  }

  const ModelOptions opt_;
  const DeviceSpec spec_;
  ModelInfo info_;
  ModelConfig cfg_;
  Normalization norm_;
  std::unique_ptr<Pretrained> pt_;         // MAE / encoder weights
  std::unique_ptr<LoadedClassifier> cls_;  // classifier weights
  // the compute thread's
  std::unique_ptr<InferenceModel> encoders_[2];  // batch 1, max_batch
  std::list<std::pair<std::pair<int, int>, std::unique_ptr<InferenceModel>>> decoders_;
  std::unique_ptr<InferenceClassifier> classifier_;
  std::vector<float> ordered_noise_, staging_;
  std::unique_ptr<api_internal::Batcher> batcher_;  // last: its thread stops before the networks go
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const ModelOptions& options) {
  return api_internal::translate_errors(
      [&]() -> std::unique_ptr<Model> { return std::make_unique<ModelImpl>(path, options); });
}

}  // namespace mae::api
