#include "train/finetune.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/mixup.h"
#include "dist/comm.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "model/inference_classifier.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "ops/backend.h"
#include "ops/dispatch.h"
#include "ops/staged.h"
#include "train/device_mirror.h"
#include "train/engine.h"

namespace mae {

namespace {

MixupConfig mixup_config(const FinetuneArgs& a, int nb_classes) {
  MixupConfig m;
  m.mixup_alpha = a.mixup, m.cutmix_alpha = a.cutmix, m.prob = a.mixup_prob, m.switch_prob = a.mixup_switch_prob;
  m.mode = a.mixup_mode, m.label_smoothing = a.smoothing, m.num_classes = nb_classes;
  return m;
}

void validate_model_flags(const FinetuneArgs& a) {
  if (!(std::isfinite(a.weight_decay) && a.weight_decay >= 0)) fail("--weight_decay must be ≥ 0, got ", a.weight_decay);
  if (!(a.layer_decay > 0 && a.layer_decay <= 1)) fail("--layer_decay must be in (0, 1], got ", a.layer_decay);
  if (!(a.drop_path >= 0 && a.drop_path < 1)) fail("--drop_path must be in [0, 1), got ", a.drop_path);
  if (a.nb_classes < 0 || a.nb_classes > limits::kClasses)
    fail("--nb_classes must be in [1, ", limits::kClasses, "] (0: from the data), got ", a.nb_classes);
  if (a.input_size < 0 || a.in_chans < 0) fail("--input_size and --in_chans must be ≥ 0");
  if (a.in_chans != 0 && a.in_chans != 1 && a.in_chans != 3) fail("--in_chans must be 1 or 3, got ", a.in_chans);
  MixupConfig m = mixup_config(a, 1);
  mae::validate(m);
  if (m.active() && a.batch_size % 2)
    fail("--batch_size ", a.batch_size, " is odd: mixup/cutmix pair each sample with the flipped batch (timm: "
         "'Batch size should be even when using this')");
  RandomErasingConfig re;
  re.prob = a.reprob, re.mode = a.remode, re.max_count = a.recount;
  mae::validate(re);
  if (!a.aa.empty()) RandAugmentConfig::parse(a.aa);  // throws on a malformed policy now, not in a worker
}

// engine_finetune.evaluate: cross-entropy (no smoothing) and top-1/top-5 accuracy on the eval split. As the
// official MetricLogger, the loss is averaged over batches and the accuracies over images.
// With `keep`, every image's logits and label are appended to it (--eval --logits).
struct EvalOutputs {
  std::vector<float> logits;
  std::vector<int64_t> labels;
};
template <class Bk> EvalStats evaluate(VitClassifier<Bk>& m, Loader& loader, EvalOutputs* keep = nullptr) {
  const int NC = m.num_classes(), k5 = std::min(5, NC);
  std::vector<float> targets(size_t(m.batch()) * NC), logits_host;
  Staged<Bk> imgs, tgts;
  m.set_training(false);
  loader.start_epoch(0);
  EvalStats s;
  double loss_sum = 0;
  int64_t batches = 0, c1 = 0, c5 = 0;
  while (const Batch* b = loader.next()) {
    if (b->size == 0) continue;
    const float* logits = on_host<Bk>(m.forward(imgs.put(b->images.data(), b->images.size()), b->size),
                                      size_t(b->size) * NC, logits_host);
    mixup_targets(targets.data(), b->labels.data(), b->size, NC, 1.0, 0.0);  // one-hot: nn.CrossEntropyLoss
    loss_sum += m.loss(tgts.put(targets.data(), size_t(b->size) * NC), b->size);
    ++batches;
    if (keep) {
      keep->logits.insert(keep->logits.end(), logits, logits + size_t(b->size) * NC);
      keep->labels.insert(keep->labels.end(), b->labels.begin(), b->labels.begin() + b->size);
    }
    for (int i = 0; i < b->size; ++i) {
      const float* l = logits + size_t(i) * NC;
      const int y = b->labels[size_t(i)];
      int rank = 0;  // classes ranked above the label (ties: lower index first)
      for (int c = 0; c < NC; ++c) rank += l[c] > l[y] || (l[c] == l[y] && c < y);
      c1 += rank < 1;
      c5 += rank < k5;
    }
    s.n += b->size;
  }
  if (s.n > 0) {
    s.acc1 = 100.0 * double(c1) / double(s.n);
    s.acc5 = 100.0 * double(c5) / double(s.n);
    s.loss = loss_sum / double(batches);
  }
  return s;
}

// What the run starts from: the data, the encoder config and head, and where the weights come from (the classifier
// of --eval, the MAE checkpoint of --finetune, or a fresh init).
struct Setup {
  std::unique_ptr<Dataset> train, val;
  ModelConfig cfg;
  ClassifierConfig cc;
  LoadedWeights weights;  // --eval / --finetune
  std::string source;
  Normalization norm;
};

// The classifier of --eval: config and head from the file.
void open_classifier(Setup& s, const std::string& path, const std::string& model) {
  s.weights = load_weights_any(path, model);
  s.cfg = s.weights.config;
  s.cc = classifier_config_of(s.weights);
  s.source = path;
}

void check_classes(const Setup& s, const FinetuneArgs& a, const Dataset& ref, int data_classes);

Setup setup(const FinetuneArgs& a) {
  Setup s;
  if (!a.eval) s.train = open_dataset(a.data_path, "train", {a.output_dir});
  s.val = open_dataset(a.data_path, "val", {a.output_dir});
  const Dataset& ref = s.train ? *s.train : *s.val;
  const int data_chans = ref.channels();
  const int data_classes = std::max(s.train ? s.train->num_classes() : 0, s.val->num_classes());
  s.cc.global_pool = a.global_pool;
  s.cc.drop_path = a.drop_path;
  if (a.eval) {
    const std::string path = !a.resume.empty() ? a.resume : a.finetune;
    if (path.empty() || path == "auto")
      fail("--eval needs the fine-tuned classifier to evaluate: --resume CHECKPOINT (or --finetune CHECKPOINT)");
    open_classifier(s, path, a.model);
  } else if (!a.finetune.empty()) {
    s.weights = load_weights_any(a.finetune, a.model);
    s.cfg = s.weights.config;
    s.source = a.finetune;
  } else {
    const std::string name = a.model.empty() ? "mae_vit_fmnist_small" : a.model;
    s.cfg = preset(name);
    s.cfg.in_chans = a.in_chans > 0 ? a.in_chans : data_chans;
    s.source = "from scratch (" + name + " encoder)";
  }
  if (a.input_size > 0) s.cfg.img_size = a.input_size;
  const int want_chans = a.in_chans > 0 ? a.in_chans : data_chans;
  if (s.cfg.in_chans != want_chans)
    fail(s.source, ": the checkpoint's model takes ", s.cfg.in_chans, "-channel images (in_chans ", s.cfg.in_chans,
         ") but the data (", ref.description(), ") has ", data_chans, " channel(s)",
         a.in_chans > 0 ? std::string(" and --in_chans is ") + std::to_string(a.in_chans)
                        : std::string(": pass --in_chans ") + std::to_string(s.cfg.in_chans) +
                              " to convert the images (grey ↔ RGB)");
  s.cfg.validate(s.source + " with --input_size " + std::to_string(s.cfg.img_size));
  check_classes(s, a, ref, data_classes);
  if (!a.eval) check_one_batch(*s.train, a.batch_size, dist::world());  // before the model is built for the batch
  if (!a.eval) s.cc.nb_classes = a.nb_classes > 0 ? a.nb_classes : data_classes;
  s.norm = normalization_for_channels(ref.normalization(), s.cfg.in_chans);
  return s;
}

void check_classes(const Setup& s, const FinetuneArgs& a, const Dataset& ref, int data_classes) {
  const int have = a.eval ? s.cc.nb_classes : (a.nb_classes > 0 ? a.nb_classes : data_classes);
  if (a.eval && a.nb_classes > 0 && a.nb_classes != have)
    fail("--nb_classes ", a.nb_classes, " but ", s.source, " has a ", have, "-class head");
  if (data_classes > have)
    fail(a.eval ? "the classifier " + s.source + " has " + std::to_string(have) + " classes"
                : "--nb_classes " + std::to_string(have),
         " but the labels of ", ref.description(), " go up to ", data_classes - 1, " (", data_classes, " classes)");
  if (!a.eval && a.nb_classes > data_classes)
    std::fprintf(stderr, "note: --nb_classes %d but the data has %d classes: the extra outputs are never targets\n",
                 a.nb_classes, data_classes);
}

// Resize(int(S / crop_pct), bicubic) + CenterCrop(S)
LoaderConfig val_loader_config(const FinetuneArgs& a, const Setup& s) {
  LoaderConfig vc;
  vc.batch_size = a.batch_size;
  vc.seed = a.seed;
  vc.num_workers = a.num_workers;
  vc.shuffle = false;
  vc.drop_last = false;
  vc.transform.size = s.cfg.img_size;
  vc.transform.channels = s.cfg.in_chans;
  vc.transform.train = false;
  vc.transform.crop_pct = classifier_crop_pct(s.cfg.img_size);  // the same as mae classify's
  vc.transform.norm = s.norm;
  return vc;
}

// RandomResizedCrop(scale 0.08–1, bicubic) + flip + RandAugment + RandomErasing, this rank's slice
LoaderConfig train_loader_config(const FinetuneArgs& a, const Setup& s) {
  LoaderConfig tc = val_loader_config(a, s);
  tc.shuffle = true, tc.drop_last = true;
  tc.rank = dist::rank();
  tc.world = dist::world();
  tc.decode = parse_decode_mode(a.decode);
  tc.transform.train = true;
  tc.transform.scale_min = 0.08;
  tc.transform.auto_augment = a.aa;
  tc.transform.erasing.prob = a.reprob;
  tc.transform.erasing.mode = a.remode;
  tc.transform.erasing.max_count = a.recount;
  return tc;
}

// The classifier's weights: --eval's file, or --finetune's encoder + a fresh head, or the init; on the host mirror.
template <class Bk> void init_weights(VitClassifier<Bk>& model, float* host, const Setup& s, const FinetuneArgs& a) {
  const ParamList& pl = model.params();
  const uint64_t init_key = Rng::derive(a.seed, stream::init);
  model.init(init_key);
  auto to_host = [&] {  // on the CPU `host` is the model's own buffer
    if (host != model.params_data()) Bk::download(host, model.params_data(), pl.total);
  };
  auto from_host = [&] {
    if (host != model.params_data()) Bk::upload(model.params_data(), host, pl.total);
  };
  to_host();
  if (s.weights.tensors.empty()) return;
  const FinetuneInit r = load_finetune_weights(s.weights, s.cfg, pl, host);
  if (a.eval) {
    for (const auto& n : r.missing) fail(s.source, ": missing tensor '", n, "' of the classifier");
    from_host();
    return;
  }
  from_host();
  model.init_head(Rng::derive(init_key, 1), 2e-5);  // trunc_normal_(model.head.weight, std=2e-5)
  to_host();
  std::string miss;
  for (const auto& n : r.missing) miss += (miss.empty() ? "" : ", ") + n;
  if (dist::is_root())
    std::fprintf(stderr, "load %s (%s, config from %s): %zu tensors; initialised: %s; ignored %zu%s%s\n",
                 a.finetune.c_str(), s.weights.format.c_str(), s.weights.config_source.c_str(), r.loaded.size(),
                 miss.empty() ? "none" : miss.c_str(), r.ignored.size(),
                 r.ignored.empty() ? "" : " (decoder, mask_token, ...)",
                 r.pos_note.empty() ? "" : ("; pos_embed " + r.pos_note).c_str());
}

size_t count_params(const ParamList& pl) {
  size_t n = 0;
  for (const auto& s : pl.specs) n += s.numel;
  return n;
}

// Data parallel (dist/comm.h): every rank trains on its slice of each global batch; rank 0 alone evaluates (the
// whole val split, so accuracies are those of a single process). Mixup/cutmix draw one (lam, box) per global batch
// (keyed by (seed, epoch, batch)) but pair samples within each rank's slice, as timm does per process; drop path is
// keyed by the dataset index of each sample, so it does not depend on the rank count.
template <class Bk> class FinetuneTask final : public TrainTask {
 public:
  FinetuneTask(const FinetuneArgs& a, Setup s)
      : a_(a), s_(std::move(s)), model_(s_.cfg, s_.cc, a.batch_size), mirror_(model_),
        val_loader_(*s_.val, val_loader_config(a, s_)), loader_(*s_.train, train_loader_config(a, s_)),
        mix_(mixup_config(a, s_.cc.nb_classes)), scales_(layer_lr_scales(s_.cfg.depth, a.layer_decay)),
        targets_(size_t(a.batch_size) * s_.cc.nb_classes),
        mixed_(mix_.active() ? size_t(a.batch_size) * s_.cfg.in_chans * s_.cfg.img_size * s_.cfg.img_size : 0),
        mix_key_(Rng::derive(a.seed, stream::mixup)), drop_key_(Rng::derive(a.seed, stream::drop)) {
    init_weights(model_, mirror_.host_buffers().params, s_, a);
    if (!dist::is_root()) return;
    std::fprintf(stderr, "model: %s %s, %s, %zu parameters\ndata: %s\neval: %s\nlayer_decay: %g\ncriterion: %s\n",
                 s_.source.c_str(), config_to_json(s_.cfg).dump().c_str(), classifier_to_json(s_.cc).dump().c_str(),
                 count_params(model_.params()), s_.train->description().c_str(), s_.val->description().c_str(),
                 a.layer_decay, mix_.active() ? "SoftTargetCrossEntropy (mixup/cutmix)"
                                : a.smoothing > 0 ? "LabelSmoothingCrossEntropy" : "CrossEntropyLoss");
  }

  std::string command() const override { return "finetune"; }
  // `normalize`: what the loaders normalised with, so that an export (mae export, convert --to hf) states it.
  nlohmann::json args() const override {
    const FinetuneArgs& a = a_;
    return {{"normalize", {{"mean", s_.norm.mean}, {"std", s_.norm.std}}},
            {"finetune", a.finetune},   {"model", a.model},          {"input_size", a.input_size},
            {"in_chans", a.in_chans},   {"nb_classes", s_.cc.nb_classes}, {"global_pool", a.global_pool},
            {"drop_path", a.drop_path}, {"batch_size", a.batch_size}, {"epochs", a.epochs},
            {"accum_iter", a.accum_iter}, {"weight_decay", a.weight_decay}, {"lr", a.lr},
            {"blr", a.blr},             {"layer_decay", a.layer_decay}, {"min_lr", a.min_lr},
            {"warmup_epochs", a.warmup_epochs}, {"aa", a.aa},      {"smoothing", a.smoothing},
            {"reprob", a.reprob},       {"remode", a.remode},        {"recount", a.recount},
            {"mixup", a.mixup},         {"cutmix", a.cutmix},        {"mixup_prob", a.mixup_prob},
            {"mixup_switch_prob", a.mixup_switch_prob}, {"mixup_mode", a.mixup_mode},
            {"data_path", a.data_path}, {"num_workers", a.num_workers}, {"decode", a.decode},
            {"output_dir", a.output_dir},
            {"seed", a.seed}};
  }
  int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  int batch_images() const override { return a_.batch_size; }

  void start_epoch(int epoch, int64_t first_batch) override {
    model_.set_training(true);
    loader_.start_epoch(epoch, first_batch);
  }
  void zero_grad() override { model_.zero_grad(); }

  void forward_backward(int epoch, int64_t i, float dloss) override {
    const Batch* b = loader_.next();
    if (!b) fail("the loader ended early at batch ", i, " of epoch ", epoch + 1);
    const int B = b->size, NC = s_.cc.nb_classes, S = s_.cfg.img_size;
    // samples, targets = mixup_fn(samples, targets)   (the mix of batch i is keyed by (seed, epoch, i))
    const std::vector<float>* images = &b->images;
    if (mix_.active()) {
      Rng r = Rng::keyed(mix_key_, uint64_t(epoch), uint64_t(i));
      const MixParams mp = mixup_draw(mix_, r, S, S);
      std::copy(b->images.begin(), b->images.end(), mixed_.begin());
      mixup_apply(mixed_.data(), B, s_.cfg.in_chans, S, S, mp);
      images = &mixed_;
      mixup_targets(targets_.data(), b->labels.data(), B, NC, mp.lam, a_.smoothing);
    } else {
      mixup_targets(targets_.data(), b->labels.data(), B, NC, 1.0, a_.smoothing);
    }
    if (model_.blocks().drop_path_active())
      model_.blocks().draw_drop_path(drop_key_, uint64_t(epoch), b->indices.data(), B);
    model_.forward(mirror_.images(*images), B);
    loss_ = model_.loss(tgt_stage_.put(targets_.data(), size_t(B) * NC), B);
    model_.backward(dloss, B);  // loss /= accum_iter
    B_ = B;
  }

  void optimizer_step(float lr, long step) override {
    if (dist::world() > 1) average_grads();
    // AdamW (0.9, 0.999) over the lr-decay groups: lr · lr_scale[layer_id], weight decay only where the group has it
    for (const auto& s : model_.params().specs)
      Bk::adamw_update(model_.params_data() + s.offset, mirror_.m() + s.offset, mirror_.v() + s.offset,
                       model_.grads_data() + s.offset, s.numel, float(lr * scales_[size_t(s.layer_id)]), 0.9f,
                       0.999f, 1e-8f, s.decay ? float(a_.weight_decay) : 0.0f, step);
    model_.zero_grad();
  }
  double loss_wait() override { return loss_; }
  void average_grads() override {
    mirror_.on_host_grads([&](float* g) { dist::allreduce_mean(g, model_.params().total); });
  }

  bool evaluates() const override { return true; }
  bool keeps_best() const override { return true; }
  EvalStats evaluate() override { return mae::evaluate(model_, val_loader_); }
  nlohmann::json log_extras() const override { return {{"n_parameters", count_params(model_.params())}}; }

  void save(const std::string& path, const std::map<std::string, std::string>& meta, bool weights_only,
            bool grads) override {
    mirror_.to_host(grads);
    const TrainBuffers buf = mirror_.host_buffers();
    const ParamList& pl = model_.params();
    std::vector<NamedBuffer> extra;
    add_adamw_slots(extra, pl, buf, weights_only, grads);
    // The training data's class names, so that `mae classify` and `mae serve` can say what each output is; outputs
    // beyond the data's classes (--nb_classes larger) are named by their index.
    std::vector<std::string> names = s_.train->class_names();
    names.resize(std::min<size_t>(names.size(), size_t(s_.cc.nb_classes)));
    for (int k = int(names.size()); k < s_.cc.nb_classes; k++) names.push_back(std::to_string(k));
    std::map<std::string, std::string> m = meta;
    m["class_names"] = nlohmann::json(names).dump();
    save_classifier(path, s_.cfg, s_.cc, pl, buf.params, extra, std::move(m));
  }
  void load(const io::SafeTensorsReader& f, bool grads) override {
    ModelConfig cfg;
    ClassifierConfig cc;
    read_classifier_config(f, &cfg, &cc);
    auto enc = [](const ModelConfig& c) {
      auto j = config_to_json(c);
      for (const char* k : {"decoder_embed_dim", "decoder_depth", "decoder_num_heads", "norm_pix_loss"}) j.erase(k);
      return j;
    };
    if (enc(cfg) != enc(s_.cfg) || cc.nb_classes != s_.cc.nb_classes || cc.global_pool != s_.cc.global_pool)
      fail(f.path(), ": checkpoint is for another classifier: ", enc(cfg).dump(), " ", classifier_to_json(cc).dump(),
           " but this run's is ", enc(s_.cfg).dump(), " ", classifier_to_json(s_.cc).dump());
    const TrainBuffers buf = mirror_.host_buffers();
    const ParamList& pl = model_.params();
    read_slot(f, "", pl, buf.params);
    read_adamw_slots(f, pl, buf, grads);
  }
  void broadcast(bool grads) override {
    broadcast_adamw_state(mirror_.host_buffers(), model_.params().total, grads);
    mirror_.to_device(grads);
  }

 private:
  const FinetuneArgs& a_;
  Setup s_;
  VitClassifier<Bk> model_;
  TrainMirror<Bk, VitClassifier<Bk>> mirror_;  // AdamW moments; host views of the state on a device
  Loader val_loader_, loader_;
  const MixupConfig mix_;
  const std::vector<double> scales_;
  std::vector<float> targets_, mixed_;
  Staged<Bk> tgt_stage_;
  const uint64_t mix_key_, drop_key_;
  double loss_ = 0;
  int B_ = 0;
};

// --eval: rank 0 evaluates the classifier alone and prints the official line.
template <class Bk> FinetuneResult eval_on(const FinetuneArgs& a, Setup s) {
  FinetuneResult r;
  if (!dist::is_root()) return r;
  FinetuneArgs ea = a;  // no batch larger than the data (one batch either way: the same figures)
  ea.batch_size = limits::batch_within(a.batch_size, s.val->size());
  VitClassifier<Bk> model(s.cfg, s.cc, ea.batch_size, ModelMode::inference);  // forward only
  std::vector<float> host(model.params().total);
  init_weights(model, host.data(), s, a);
  Loader val(*s.val, val_loader_config(ea, s));
  std::fprintf(stderr, "model: %s %s, %s, %zu parameters\n", s.source.c_str(), config_to_json(s.cfg).dump().c_str(),
               classifier_to_json(s.cc).dump().c_str(), count_params(model.params()));
  EvalOutputs out;
  const EvalStats e = evaluate(model, val, a.logits.empty() ? nullptr : &out);
  if (!a.logits.empty()) {
    io::write_safetensors(a.logits,
                          {{"logits", io::DType::F32, {e.n, s.cc.nb_classes}, out.logits.data()},
                           {"labels", io::DType::I64, {e.n}, out.labels.data()}},
                          {{"checkpoint", s.source}, {"dataset", s.val->description()}});
    std::fprintf(stderr, "wrote %s: logits (%lld, %d), labels\n", a.logits.c_str(), (long long)e.n, s.cc.nb_classes);
  }
  std::printf("Accuracy of the network on the %lld test images: %.1f%%\n", (long long)e.n, e.acc1);
  std::printf("acc1 %.3f acc5 %.3f loss %.4f\n", e.acc1, e.acc5, e.loss);
  r.best_acc1 = r.last_acc1 = e.acc1;
  r.last_acc5 = e.acc5, r.last_test_loss = e.loss;
  return r;
}

template <class Bk> FinetuneResult finetune_on(const FinetuneArgs& a) {
  Setup s = setup(a);
  if (a.eval) return eval_on<Bk>(a, std::move(s));
  FinetuneTask<Bk> task(a, std::move(s));
  const RunResult rr = run_training(a, task);
  FinetuneResult r;
  r.best_acc1 = rr.state.max_accuracy;
  r.last_acc1 = rr.last_eval.acc1, r.last_acc5 = rr.last_eval.acc5, r.last_test_loss = rr.last_eval.loss;
  r.last_train_loss = rr.last_train_loss;
  r.epochs_run = rr.epochs_run;
  r.preempted = rr.preempted;
  return r;
}

}  // namespace

FinetuneResult run_finetune(const FinetuneArgs& a) {
  if (!a.eval) validate(a);
  validate_model_flags(a);
  return with_backend(a.spec, [&]<class Bk>() { return finetune_on<Bk>(a); });
}

}  // namespace mae
