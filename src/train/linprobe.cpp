#include "train/linprobe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "dist/comm.h"
#include "eval/frozen_encoder.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "train/engine.h"
#include "train/probe_head.h"

namespace mae {

namespace fs = std::filesystem;

namespace {

constexpr int kEncoderBatch = 64;  // images per encoder forward (activation memory, not semantics)

std::string hex64(uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
  return b;
}

// A probe checkpoint's own metadata: the feature settings and the encoder it was trained on.
struct ProbeFile {
  std::string path;
  nlohmann::json info;            // "linprobe" metadata: nb_classes, dim, global_pool, ...
  nlohmann::json encoder_config;  // the encoder's ModelConfig as JSON (or the raw-pixel size)
  std::string encoder_checkpoint, encoder_fingerprint;
};

ProbeFile read_probe_meta(const std::string& path, bool for_eval) {
  const std::string need = for_eval ? "linprobe --eval needs a probe checkpoint written by `mae linprobe` (in --resume)"
                                    : "--resume needs a probe checkpoint written by `mae linprobe`";
  std::unique_ptr<io::SafeTensorsReader> f;
  try {
    f = std::make_unique<io::SafeTensorsReader>(path);
  } catch (const Error& e) {
    fail(need, ": ", e.what());
  }
  const auto& md = f->metadata();
  if (!md.count("linprobe")) {
    if (md.count("config") || f->has("patch_embed.proj.weight"))
      fail(need, "; ", path, " is an encoder (MAE model) checkpoint, not a probe. Train a probe first: "
           "mae linprobe --finetune ", path, " --output_dir DIR, then evaluate DIR/checkpoint-last.safetensors");
    fail(need, "; ", path, " has no \"linprobe\" metadata");
  }
  ProbeFile p;
  p.path = path;
  try {
    p.info = nlohmann::json::parse(md.at("linprobe"));
    p.encoder_config = nlohmann::json::parse(md.at("encoder_config"));
    p.encoder_checkpoint = md.at("encoder_checkpoint");
    p.encoder_fingerprint = md.count("encoder_fingerprint") ? md.at("encoder_fingerprint") : "";
    (void)p.info.at("nb_classes").get<int>();
    (void)p.info.at("dim").get<int>();
    (void)p.info.at("global_pool").get<bool>();
  } catch (const std::exception& e) {
    fail(path, ": malformed linear-probe metadata: ", e.what());
  }
  return p;
}

void check_labels(const Dataset& ds, int C, const std::string& split) {
  for (size_t i = 0; i < ds.size(); ++i)
    if (ds.label(i) < 0 || ds.label(i) >= C)
      fail(split, " split: label ", ds.label(i), " of ", ds.item_name(i), " is outside the probe's ", C,
           " classes (0..", C - 1, "): ", ds.description());
}

// What the probe is trained on: the probe file (resume/eval), the feature settings, the data, the feature source
// (the frozen encoder, or the raw image) and the classes.
struct Probe {
  std::unique_ptr<ProbeFile> file;
  bool global_pool = false, raw = false, random_init = false, cached = false;
  uint64_t init_seed = 0;
  std::string enc_path, feature, source;
  std::unique_ptr<Dataset> train, test;
  std::unique_ptr<FrozenEncoder> enc;
  nlohmann::json source_cfg;  // what the probe was trained on, checked on resume/eval
  uint64_t fingerprint = 0;
  int S = 0, Ch = 0, D = 0, C = 0;
  TransformConfig eval_tc;
};

// The feature settings: the probe's own (when resuming or evaluating) win over the flags.
void feature_settings(Probe& p, const LinprobeArgs& a, const std::string& resume) {
  if (!resume.empty()) p.file = std::make_unique<ProbeFile>(read_probe_meta(resume, a.eval));
  else if (a.eval) fail("--eval needs the probe to evaluate: --resume PROBE (a checkpoint written by mae linprobe)");
  p.global_pool = a.global_pool, p.raw = a.raw_pixels, p.random_init = a.random_init, p.init_seed = a.seed;
  p.cached = a.cache_features && !a.eval;
  if (p.file) {
    const bool pg = p.file->info.at("global_pool").get<bool>();
    p.raw = p.file->info.value("raw_pixels", false);
    p.random_init = p.file->info.value("random_init", false);
    p.init_seed = p.file->info.value("init_seed", uint64_t(0));
    if (!p.raw && pg != p.global_pool && dist::is_root())
      std::fprintf(stderr, "note: %s was trained on the %s feature; using that\n", resume.c_str(),
                   pg ? "mean-of-patch-tokens (--global_pool)" : "cls-token (--cls_token)");
    p.global_pool = pg;
  }
  if (p.raw && p.random_init) fail("--raw_pixels and --random_init are two different baselines: pick one");
  p.enc_path = a.finetune;
  if (p.enc_path.empty() && p.file && !p.raw) {
    p.enc_path = p.file->encoder_checkpoint;
    if (!fs::exists(p.enc_path))
      fail(resume, " was trained on the encoder ", p.enc_path, ", which no longer exists: give it with --finetune");
  }
  if (p.enc_path.empty() && !p.raw && !(p.random_init && !a.model.empty()))
    fail("--finetune is required: the pretrained encoder checkpoint to probe (or --raw_pixels, or --random_init "
         "with --model NAME)");
  if (!p.enc_path.empty()) reject_probe_checkpoint(p.enc_path, "--finetune");
}

// The feature source and its width D.
void feature_source(Probe& p, const LinprobeArgs& a) {
  const Dataset& ref = p.train ? *p.train : *p.test;
  if (p.raw) {
    p.S = ref.height();
    if (p.S <= 0 || ref.width() != p.S) {
      if (p.enc_path.empty() && a.model.empty())
        fail("--raw_pixels on images of varying size needs an image size: give --model NAME or --finetune");
      p.S = a.model.empty() ? load_weights_any(p.enc_path, "").config.img_size : preset(a.model).img_size;
    }
    p.Ch = ref.channels();
    p.D = p.Ch * p.S * p.S;
    p.source_cfg = {{"raw_pixels", {{"img_size", p.S}, {"in_chans", p.Ch}}}};
    p.feature = "raw pixels (normalised image)";
    p.source = "no model";
  } else {
    p.enc = std::make_unique<FrozenEncoder>(
        EncoderSpec{p.enc_path, a.model, p.random_init, p.init_seed, a.spec},
        std::min(a.batch_size, kEncoderBatch));
    const ModelConfig& cfg = p.enc->config();
    check_encoder_fits_data(cfg, p.enc_path.empty() ? "--model " + a.model : p.enc_path, ref);
    p.S = cfg.img_size, p.Ch = cfg.in_chans, p.D = cfg.embed_dim;
    p.source_cfg = config_to_json(cfg);
    p.fingerprint = p.enc->fingerprint();
    p.feature = p.global_pool ? "mean of patch tokens" : "cls token";
    p.source = p.enc->description();
  }
  p.eval_tc = probe_eval_transform(ref, p.S, p.Ch);
}

// The probe file must fit the features; the classes come from it or from the data.
void check_probe(Probe& p, const LinprobeArgs& a, const std::string& resume) {
  const Dataset& ref = p.train ? *p.train : *p.test;
  if (p.file) {
    if (p.file->encoder_config != p.source_cfg)
      fail(resume, " is a probe for features from ", p.file->encoder_config.dump(), " but ",
           p.raw ? std::string("the data") : p.enc_path, " gives ", p.source_cfg.dump());
    if (!p.raw && !p.file->encoder_fingerprint.empty() && p.file->encoder_fingerprint != hex64(p.fingerprint) &&
        dist::is_root())
      std::fprintf(stderr, "warning: %s holds other weights than the encoder %s was trained on (%s): its accuracy "
                   "will not carry over\n", p.enc_path.c_str(), resume.c_str(), p.file->encoder_checkpoint.c_str());
    if (p.file->info.at("dim").get<int>() != p.D)
      fail(resume, ": probe width ", p.file->info.at("dim").get<int>(), " but the features are ", p.D, "-d");
    p.C = p.file->info.at("nb_classes").get<int>();
    if (a.nb_classes > 0 && a.nb_classes != p.C)
      fail("--nb_classes ", a.nb_classes, " does not match the probe ", resume, ", which has ", p.C, " classes");
    if (p.train && p.train->num_classes() != p.C)
      fail(resume, " is a ", p.C, "-class probe but the data has ", p.train->num_classes(), " classes: ",
           p.train->description());
  } else {
    p.C = p.train->num_classes();
    if (a.nb_classes > 0 && a.nb_classes != p.C)
      fail("--nb_classes ", a.nb_classes, " does not match the data: ", p.train->description(), " has ", p.C,
           " classes (labels 0..", p.C - 1, "); leave --nb_classes out to take it from the data");
  }
  if (p.C < 2) fail("the data has ", p.C, " class: a classifier needs at least 2 (", ref.description(), ")");
  if (p.train) check_labels(*p.train, p.C, "train");
  check_labels(*p.test, p.C, "test");
}

Probe open_probe(const LinprobeArgs& a, const std::string& resume) {
  Probe p;
  feature_settings(p, a, resume);
  if (!a.eval) p.train = open_dataset(a.data_path, "train", {a.output_dir});
  p.test = open_dataset(a.data_path, "test", {a.output_dir});
  feature_source(p, a);
  check_probe(p, a, resume);
  if (dist::is_root()) {
    const std::string tag = p.cached ? " (cached features, no augmentation)" : "";
    std::fprintf(stderr, "encoder: %s\nfeature: %s (%d-d) -> BatchNorm1d(affine=False, eps 1e-6) -> Linear(%d, %d)%s\n",
                 p.source.c_str(), p.feature.c_str(), p.D, p.D, p.C, tag.c_str());
    if (p.train) std::fprintf(stderr, "train: %s\n", p.train->description().c_str());
    std::fprintf(stderr, "test: %s\nnumber of params (M): %.4f%s\n", p.test->description().c_str(),
                 double(p.D * p.C + p.C) / 1e6, tag.c_str());
  }
  return p;
}

// RandomResizedCrop(S, interpolation=3): default scale (0.08, 1) + flip; this rank's slice of each global batch.
LoaderConfig train_loader_config(const LinprobeArgs& a, const Probe& p) {
  LoaderConfig c;
  c.batch_size = a.batch_size;
  c.seed = a.seed;
  c.num_workers = a.num_workers;
  c.decode = parse_decode_mode(a.decode);
  c.rank = dist::rank();
  c.world = dist::world();
  c.shuffle = true;
  c.drop_last = true;
  c.transform.size = p.S;
  c.transform.channels = p.Ch;
  c.transform.train = true;
  c.transform.scale_min = 0.08;
  c.transform.scale_max = 1.0;
  c.transform.norm = p.eval_tc.norm;
  return c;
}

void load_head(const io::SafeTensorsReader& f, ProbeHead& h, bool momentum, bool grads) {
  const int64_t C = h.C, D = h.D;
  f.read_f32("head.weight", h.W.data(), {C, D});
  f.read_f32("head.bias", h.b.data(), {C});
  f.read_f32("head_bn.running_mean", h.rmean.data(), {D});
  f.read_f32("head_bn.running_var", h.rvar.data(), {D});
  if (f.has("head_bn.num_batches_tracked")) {
    const auto v = f.read_i64("head_bn.num_batches_tracked");
    if (!v.empty()) h.batches_tracked = v[0];
  }
  if (momentum) {
    f.read_f32("optim.mu.head.weight", h.muW.data(), {C, D});
    f.read_f32("optim.mu.head.bias", h.mub.data(), {C});
  }
  if (grads) {
    f.read_f32("optim.grad.head.weight", h.gW.data(), {C, D});
    f.read_f32("optim.grad.head.bias", h.gb.data(), {C});
  }
}

// Data parallel (dist/comm.h): every rank runs the frozen encoder on its slice of each global batch and the head's
// gradients are averaged per update. BatchNorm1d is the official plain one, not SyncBN: its batch statistics are each
// rank's own slice's (as main_linprobe.py on several GPUs), each rank keeps its own running statistics, and rank 0's
// are the ones saved and used for evaluation. Rank 0 alone extracts the test features and evaluates.
class LinprobeTask final : public TrainTask {
 public:
  LinprobeTask(const LinprobeArgs& a, Probe p)
      : a_(a), p_(std::move(p)), head_(p_.D, p_.C, a.batch_size), feats_(size_t(a.batch_size) * p_.D),
        labels_(a.batch_size), shuffle_key_(Rng::derive(a.seed, stream::shuffle)) {
    lars_.weight_decay = a.weight_decay;
    head_.init(a.seed);
    const std::string what = p_.cached ? " (cached features, no augmentation)" : "";
    // The encoder is frozen and the eval transform deterministic: test features are the same every epoch.
    if (dist::is_root())
      test_ = extract_features(p_.enc.get(), *p_.test, p_.eval_tc, p_.global_pool, a.batch_size, a.num_workers,
                               "test features" + what);
    if (p_.cached) {
      train_ = extract_features(p_.enc.get(), *p_.train, p_.eval_tc, p_.global_pool, a.batch_size, a.num_workers,
                                "train features" + what);
      iters_ = train_.n / (int64_t(a.batch_size) * dist::world());  // drop_last=True, as the official train loader
      perm_.resize(size_t(train_.n));
    } else {
      loader_ = std::make_unique<Loader>(*p_.train, train_loader_config(a, p_));
      iters_ = loader_->batches_per_epoch();
    }
    MAE_CHECK(iters_ >= 1, iters_);  // check_one_batch before the task
  }

