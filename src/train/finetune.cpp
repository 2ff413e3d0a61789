#include "train/finetune.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/mixup.h"
#include "dist/comm.h"
#include "io/atomic_file.h"
#include "model/checkpoint_load.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "ops/backend.h"
#include "ops/staged.h"
#ifdef MAE_CUDA
#include "ops/cuda/backend_cuda.h"
#endif
#include "train/curve.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/train_checkpoint.h"

namespace mae {

namespace fs = std::filesystem;

namespace {

nlohmann::json args_json(const FinetuneArgs& a) {
  return {{"finetune", a.finetune},   {"model", a.model},          {"input_size", a.input_size},
          {"in_chans", a.in_chans},   {"nb_classes", a.nb_classes}, {"global_pool", a.global_pool},
          {"drop_path", a.drop_path}, {"batch_size", a.batch_size}, {"epochs", a.epochs},
          {"accum_iter", a.accum_iter}, {"weight_decay", a.weight_decay}, {"lr", a.lr},
          {"blr", a.blr},             {"layer_decay", a.layer_decay}, {"min_lr", a.min_lr},
          {"warmup_epochs", a.warmup_epochs}, {"aa", a.aa},      {"smoothing", a.smoothing},
          {"reprob", a.reprob},       {"remode", a.remode},        {"recount", a.recount},
          {"mixup", a.mixup},         {"cutmix", a.cutmix},        {"mixup_prob", a.mixup_prob},
          {"mixup_switch_prob", a.mixup_switch_prob}, {"mixup_mode", a.mixup_mode},
          {"data_path", a.data_path}, {"num_workers", a.num_workers}, {"output_dir", a.output_dir},
          {"seed", a.seed},           {"threads", omp_get_max_threads()}, {"world_size", dist::world()}};
}

MixupConfig mixup_config(const FinetuneArgs& a, int nb_classes) {
  MixupConfig m;
  m.mixup_alpha = a.mixup, m.cutmix_alpha = a.cutmix, m.prob = a.mixup_prob, m.switch_prob = a.mixup_switch_prob;
  m.mode = a.mixup_mode, m.label_smoothing = a.smoothing, m.num_classes = nb_classes;
  return m;
}

void validate(const FinetuneArgs& a) {
  if (a.batch_size < 1) fail("--batch_size must be ≥ 1, got ", a.batch_size);
  if (a.epochs < 1) fail("--epochs must be ≥ 1, got ", a.epochs);
  if (a.accum_iter < 1) fail("--accum_iter must be ≥ 1, got ", a.accum_iter);
  if (a.weight_decay < 0) fail("--weight_decay must be ≥ 0");
  if (a.lr < 0 || a.blr <= 0 || a.min_lr < 0) fail("--lr/--min_lr must be ≥ 0 and --blr > 0");
  if (!(a.layer_decay > 0 && a.layer_decay <= 1)) fail("--layer_decay must be in (0, 1], got ", a.layer_decay);
  if (a.warmup_epochs < 0) fail("--warmup_epochs must be ≥ 0");
  if (!(a.drop_path >= 0 && a.drop_path < 1)) fail("--drop_path must be in [0, 1), got ", a.drop_path);
  if (a.nb_classes < 0) fail("--nb_classes must be ≥ 1, got ", a.nb_classes);
  if (a.input_size < 0 || a.in_chans < 0) fail("--input_size and --in_chans must be ≥ 0");
  if (a.in_chans != 0 && a.in_chans != 1 && a.in_chans != 3) fail("--in_chans must be 1 or 3, got ", a.in_chans);
  if (a.num_workers < 0) fail("--num_workers must be ≥ 0");
  if (a.stop_epoch < 0) fail("--stop_epoch must be ≥ 0");
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

// Official model names (models_vit: vit_base_patch16, ...) are our mae_vit_* presets' encoders.
ModelConfig model_preset(const std::string& name) {
  for (const std::string& n : preset_names())
    if (n == name) return preset(name);
  for (const std::string& n : preset_names())
    if (n == "mae_" + name) return preset(n);
  return preset(name);  // throws listing the known names
}
std::string preset_name(const std::string& name) {
  for (const std::string& n : preset_names())
    if (n == "mae_" + name) return n;
  return name;
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream o(path, std::ios::app);
  o << line << "\n";
  o.flush();
  if (!o) fail(path, ": cannot append: ", std::strerror(errno));
}

struct EvalStats {
  double acc1 = 0, acc5 = 0, loss = 0;
  int64_t n = 0;
};

// engine_finetune.evaluate: cross-entropy (no smoothing) and top-1/top-5 accuracy on the eval split. As the
// official MetricLogger, the loss is averaged over batches and the accuracies over images.
template <class Bk>
EvalStats evaluate(VitClassifier<Bk>& m, Loader& loader, int NC, std::vector<float>& targets) {
  Staged<Bk> imgs, tgts;
  std::vector<float> logits_host;
  m.set_training(false);
  loader.start_epoch(0);
  EvalStats s;
  double loss_sum = 0;
  int64_t batches = 0, c1 = 0, c5 = 0;
  const int k5 = std::min(5, NC);
  while (const Batch* b = loader.next()) {
    if (b->size == 0) continue;
    const float* logits = on_host<Bk>(m.forward(imgs.put(b->images.data(), b->images.size()), b->size),
                                      size_t(b->size) * NC, logits_host);
    mixup_targets(targets.data(), b->labels.data(), b->size, NC, 1.0, 0.0);  // one-hot: nn.CrossEntropyLoss
    loss_sum += m.loss(tgts.put(targets.data(), size_t(b->size) * NC), b->size);
    ++batches;
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

// The classifier of --eval (or a --resume checkpoint): config and head from the file.
struct ClassifierFile {
  LoadedWeights w;
  ClassifierConfig cc;
};

ClassifierFile open_classifier(const std::string& path, const std::string& model) {
  ClassifierFile f;
  f.w = load_weights_any(path, model.empty() ? "" : preset_name(model));
  auto head = f.w.tensors.find("head.weight");
  if (head == f.w.tensors.end() || head->second.shape.size() != 2)
    fail(path, ": not a fine-tuned classifier (no head.weight", f.w.has_decoder ? "; it is an MAE checkpoint" : "",
         "): fine-tune it first with `mae finetune --finetune ", path, "`");
  f.cc.nb_classes = int(head->second.shape[0]);
  f.cc.global_pool = f.w.tensors.count("fc_norm.weight") > 0;
  f.cc.drop_path = 0;
  return f;
}

// Training checkpoint: the classifier (official names, loadable by --eval and by PyTorch), AdamW moments, position.
struct FtState {
  int epoch = 0;  // next epoch to run
  long step = 0;
  double max_accuracy = 0;
};

// params, mom, var: host arrays laid out as m.params() (mom/var nullptr: weights only).
template <class Bk>
void save_checkpoint(const std::string& path, const VitClassifier<Bk>& m, const float* params, const float* mom,
                     const float* var, const FtState& st, const nlohmann::json& args) {
  std::vector<NamedBuffer> extra;
  if (mom)
    for (const auto& s : m.params().specs) {
      extra.push_back({"optim.m." + s.name, s.shape, mom + s.offset});
      extra.push_back({"optim.v." + s.name, s.shape, var + s.offset});
    }
  nlohmann::json state = {{"epoch", st.epoch}, {"step", st.step}, {"max_accuracy", st.max_accuracy}};
  save_classifier(path, m.config(), m.classifier(), m.params(), params, extra,
                  {{"finetune_state", state.dump()}, {"args", args.dump()}});
}

// Reads the weights into `params`, the moments into mom/var: host arrays laid out as m.params().
template <class Bk>
FtState load_checkpoint(const std::string& path, const VitClassifier<Bk>& m, float* params, std::vector<float>& mom,
                        std::vector<float>& var) {
  io::SafeTensorsReader f(path);
  ModelConfig cfg;
  ClassifierConfig cc;
  read_classifier_config(f, &cfg, &cc);
  auto enc = [](const ModelConfig& c) {
    auto j = config_to_json(c);
    for (const char* k : {"decoder_embed_dim", "decoder_depth", "decoder_num_heads", "norm_pix_loss"}) j.erase(k);
    return j;
  };
  if (enc(cfg) != enc(m.config()) || cc.nb_classes != m.classifier().nb_classes ||
      cc.global_pool != m.classifier().global_pool)
    fail(path, ": checkpoint is for another classifier: ", enc(cfg).dump(), " ", classifier_to_json(cc).dump(),
         " but this run's is ", enc(m.config()).dump(), " ", classifier_to_json(m.classifier()).dump());
  auto it = f.metadata().find("finetune_state");
  if (it == f.metadata().end())
    fail(path, ": not a fine-tuning training checkpoint (no finetune_state metadata): evaluate it with --eval, or "
               "start a new run from it with --finetune");
  FtState st;
  try {
    const auto j = nlohmann::json::parse(it->second);
    st.epoch = j.at("epoch").get<int>();
    st.step = j.at("step").get<long>();
    st.max_accuracy = j.value("max_accuracy", 0.0);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": malformed finetune_state metadata: ", e.what());
  }
  if (!f.has("optim.m." + m.params().specs[0].name))
    fail(path, ": has no optimizer state (checkpoint-best holds weights only): resume from checkpoint-last, or start "
               "a new run from it with --finetune");
  for (const auto& s : m.params().specs) {
    f.read_f32(s.name, params + s.offset, s.shape);
    f.read_f32("optim.m." + s.name, mom.data() + s.offset, s.shape);
    f.read_f32("optim.v." + s.name, var.data() + s.offset, s.shape);
  }
  return st;
}

}  // namespace

// Data parallel (dist/comm.h): every rank trains on its slice of each global batch (a.batch_size × world) and the
// gradients are averaged with one all-reduce per update; rank 0 alone evaluates (the whole val split, so accuracies
// are those of a single process), prints, and writes logs and checkpoints. Mixup/cutmix draw one (lam, box) per
// global batch (keyed by (seed, epoch, batch)) but pair samples within each rank's slice, as timm does per process;
// drop path is keyed by the dataset index of each sample, so it does not depend on the rank count.
template <class Bk> FinetuneResult run_finetune_on(const FinetuneArgs& a) {
  constexpr bool kHost = kHostBk<Bk>;
  const int world = dist::world();
  const bool root = dist::is_root();
  FinetuneResult result;
  const std::string log_dir = a.log_dir.empty() ? a.output_dir : a.log_dir;

  // ---- data ----
  std::unique_ptr<Dataset> train_ds;
  if (!a.eval) train_ds = open_dataset(a.data_path, "train");
  auto val_ds = open_dataset(a.data_path, "val");
  const Dataset& ref_ds = train_ds ? *train_ds : *val_ds;
  const int data_chans = ref_ds.channels();
  const int data_classes = std::max(train_ds ? train_ds->num_classes() : 0, val_ds->num_classes());

  // ---- model config ----
  ModelConfig cfg;
  ClassifierConfig cc;
  cc.global_pool = a.global_pool;
  cc.drop_path = a.drop_path;
  std::unique_ptr<ClassifierFile> eval_file;
  LoadedWeights ft;
  std::string source;
  if (a.eval) {
    const std::string path = !a.resume.empty() ? a.resume : a.finetune;
    if (path.empty() || path == "auto")
      fail("--eval needs the fine-tuned classifier to evaluate: --resume CHECKPOINT (or --finetune CHECKPOINT)");
    eval_file = std::make_unique<ClassifierFile>(open_classifier(path, a.model));
    cfg = eval_file->w.config;
    cc = eval_file->cc;
    source = path;
  } else if (!a.finetune.empty()) {
    ft = load_weights_any(a.finetune, a.model.empty() ? "" : preset_name(a.model));
    cfg = ft.config;
    source = a.finetune;
  } else {
    cfg = model_preset(a.model.empty() ? "mae_vit_fmnist_small" : a.model);
    cfg.in_chans = a.in_chans > 0 ? a.in_chans : data_chans;
    source = "from scratch (" + (a.model.empty() ? std::string("mae_vit_fmnist_small") : a.model) + " encoder)";
  }
  if (a.input_size > 0) cfg.img_size = a.input_size;
  const int want_chans = a.in_chans > 0 ? a.in_chans : data_chans;
  if (cfg.in_chans != want_chans)
    fail(source, ": the checkpoint's model takes ", cfg.in_chans, "-channel images (in_chans ", cfg.in_chans,
         ") but the data (", ref_ds.description(), ") has ", data_chans, " channel(s)",
         a.in_chans > 0 ? std::string(" and --in_chans is ") + std::to_string(a.in_chans)
                        : std::string(": pass --in_chans ") + std::to_string(cfg.in_chans) +
                              " to convert the images (grey ↔ RGB)");
  cfg.validate(source + " with --input_size " + std::to_string(cfg.img_size));
  if (!a.eval) cc.nb_classes = a.nb_classes > 0 ? a.nb_classes : data_classes;
  else if (a.nb_classes > 0 && a.nb_classes != cc.nb_classes)
    fail("--nb_classes ", a.nb_classes, " but ", source, " has a ", cc.nb_classes, "-class head");
  if (data_classes > cc.nb_classes)
    fail(a.eval ? "the classifier " + source + " has " + std::to_string(cc.nb_classes) + " classes"
                : "--nb_classes " + std::to_string(cc.nb_classes),
         " but the labels of ", (train_ds ? train_ds.get() : val_ds.get())->description(), " go up to ",
         data_classes - 1, " (", data_classes, " classes)");
  if (!a.eval && a.nb_classes > data_classes)
    std::fprintf(stderr, "note: --nb_classes %d but the data has %d classes: the extra outputs are never targets\n",
                 a.nb_classes, data_classes);

  // ---- model ----
  VitClassifier<Bk> model(cfg, cc, a.batch_size);
  const ParamList& pl = model.params();
  const uint64_t init_key = Rng::derive(a.seed, stream::init);
  model.init(init_key);
  // The weights as a host array (loading, checkpoints, broadcasts): the model's own buffer on the CPU, a mirror
  // downloaded from / uploaded to the device otherwise.
  std::vector<float> hp_mirror;
  auto params_host = [&]() { return const_cast<float*>(on_host<Bk>(model.params_data(), pl.total, hp_mirror)); };
  auto params_from_host = [&](const float* src) {
    if constexpr (!kHost) Bk::upload(model.params_data(), src, pl.total);
  };
  if (eval_file) {
    std::vector<float> host(pl.total, 0.0f);
    Bk::download(host.data(), model.params_data(), pl.total);
    const FinetuneInit r = load_finetune_weights(eval_file->w, cfg, pl, host.data());
    for (const auto& n : r.missing) fail(source, ": missing tensor '", n, "' of the classifier");
    Bk::upload(model.params_data(), host.data(), pl.total);
  } else if (!a.finetune.empty()) {
    float* hp = params_host();
    const FinetuneInit r = load_finetune_weights(ft, cfg, pl, hp);
    params_from_host(hp);
    // trunc_normal_(model.head.weight, std=2e-5)
    model.init_head(Rng::derive(init_key, 1), 2e-5);
    std::string miss, ign;
    for (const auto& n : r.missing) miss += (miss.empty() ? "" : ", ") + n;
    if (root) std::fprintf(stderr, "load %s (%s, config from %s): %zu tensors; initialised: %s; ignored %zu%s%s\n",
                 a.finetune.c_str(), ft.format.c_str(), ft.config_source.c_str(), r.loaded.size(),
                 miss.empty() ? "none" : miss.c_str(), r.ignored.size(),
                 r.ignored.empty() ? "" : " (decoder, mask_token, ...)",
                 r.pos_note.empty() ? "" : ("; pos_embed " + r.pos_note).c_str());
  }
  size_t n_parameters = 0;
  for (const auto& s : pl.specs) n_parameters += s.numel;

  // ---- loaders ----
  const Normalization norm = normalization_for_channels(ref_ds.normalization(), cfg.in_chans);
  LoaderConfig vc;
  vc.batch_size = a.batch_size;
  vc.seed = a.seed;
  vc.num_workers = a.num_workers;
  vc.shuffle = false;
  vc.drop_last = false;
  vc.transform.size = cfg.img_size;
  vc.transform.channels = cfg.in_chans;
  vc.transform.train = false;  // Resize(int(S / crop_pct), bicubic) + CenterCrop(S)
  vc.transform.crop_pct = cfg.img_size <= 224 ? 224.0 / 256.0 : 1.0;
  vc.transform.norm = norm;
  Loader val_loader(*val_ds, vc);
  std::vector<float> targets(size_t(a.batch_size) * cc.nb_classes);

  if (root)
    std::fprintf(stderr, "model: %s %s, %s, %zu parameters\n", source.c_str(), config_to_json(cfg).dump().c_str(),
                 classifier_to_json(cc).dump().c_str(), n_parameters);
  if (a.eval) {
    if (!root) return result;  // rank 0 evaluates alone
    const EvalStats s = evaluate(model, val_loader, cc.nb_classes, targets);
    std::printf("Accuracy of the network on the %lld test images: %.1f%%\n", (long long)s.n, s.acc1);
    std::printf("acc1 %.3f acc5 %.3f loss %.4f\n", s.acc1, s.acc5, s.loss);
    result.best_acc1 = result.last_acc1 = s.acc1;
    result.last_acc5 = s.acc5, result.last_test_loss = s.loss;
    return result;
  }

  std::error_code ec;
  if (root) {
    fs::create_directories(a.output_dir, ec);
    if (ec) fail("--output_dir ", a.output_dir, ": cannot create: ", ec.message());
    fs::create_directories(log_dir, ec);
    if (ec) fail("--log_dir ", log_dir, ": cannot create: ", ec.message());
    const std::string probe = (fs::path(a.output_dir) / ".write_test").string();
    io::write_file_atomic(probe, std::string("ok"));
    fs::remove(probe, ec);
  }

  LoaderConfig tc;
  tc.batch_size = a.batch_size;
  tc.seed = a.seed;
  tc.num_workers = a.num_workers;
  tc.rank = dist::rank();
  tc.world = world;
  tc.transform.size = cfg.img_size;
  tc.transform.channels = cfg.in_chans;
  tc.transform.train = true;  // RandomResizedCrop(scale 0.08–1, bicubic) + flip + RandAugment + RandomErasing
  tc.transform.scale_min = 0.08;
  tc.transform.norm = norm;
  tc.transform.auto_augment = a.aa;
  tc.transform.erasing.prob = a.reprob;
  tc.transform.erasing.mode = a.remode;
  tc.transform.erasing.max_count = a.recount;
  if (int64_t(train_ds->size()) < int64_t(a.batch_size) * world)
    fail(train_ds->description(), ": ", train_ds->size(), " images is fewer than one batch of ", a.batch_size,
         world > 1 ? " × " + std::to_string(world) + " ranks" : std::string());
  Loader loader(*train_ds, tc);
  const int64_t iters = loader.batches_per_epoch();

  const int eff_batch = a.batch_size * a.accum_iter * world;  // main_finetune.py: × misc.get_world_size()
  const double lr = a.lr > 0 ? a.lr : a.blr * eff_batch / 256.0;
  const std::vector<double> scales = layer_lr_scales(cfg.depth, a.layer_decay);
  std::vector<float> mom(pl.total, 0.0f), var(pl.total, 0.0f);  // AdamW moments (host: the optimizer's own)
  float* dmom = kHost ? mom.data() : Bk::template alloc<float>(pl.total);  // ... in the backend's memory
  float* dvar = kHost ? var.data() : Bk::template alloc<float>(pl.total);
  struct Release {
    float *m, *v;
    ~Release() {
      if constexpr (!kHost) Bk::release(m), Bk::release(v);
    }
  } release_moments{dmom, dvar};
  FtState st;
  std::string resume = a.resume;
  if (root) {  // rank 0 reads the checkpoint; the others get its contents by broadcast below
    if (resume == "auto") {
      const fs::path last = fs::path(a.output_dir) / "checkpoint-last.safetensors";
      resume = fs::exists(last) ? last.string() : "";
      if (resume.empty())
        std::fprintf(stderr, "resume auto: no checkpoint in %s, starting fresh\n", a.output_dir.c_str());
    }
    if (!resume.empty()) {
      st = load_checkpoint(resume, model, params_host(), mom, var);
      std::fprintf(stderr, "resumed %s: epoch %d, step %ld, max accuracy %.2f%%\n", resume.c_str(), st.epoch, st.step,
                   st.max_accuracy);
    }
  }
  // Every rank starts from rank 0's weights and optimizer state. (The position is whole epochs: any rank count
  // can resume.)
  dist::broadcast_value(st);
  {
    // rank 0's host copy (loaded above, or the device's weights) to every rank, then to the device
    float* hp = (!kHost && !resume.empty() && root) ? hp_mirror.data() : params_host();
    dist::broadcast(hp, pl.total * sizeof(float));
    params_from_host(hp);
  }
  dist::broadcast(mom.data(), pl.total * sizeof(float));
  dist::broadcast(var.data(), pl.total * sizeof(float));
  if constexpr (!kHost) {
    Bk::upload(dmom, mom.data(), pl.total);
    Bk::upload(dvar, var.data(), pl.total);
  }

  const std::string ck_last = (fs::path(a.output_dir) / "checkpoint-last.safetensors").string();
  const std::string ck_best = (fs::path(a.output_dir) / "checkpoint-best.safetensors").string();
  const std::string log_txt = (fs::path(log_dir) / "log.txt").string();
  const std::string curve_svg = (fs::path(log_dir) / "accuracy_curve.svg").string();
  Series acc1s{"test acc@1", {}, {}, "#1f77b4", true}, acc5s{"test acc@5", {}, {}, "#2ca02c", true};
  if (root) {  // keep the epochs the checkpoint has seen
    std::string kept;
    std::ifstream in(log_txt);
    std::string line;
    while (std::getline(in, line)) try {
        auto j = nlohmann::json::parse(line);
        if (j.value("epoch", 1 << 30) < st.epoch) {
          kept += line + "\n";
          acc1s.x.push_back(j["epoch"].get<int>() + 1.0), acc1s.y.push_back(j.value("test_acc1", NAN));
          acc5s.x.push_back(j["epoch"].get<int>() + 1.0), acc5s.y.push_back(j.value("test_acc5", NAN));
        }
      } catch (...) {
      }
    io::write_file_atomic(log_txt, kept);
  }

  const nlohmann::json args = args_json(a);
  const MixupConfig mix = mixup_config(a, cc.nb_classes);
  const uint64_t mix_key = Rng::derive(a.seed, stream::mixup), drop_key = Rng::derive(a.seed, stream::drop);
  if (root) {
    std::fprintf(stderr, "data: %s\neval: %s\n", train_ds->description().c_str(), val_ds->description().c_str());
    std::fprintf(stderr, "base lr: %.3e  actual lr: %.3e  effective batch: %d  accum_iter: %d  layer_decay: %g  "
                 "threads: %d  workers: %d\n", a.blr, lr, eff_batch, a.accum_iter, a.layer_decay,
                 omp_get_max_threads(), a.num_workers);
    if (world > 1)
      std::fprintf(stderr, "data parallel: %d ranks × batch %d (global batch %d), %d threads per rank\n", world,
                   a.batch_size, a.batch_size * world, omp_get_max_threads());
    std::fprintf(stderr, "criterion: %s\n", mix.active() ? "SoftTargetCrossEntropy (mixup/cutmix)"
                                            : a.smoothing > 0 ? "LabelSmoothingCrossEntropy" : "CrossEntropyLoss");
  }
  const int C = cfg.in_chans, S = cfg.img_size;
  std::vector<float> mixed(mix.active() ? size_t(a.batch_size) * C * S * S : 0);
  Staged<Bk> img_stage, tgt_stage;
  std::vector<float> hg_mirror;  // device backends with several ranks: the gradients on their way to the all-reduce
  const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // torch.optim.AdamW(param_groups, lr) defaults
  Progress progress(a.print_every_s);
  double max_acc = st.max_accuracy;
  const auto t_run = std::chrono::steady_clock::now();

  const int end_epoch = a.stop_epoch > 0 ? std::min(a.stop_epoch, a.epochs) : a.epochs;
  for (int epoch = st.epoch; epoch < end_epoch; ++epoch) {
    model.set_training(true);
    model.zero_grad();
    loader.start_epoch(epoch);
    double loss_sum = 0, lr_sum = 0;
    long n = 0;
    float cur_lr = 0;
    const auto t_epoch = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) {
      const Batch* b = loader.next();
      if (!b) break;
      // lr_sched.adjust_learning_rate(optimizer, data_iter_step / len(data_loader) + epoch, args) per accum window
      if (i % a.accum_iter == 0)
        cur_lr = float(lr_at(double(i) / iters + epoch, lr, a.min_lr, a.warmup_epochs, a.epochs));
      const int B = b->size;
      // samples, targets = mixup_fn(samples, targets)   (the mix of batch i is keyed by (seed, epoch, i))
      const float* images = b->images.data();
      if (mix.active()) {
        Rng r = Rng::keyed(mix_key, uint64_t(epoch), uint64_t(i));
        const MixParams mp = mixup_draw(mix, r, S, S);
        std::copy(b->images.begin(), b->images.end(), mixed.begin());
        mixup_apply(mixed.data(), B, C, S, S, mp);
        images = mixed.data();
        mixup_targets(targets.data(), b->labels.data(), B, cc.nb_classes, mp.lam, a.smoothing);
      } else {
        mixup_targets(targets.data(), b->labels.data(), B, cc.nb_classes, 1.0, a.smoothing);
      }
      if (model.blocks().drop_path_active())
        model.blocks().draw_drop_path(drop_key, uint64_t(epoch), b->indices.data(), B);
      model.forward(img_stage.put(images, size_t(B) * C * S * S), B);
      double loss_d = model.loss(tgt_stage.put(targets.data(), size_t(B) * cc.nb_classes), B);
      dist::allreduce_sum(&loss_d, 1);  // the global batch's loss: the mean of the ranks' equal-sized slices
      const float loss = float(loss_d / world);
      if (!std::isfinite(loss)) {
        progress.done();
        fail("Loss is ", loss, ", stopping training (epoch ", epoch, " batch ", i, "; last checkpoint ",
             fs::exists(ck_last) ? ck_last : std::string("none"), "): try a lower --blr or more --warmup_epochs");
      }
      model.backward(1.0f / float(a.accum_iter), B);  // loss /= accum_iter
      if ((i + 1) % a.accum_iter == 0) {
        // one blocking all-reduce of the flat gradient buffer (through host memory from a device)
        if constexpr (kHost) {
          dist::allreduce_mean(model.grads_data(), pl.total);
        } else if (world > 1) {
          hg_mirror.resize(pl.total);
          Bk::download(hg_mirror.data(), model.grads_data(), pl.total);
          dist::allreduce_mean(hg_mirror.data(), pl.total);
          Bk::upload(model.grads_data(), hg_mirror.data(), pl.total);
        }
        ++st.step;
        // AdamW over the lr-decay groups: lr · lr_scale[layer_id], weight decay only where the group has it
        for (const auto& s : pl.specs)
          Bk::adamw_update(model.params_data() + s.offset, dmom + s.offset, dvar + s.offset,
                           model.grads_data() + s.offset, s.numel, float(cur_lr * scales[size_t(s.layer_id)]), beta1,
                           beta2, eps, s.decay ? float(a.weight_decay) : 0.0f, st.step);
        model.zero_grad();
      }
      loss_sum += loss, lr_sum += cur_lr, ++n;  // max lr over the groups = lr · 1 (the head's scale)
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
      char line[256];
      std::snprintf(line, sizeof line, "epoch %d/%d  batch %lld/%lld  loss %.4f  lr %.3e  %.1f img/s", epoch + 1,
                    a.epochs, (long long)(i + 1), (long long)iters, loss, cur_lr,
                    double(n) * B * world / std::max(el, 1e-9));
      if (root) progress.update(line, i + 1 == iters);
    }
    progress.done();
    const double train_loss = loss_sum / std::max<long>(n, 1), train_lr = lr_sum / std::max<long>(n, 1);
    st.epoch = epoch + 1;
    ++result.epochs_run;
    result.last_train_loss = train_loss;
    if (!root) continue;  // the others go on to the next epoch and wait for rank 0 in its first all-reduce
    const EvalStats ev = evaluate(model, val_loader, cc.nb_classes, targets);
    std::fprintf(stderr, "Accuracy of the network on the %lld test images: %.1f%%\n", (long long)ev.n, ev.acc1);
    const bool best = ev.acc1 > max_acc || !fs::exists(ck_best);
    max_acc = std::max(max_acc, ev.acc1);
    std::fprintf(stderr, "Max accuracy: %.2f%%\n", max_acc);
    st.max_accuracy = max_acc;
    const float* hp = params_host();
    save_checkpoint(ck_last, model, hp, on_host<Bk>(dmom, pl.total, mom), on_host<Bk>(dvar, pl.total, var), st, args);
    if (best) save_checkpoint(ck_best, model, hp, nullptr, nullptr, st, args);
    // log_stats = {**{f'train_{k}'}, **{f'test_{k}'}, 'epoch': epoch, 'n_parameters': n_parameters}
    nlohmann::json row = {{"train_lr", train_lr}, {"train_loss", train_loss}, {"test_loss", ev.loss},
                          {"test_acc1", ev.acc1}, {"test_acc5", ev.acc5},     {"epoch", epoch},
                          {"n_parameters", n_parameters}};
    append_line(log_txt, row.dump());
    acc1s.x.push_back(epoch + 1.0), acc1s.y.push_back(ev.acc1);
    acc5s.x.push_back(epoch + 1.0), acc5s.y.push_back(ev.acc5);
    write_curve_svg(curve_svg, "fine-tuning: test accuracy", "epoch", "accuracy (%)", {acc1s, acc5s});
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    std::fprintf(stderr, "epoch %d: train loss %.4f, test acc@1 %.2f acc@5 %.2f loss %.4f, %.1f s -> %s\n", epoch + 1,
                 train_loss, ev.acc1, ev.acc5, ev.loss, el, ck_last.c_str());
    result.last_acc1 = ev.acc1, result.last_acc5 = ev.acc5, result.last_test_loss = ev.loss;
  }
  result.best_acc1 = max_acc;
  dist::barrier();  // rank 0's checkpoints are complete before any rank reports success
  if (!root) return result;
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
  std::fprintf(stderr, "done in %s: max accuracy %.2f%%; checkpoints %s, %s; log %s\n",
               format_duration(total).c_str(), max_acc, ck_last.c_str(), ck_best.c_str(), log_txt.c_str());
  return result;
}

FinetuneResult run_finetune(const FinetuneArgs& a) {
  validate(a);
  if (a.device == "cuda") {
#ifdef MAE_CUDA
    return run_finetune_on<CudaBackend<float>>(a);
#else
    fail("--device cuda: this mae was built without CUDA");
#endif
  }
  return run_finetune_on<CpuBackend<float>>(a);
}

}  // namespace mae