  std::string command() const override { return "linprobe"; }
  std::string tag() const override { return p_.cached ? " (cached features, no augmentation)" : ""; }
  nlohmann::json args() const override {
    return {{"finetune", p_.enc_path}, {"model", a_.model}, {"nb_classes", p_.C}, {"global_pool", p_.global_pool},
            {"batch_size", a_.batch_size}, {"epochs", a_.epochs}, {"accum_iter", a_.accum_iter},
            {"weight_decay", a_.weight_decay}, {"lr", a_.lr}, {"blr", a_.blr}, {"min_lr", a_.min_lr},
            {"warmup_epochs", a_.warmup_epochs}, {"data_path", a_.data_path}, {"seed", a_.seed},
            {"cache_features", p_.cached}, {"raw_pixels", p_.raw}, {"random_init", p_.random_init}};
  }
  int64_t batches_per_epoch() const override { return iters_; }
  int batch_images() const override { return a_.batch_size; }

  void start_epoch(int epoch, int64_t first_batch) override {
    if (!p_.cached) return loader_->start_epoch(epoch, first_batch);
    // per-epoch permutation (Fisher–Yates), a function of (seed, epoch) alone
    for (int64_t i = 0; i < train_.n; ++i) perm_[size_t(i)] = i;
    Rng r = Rng::keyed(shuffle_key_, uint64_t(epoch), 0);
    for (int64_t i = train_.n - 1; i > 0; --i) std::swap(perm_[size_t(i)], perm_[r.uniform_int(uint64_t(i) + 1)]);
  }
  void zero_grad() override { head_.zero_grad(); }

  void forward_backward(int epoch, int64_t it, float dloss) override {
    int B = a_.batch_size;
    const int D = p_.D, world = dist::world(), rank = dist::rank();
    if (p_.cached) {
      for (int i = 0; i < B; ++i) {
        // global batch `it`, this rank's slice of it (rank-major, as the loader shards)
        const int64_t k = perm_[size_t((it * world + rank) * a_.batch_size + i)];
        std::memcpy(feats_.data() + size_t(i) * D, train_.x.data() + size_t(k) * D, size_t(D) * sizeof(float));
        labels_[size_t(i)] = train_.labels[size_t(k)];
      }
    } else {
      const Batch* b = loader_->next();
      if (!b) fail("the loader ended early at batch ", it, " of epoch ", epoch + 1);
      B = b->size;
      if (p_.enc) p_.enc->encode(b->images.data(), B, p_.global_pool, feats_.data());
      else std::memcpy(feats_.data(), b->images.data(), size_t(B) * D * sizeof(float));  // the image is the feature
      std::copy(b->labels.begin(), b->labels.begin() + B, labels_.begin());
    }
    loss_ = head_.train_forward_backward(feats_.data(), labels_.data(), B, dloss);
  }
  void optimizer_step(float lr, long) override { head_.step(lr, lars_); }
  double loss_wait() override { return loss_; }
  void average_grads() override { head_.average_grads(); }

  bool evaluates() const override { return true; }
  EvalStats evaluate() override {
    return evaluate_probe(head_, test_.x.data(), test_.labels.data(), test_.n, a_.batch_size);
  }
  nlohmann::json log_extras() const override {
    nlohmann::json j = {{"n_parameters", p_.D * p_.C + p_.C}, {"feature", p_.feature}};
    if (p_.cached) j["mode"] = "cached features, no augmentation";
    return j;
  }

  void save(const std::string& path, const std::map<std::string, std::string>& meta, bool weights_only,
            bool grads) override {
    save_probe(path, meta, weights_only, grads);
  }
  void load(const io::SafeTensorsReader& f, bool grads) override { load_head(f, head_, true, grads); }
  void broadcast(bool grads) override { head_.broadcast(grads); }

  ProbeHead& head() { return head_; }
  const FeatureSet& test_features() const { return test_; }

 private:
  void save_probe(const std::string& path, std::map<std::string, std::string> meta, bool weights_only, bool grads) {
    const int64_t C = head_.C, D = head_.D, nbt = head_.batches_tracked;
    std::vector<io::TensorOut> t = {{"head.weight", io::DType::F32, {C, D}, head_.W.data()},
                                    {"head.bias", io::DType::F32, {C}, head_.b.data()},
                                    {"head_bn.running_mean", io::DType::F32, {D}, head_.rmean.data()},
                                    {"head_bn.running_var", io::DType::F32, {D}, head_.rvar.data()},
                                    {"head_bn.num_batches_tracked", io::DType::I64, {}, &nbt}};
    if (!weights_only) {
      t.push_back({"optim.mu.head.weight", io::DType::F32, {C, D}, head_.muW.data()});
      t.push_back({"optim.mu.head.bias", io::DType::F32, {C}, head_.mub.data()});
    }
    if (grads) {
      t.push_back({"optim.grad.head.weight", io::DType::F32, {C, D}, head_.gW.data()});
      t.push_back({"optim.grad.head.bias", io::DType::F32, {C}, head_.gb.data()});
    }
    std::error_code ec;
    const fs::path abs = p_.enc_path.empty() ? fs::path() : fs::absolute(p_.enc_path, ec);
    meta["linprobe"] = nlohmann::json{{"nb_classes", p_.C}, {"dim", p_.D}, {"global_pool", p_.global_pool},
                                      {"cached_features", p_.cached}, {"raw_pixels", p_.raw},
                                      {"random_init", p_.random_init}, {"init_seed", p_.init_seed},
                                      {"epochs", a_.epochs}}.dump();
    meta["encoder_config"] = p_.source_cfg.dump();
    meta["encoder_checkpoint"] = ec || p_.enc_path.empty() ? p_.enc_path : abs.lexically_normal().string();
    meta["encoder_fingerprint"] = hex64(p_.fingerprint);
    meta["format"] = "pt";
    io::write_safetensors(path, t, meta);
  }

  const LinprobeArgs& a_;
  Probe p_;
  ProbeHead head_;
  LarsConfig lars_;
  FeatureSet test_, train_;
  std::unique_ptr<Loader> loader_;
  int64_t iters_ = 0;
  std::vector<int64_t> perm_;
  std::vector<float> feats_;
  std::vector<int32_t> labels_;
  const uint64_t shuffle_key_;
  double loss_ = 0;
};

// --eval: rank 0 evaluates the probe in --resume on the test split.
LinprobeResult eval_probe(const LinprobeArgs& a, Probe p, const std::string& resume) {
  LinprobeResult r;
  if (!dist::is_root()) return r;
  const FeatureSet test = extract_features(p.enc.get(), *p.test, p.eval_tc, p.global_pool, a.batch_size,
                                           a.num_workers, "test features");
  ProbeHead head(p.D, p.C, a.batch_size);
  load_head(io::SafeTensorsReader(resume), head, false, false);
  const EvalStats s = evaluate_probe(head, test.x.data(), test.labels.data(), test.n, a.batch_size);
  char acc5[48] = "";
  if (std::isfinite(s.acc5)) std::snprintf(acc5, sizeof acc5, "acc5 %.2f%%, ", s.acc5);
  std::printf("Accuracy of the network on the %lld test images: %.2f%%  (%sloss %.4f; probe %s, %s)\n",
              (long long)s.n, s.acc1, acc5, s.loss, resume.c_str(), p.feature.c_str());
  r.acc1 = r.max_acc1 = s.acc1;
  r.acc5 = s.acc5;
  r.loss = s.loss;
  return r;
}

}  // namespace

LinprobeResult run_linprobe(const LinprobeArgs& a) {
  if (a.batch_size < 2) fail("--batch_size must be ≥ 2 (BatchNorm needs more than one sample), got ", a.batch_size);
  if (!(std::isfinite(a.weight_decay) && a.weight_decay >= 0)) fail("--weight_decay must be ≥ 0");
  if (a.nb_classes < 0 || a.nb_classes > limits::kClasses)
    fail("--nb_classes must be in [1, ", limits::kClasses, "] (0: from the data), got ", a.nb_classes);
  if (!a.eval) validate(a);
  LinprobeArgs b = a;
  b.resume = a.eval ? a.resume : resolve_resume(a);  // "auto" once, for the probe's metadata and the run alike
  Probe p = open_probe(b, b.resume);
  if (a.eval) return eval_probe(b, std::move(p), b.resume);
  check_one_batch(*p.train, b.batch_size, dist::world());  // before the task allocates for the batch
  LinprobeTask task(b, std::move(p));
  const RunResult rr = run_training(b, task);
  LinprobeResult r;
  r.acc1 = rr.last_eval.acc1, r.acc5 = rr.last_eval.acc5, r.loss = rr.last_eval.loss;
  r.max_acc1 = rr.state.max_accuracy;
  r.epochs_run = rr.epochs_run;
  r.preempted = rr.preempted;
  return r;
}

}  // namespace mae
