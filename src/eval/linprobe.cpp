#include "eval/linprobe.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "dist/comm.h"
#include "eval/frozen_encoder.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "ops/ops.h"
#include "train/curve.h"
#include "train/lars.h"
#include "train/progress.h"
#include "train/schedule.h"

namespace mae {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kHeadInitTag = 0x68656164;  // "head": the probe's initialisation stream
constexpr float kBnEps = 1e-6f;                // BatchNorm1d(D, affine=False, eps=1e-6)
constexpr float kBnMomentum = 0.1f;            // torch default
constexpr int kEncoderBatch = 64;              // images per encoder forward (activation memory, not semantics)

// model.head = Sequential(BatchNorm1d(D, affine=False, eps=1e-6), Linear(D, C)). Only the Linear is trained.
struct ProbeHead {
  int D, C;
  std::vector<float> W, b, muW, mub, gW, gb;  // (C, D), (C): weights, LARS momentum, gradients
  std::vector<float> rmean, rvar;             // (D): BN running statistics
  int64_t batches_tracked = 0;
  // scratch for batches of up to Bmax
  std::vector<float> xn, mean, rstd, logits, probs, targets, dlogits, lars_scratch;

  ProbeHead(int D_, int C_, int Bmax)
      : D(D_), C(C_), W(size_t(C_) * D_), b(C_), muW(W.size()), mub(C_), gW(W.size()), gb(C_), rmean(D_, 0.0f),
        rvar(D_, 1.0f), xn(size_t(Bmax) * D_), mean(D_), rstd(D_), logits(size_t(Bmax) * C_), probs(logits.size()),
        targets(logits.size()), dlogits(logits.size()), lars_scratch(W.size()) {}

  // trunc_normal_(model.head.weight, std=0.01) (timm: cut at ±2 absolute); bias 0 (timm's Linear init).
  void init(uint64_t seed) {
    Rng r = Rng::keyed(Rng::derive(seed, kHeadInitTag), 0, 0);
    for (auto& w : W) {
      double v;
      do v = r.normal(0.0, 0.01);
      while (v < -2.0 || v > 2.0);
      w = float(v);
    }
    std::fill(b.begin(), b.end(), 0.0f);
  }

  // One micro-batch in training mode: f (B, D) features, y (B) labels. grads += dloss · ∂loss/∂(W, b).
  float train_forward_backward(const float* f, const int32_t* y, int B, float dloss) {
    // BatchNorm in training mode: batch statistics, running stats updated
    cpu::batchnorm1d_train_forward<float>(xn.data(), mean.data(), rstd.data(), rmean.data(), rvar.data(), f, B, D,
                                          kBnEps, kBnMomentum);
    ++batches_tracked;
    cpu::linear_forward<float>(logits.data(), xn.data(), W.data(), b.data(), B, D, C);  // (B, C)
    // criterion = torch.nn.CrossEntropyLoss(): one-hot targets
    std::fill(targets.begin(), targets.begin() + size_t(B) * C, 0.0f);
    for (int i = 0; i < B; ++i) targets[size_t(i) * C + y[i]] = 1.0f;
    const float loss = cpu::softmax_xent_forward<float>(probs.data(), logits.data(), targets.data(), B, C);
    std::fill(dlogits.begin(), dlogits.begin() + size_t(B) * C, 0.0f);
    cpu::softmax_xent_backward<float>(dlogits.data(), dloss, probs.data(), targets.data(), B, C);
    // Nothing flows below the Linear: the BN has no parameters and the encoder is frozen.
    cpu::linear_backward<float>(nullptr, gW.data(), gb.data(), dlogits.data(), xn.data(), W.data(), B, D, C);
    return loss;
  }

  void step(double lr, const LarsConfig& c) {
    // Data parallel: the gradients of the ranks' slices averaged (the head is tiny: two all-reduces per update).
    dist::allreduce_mean(gW.data(), gW.size());
    dist::allreduce_mean(gb.data(), gb.size());
    lars_update<float>(W.data(), muW.data(), gW.data(), W.size(), /*matrix=*/true, lr, c, lars_scratch.data());
    lars_update<float>(b.data(), mub.data(), gb.data(), b.size(), /*matrix=*/false, lr, c, lars_scratch.data());
    std::fill(gW.begin(), gW.end(), 0.0f);  // optimizer.zero_grad()
    std::fill(gb.begin(), gb.end(), 0.0f);
  }

  // model.eval(): BN with running statistics. f (B, D) → out (B, C).
  void eval_logits(const float* f, int B, float* out) {
    cpu::batchnorm1d_eval_forward<float>(xn.data(), f, rmean.data(), rvar.data(), B, D, kBnEps);
    cpu::linear_forward<float>(out, xn.data(), W.data(), b.data(), B, D, C);
  }
};

struct EvalStats {
  double loss = 0, acc1 = 0, acc5 = std::numeric_limits<double>::quiet_NaN();
  int64_t n = 0;
};

// engine_finetune.evaluate: mean cross-entropy and top-1/top-5 over the test features (top-5 only with > 5 classes).
EvalStats evaluate(ProbeHead& h, const FeatureSet& test, int batch) {
  const int C = h.C;
  std::vector<float> logits(size_t(batch) * C);
  double loss = 0;
  int64_t c1 = 0, c5 = 0;
  for (int64_t i0 = 0; i0 < test.n; i0 += batch) {
    const int B = int(std::min<int64_t>(batch, test.n - i0));
    h.eval_logits(test.x.data() + size_t(i0) * test.dim, B, logits.data());
    for (int i = 0; i < B; ++i) {
      const float* z = logits.data() + size_t(i) * C;
      const int y = test.labels[i0 + i];
      double mx = z[0];
      for (int c = 1; c < C; ++c) mx = std::max(mx, double(z[c]));
      double se = 0;
      for (int c = 0; c < C; ++c) se += std::exp(double(z[c]) - mx);
      loss += mx + std::log(se) - z[y];
      int rank = 0;  // classes ranked above y; ties go to the lower class index
      for (int c = 0; c < C; ++c) rank += (z[c] > z[y]) || (z[c] == z[y] && c < y);
      c1 += rank == 0;
      c5 += rank < 5;
    }
  }
  EvalStats s;
  s.n = test.n;
  s.loss = loss / double(std::max<int64_t>(test.n, 1));
  s.acc1 = 100.0 * double(c1) / double(std::max<int64_t>(test.n, 1));
  if (C > 5) s.acc5 = 100.0 * double(c5) / double(std::max<int64_t>(test.n, 1));
  return s;
}

nlohmann::json nan_to_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// ---- probe checkpoints ----

struct ProbeFile {
  std::string path;
  nlohmann::json info;            // "linprobe" metadata: epoch, nb_classes, dim, global_pool, ...
  nlohmann::json encoder_config;  // the encoder's ModelConfig as JSON
  std::string encoder_checkpoint;
  std::string encoder_fingerprint;
};

std::string hex64(uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", (unsigned long long)v);
  return b;
}

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
    (void)p.info.at("epoch").get<int>();
    (void)p.info.at("global_pool").get<bool>();
  } catch (const std::exception& e) {
    fail(path, ": malformed linear-probe metadata: ", e.what());
  }
  return p;
}

void load_probe_tensors(const ProbeFile& p, ProbeHead& h, bool with_momentum) {
  io::SafeTensorsReader f(p.path);
  const int64_t C = h.C, D = h.D;
  f.read_f32("head.weight", h.W.data(), {C, D});
  f.read_f32("head.bias", h.b.data(), {C});
  f.read_f32("head_bn.running_mean", h.rmean.data(), {D});
  f.read_f32("head_bn.running_var", h.rvar.data(), {D});
  if (f.has("head_bn.num_batches_tracked")) {
    const auto v = f.read_i64("head_bn.num_batches_tracked");
    if (!v.empty()) h.batches_tracked = v[0];
  }
  if (with_momentum) {
    f.read_f32("optim.mu.head.weight", h.muW.data(), {C, D});
    f.read_f32("optim.mu.head.bias", h.mub.data(), {C});
  }
}

void save_probe(const std::string& path, const ProbeHead& h, const nlohmann::json& info, const nlohmann::json& source_cfg,
                const std::string& enc_path, uint64_t fingerprint) {
  const int64_t C = h.C, D = h.D;
  const int64_t nbt = h.batches_tracked;
  std::vector<io::TensorOut> t = {
      {"head.weight", io::DType::F32, {C, D}, h.W.data()},
      {"head.bias", io::DType::F32, {C}, h.b.data()},
      {"head_bn.running_mean", io::DType::F32, {D}, h.rmean.data()},
      {"head_bn.running_var", io::DType::F32, {D}, h.rvar.data()},
      {"head_bn.num_batches_tracked", io::DType::I64, {}, &nbt},
      {"optim.mu.head.weight", io::DType::F32, {C, D}, h.muW.data()},
      {"optim.mu.head.bias", io::DType::F32, {C}, h.mub.data()},
  };
  std::error_code ec;
  const fs::path abs = enc_path.empty() ? fs::path() : fs::absolute(enc_path, ec);
  io::write_safetensors(path, t,
                        {{"linprobe", info.dump()},
                         {"encoder_config", source_cfg.dump()},
                         {"encoder_checkpoint", ec || enc_path.empty() ? enc_path : abs.lexically_normal().string()},
                         {"encoder_fingerprint", hex64(fingerprint)},
                         {"format", "pt"}});
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream o(path, std::ios::app);
  o << line << "\n";
  o.flush();
  if (!o) fail(path, ": cannot append: ", std::strerror(errno));
}

void check_labels(const Dataset& ds, int C, const std::string& split) {
  for (size_t i = 0; i < ds.size(); ++i)
    if (ds.label(i) < 0 || ds.label(i) >= C)
      fail(split, " split: label ", ds.label(i), " of ", ds.item_name(i), " is outside the probe's ", C,
           " classes (0..", C - 1, "): ", ds.description());
}

std::string fmt_acc5(double v) {
  if (!std::isfinite(v)) return "";
  char b[32];
  std::snprintf(b, sizeof b, "  acc5 %.2f%%", v);
  return b;
}

}  // namespace

// Data parallel (dist/comm.h): every rank runs the frozen encoder on its slice of each global batch (a.batch_size ×
// world) and the head's gradients are averaged per update. BatchNorm1d is the official plain one, not SyncBN: its
// batch statistics are each rank's own slice's (as main_linprobe.py on several GPUs), each rank keeps its own
// running statistics, and rank 0's are the ones saved and used for evaluation. Rank 0 alone extracts the test
// features and evaluates (so the accuracy is a single process's on the whole test split), prints and writes.
LinprobeResult run_linprobe(const LinprobeArgs& a) {
  const int world = dist::world(), rank = dist::rank();
  const bool root = dist::is_root();
  // ---- flags ----
  if (a.batch_size < 2) fail("--batch_size must be ≥ 2 (BatchNorm needs more than one sample), got ", a.batch_size);
  if (a.epochs < 1) fail("--epochs must be ≥ 1, got ", a.epochs);
  if (a.accum_iter < 1) fail("--accum_iter must be ≥ 1, got ", a.accum_iter);
  if (a.weight_decay < 0) fail("--weight_decay must be ≥ 0");
  if (a.lr < 0 || a.blr <= 0 || a.min_lr < 0) fail("--lr/--min_lr must be ≥ 0 and --blr > 0");
  if (a.warmup_epochs < 0) fail("--warmup_epochs must be ≥ 0");
  if (a.nb_classes < 0) fail("--nb_classes must be ≥ 1 (or 0: from the data), got ", a.nb_classes);
  if (a.num_workers < 0) fail("--num_workers must be ≥ 0");
  if (a.start_epoch < 0) fail("--start_epoch must be ≥ 0");
  if (a.save_every < 0) fail("--save_every must be ≥ 0");
  const bool cached = a.cache_features && !a.eval;
  const std::string tag = cached ? " (cached features, no augmentation)" : "";
  const auto t_start = std::chrono::steady_clock::now();

  // ---- the probe to resume or evaluate, and the feature source ----
  std::unique_ptr<ProbeFile> probe;
  if (!a.resume.empty()) probe = std::make_unique<ProbeFile>(read_probe_meta(a.resume, a.eval));
  else if (a.eval)
    fail("--eval needs the probe to evaluate: --resume PROBE (a checkpoint written by mae linprobe)");
  bool global_pool = a.global_pool, raw = a.raw_pixels, random_init = a.random_init;
  uint64_t init_seed = a.seed;
  if (probe) {  // the probe's own feature settings win over the flags
    const bool pg = probe->info.at("global_pool").get<bool>();
    raw = probe->info.value("raw_pixels", false);
    random_init = probe->info.value("random_init", false);
    init_seed = probe->info.value("init_seed", uint64_t(0));
    if (!raw && pg != global_pool)
      std::fprintf(stderr, "note: %s was trained on the %s feature; using that\n", a.resume.c_str(),
                   pg ? "mean-of-patch-tokens (--global_pool)" : "cls-token (--cls_token)");
    global_pool = pg;
  }
  if (raw && random_init) fail("--raw_pixels and --random_init are two different baselines: pick one");
  std::string enc_path = a.finetune;
  if (enc_path.empty() && probe && !raw) {
    enc_path = probe->encoder_checkpoint;
    if (!fs::exists(enc_path))
      fail(a.resume, " was trained on the encoder ", enc_path, ", which no longer exists: give it with --finetune");
  }
  if (enc_path.empty() && !raw && !(random_init && !a.model.empty()))
    fail("--finetune is required: the pretrained encoder checkpoint to probe (or --raw_pixels, or --random_init "
         "with --model NAME)");
  if (!enc_path.empty()) reject_probe_checkpoint(enc_path, "--finetune");

  // ---- data ----
  std::unique_ptr<Dataset> train;
  if (!a.eval) train = open_dataset(a.data_path, "train");
  auto test = open_dataset(a.data_path, "test");
  const Dataset& ref_ds = train ? *train : *test;

  // ---- encoder (none for raw pixels) ----
  std::unique_ptr<FrozenEncoder> enc;
  nlohmann::json source_cfg;  // what the probe was trained on, checked on resume/eval
  uint64_t fingerprint = 0;
  int S, Ch, D;
  std::string feature, source;
  if (raw) {
    S = ref_ds.height();
    if (S <= 0 || ref_ds.width() != S) {
      if (enc_path.empty() && a.model.empty())
        fail("--raw_pixels on images of varying size needs an image size: give --model NAME or --finetune");
      S = a.model.empty() ? load_weights_any(enc_path, "").config.img_size : preset(a.model).img_size;
    }
    Ch = ref_ds.channels();
    D = Ch * S * S;
    source_cfg = {{"raw_pixels", {{"img_size", S}, {"in_chans", Ch}}}};
    feature = "raw pixels (normalised image)";
    source = "no model";
  } else {
    enc = std::make_unique<FrozenEncoder>(EncoderSpec{enc_path, a.model, random_init, init_seed, a.device == "cuda"},
                                          std::min(a.batch_size, kEncoderBatch));
    const ModelConfig& cfg = enc->config();
    check_encoder_fits_data(cfg, enc_path.empty() ? "--model " + a.model : enc_path, ref_ds);
    S = cfg.img_size, Ch = cfg.in_chans, D = cfg.embed_dim;
    source_cfg = config_to_json(cfg);
    fingerprint = enc->fingerprint();
    feature = global_pool ? "mean of patch tokens" : "cls token";
    source = enc->description();
  }
  if (probe) {
    if (probe->encoder_config != source_cfg)
      fail(a.resume, " is a probe for features from ", probe->encoder_config.dump(), " but ",
           raw ? std::string("the data") : enc_path, " gives ", source_cfg.dump());
    if (!raw && !probe->encoder_fingerprint.empty() && probe->encoder_fingerprint != hex64(fingerprint))
      std::fprintf(stderr, "warning: %s holds other weights than the encoder %s was trained on (%s): its accuracy "
                   "will not carry over\n", enc_path.c_str(), a.resume.c_str(), probe->encoder_checkpoint.c_str());
    if (probe->info.at("dim").get<int>() != D)
      fail(a.resume, ": probe width ", probe->info.at("dim").get<int>(), " but the features are ", D, "-d");
  }

  int C;
  if (probe) {
    C = probe->info.at("nb_classes").get<int>();
    if (a.nb_classes > 0 && a.nb_classes != C)
      fail("--nb_classes ", a.nb_classes, " does not match the probe ", a.resume, ", which has ", C, " classes");
    if (train && train->num_classes() != C)
      fail(a.resume, " is a ", C, "-class probe but the data has ", train->num_classes(), " classes: ",
           train->description());
  } else {
    C = train->num_classes();
    if (a.nb_classes > 0 && a.nb_classes != C)
      fail("--nb_classes ", a.nb_classes, " does not match the data: ", train->description(), " has ", C,
           " classes (labels 0..", C - 1, "); leave --nb_classes out to take it from the data");
  }
  if (C < 2) fail("the data has ", C, " class: a classifier needs at least 2 (", ref_ds.description(), ")");
  if (train) check_labels(*train, C, "train");
  check_labels(*test, C, "test");

  ProbeHead head(D, C, a.batch_size);
  if (root) {
    std::fprintf(stderr, "encoder: %s\n", source.c_str());
    std::fprintf(stderr, "feature: %s (%d-d) -> BatchNorm1d(affine=False, eps 1e-6) -> Linear(%d, %d)%s\n",
                 feature.c_str(), D, D, C, tag.c_str());
    if (train) std::fprintf(stderr, "train: %s\n", train->description().c_str());
    std::fprintf(stderr, "test: %s\n", test->description().c_str());
  }

  const TransformConfig eval_tc = probe_eval_transform(ref_ds, S, Ch);
  // The encoder is frozen and the eval transform deterministic: test features are the same every epoch.
  FeatureSet test_f;
  if (root)
    test_f = extract_features(enc.get(), *test, eval_tc, global_pool, a.batch_size, a.num_workers,
                              "test features" + tag);

  LinprobeResult res;
  if (a.eval && !root) return res;  // rank 0 evaluates alone
  if (a.eval) {
    load_probe_tensors(*probe, head, false);
    const EvalStats s = evaluate(head, test_f, a.batch_size);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf("Accuracy of the network on the %lld test images: %.2f%%  (%sloss %.4f; probe %s, %s; %.1f s)\n",
                (long long)s.n, s.acc1, std::isfinite(s.acc5) ? (fmt_acc5(s.acc5).substr(2) + ", ").c_str() : "",
                s.loss, a.resume.c_str(), feature.c_str(), total);
    res.acc1 = res.max_acc1 = s.acc1;
    res.acc5 = s.acc5;
    res.loss = s.loss;
    return res;
  }

  // ---- output ----
  std::error_code ec;
  if (root) {
    fs::create_directories(a.output_dir, ec);
    if (ec) fail("--output_dir ", a.output_dir, ": cannot create: ", ec.message());
    const std::string probe_file = (fs::path(a.output_dir) / ".write_test").string();
    io::write_file_atomic(probe_file, std::string("ok"));
    fs::remove(probe_file, ec);
  }
  const std::string ck_last = (fs::path(a.output_dir) / "checkpoint-last.safetensors").string();
  const std::string log_txt = (fs::path(a.output_dir) / "log.txt").string();
  const std::string curve_svg = (fs::path(a.output_dir) / "accuracy_curve.svg").string();

  // ---- head state ----
  int start_epoch = a.start_epoch;
  double max_acc = 0;
  if (probe) {
    load_probe_tensors(*probe, head, true);
    start_epoch = probe->info.at("epoch").get<int>() + 1;
    max_acc = probe->info.value("max_acc1", 0.0);
    if (root)
      std::fprintf(stderr, "resumed %s: epoch %d done, continuing at epoch %d\n", a.resume.c_str(), start_epoch - 1,
                   start_epoch);
  } else {
    head.init(a.seed);
  }
  // Every rank starts from rank 0's head (and BN running statistics).
  dist::broadcast(head.W.data(), head.W.size() * sizeof(float));
  dist::broadcast(head.b.data(), head.b.size() * sizeof(float));
  dist::broadcast(head.muW.data(), head.muW.size() * sizeof(float));
  dist::broadcast(head.mub.data(), head.mub.size() * sizeof(float));
  dist::broadcast(head.rmean.data(), head.rmean.size() * sizeof(float));
  dist::broadcast(head.rvar.data(), head.rvar.size() * sizeof(float));
  dist::broadcast_value(head.batches_tracked);
  // keep the log rows of the epochs the probe has seen
  std::vector<nlohmann::json> rows;
  if (root) {
    std::string kept;
    if (probe && fs::exists(log_txt)) {
      std::ifstream in(log_txt);
      std::string line;
      while (std::getline(in, line)) try {
          auto j = nlohmann::json::parse(line);
          if (j.value("epoch", 1 << 30) < start_epoch) rows.push_back(j), kept += line + "\n";
        } catch (...) {
        }
    }
    io::write_file_atomic(log_txt, kept);
  }

  const int eff_batch = a.batch_size * a.accum_iter * world;  // main_linprobe.py: × misc.get_world_size()
  const double lr = a.lr > 0 ? a.lr : a.blr * eff_batch / 256.0;
  LarsConfig lc;
  lc.weight_decay = a.weight_decay;
  if (root) {
    std::fprintf(stderr, "base lr: %.2e  actual lr: %.2e  accumulate grad iterations: %d  effective batch size: %d  "
                 "threads: %d%s\n", lr * 256.0 / eff_batch, lr, a.accum_iter, eff_batch, omp_get_max_threads(),
                 tag.c_str());
    if (world > 1)
      std::fprintf(stderr, "data parallel: %d ranks × batch %d (global batch %d); BatchNorm statistics per rank\n",
                   world, a.batch_size, a.batch_size * world);
    std::fprintf(stderr, "number of params (M): %.4f%s\n", double(D * C + C) / 1e6, tag.c_str());
  }

  // ---- training features / loader ----
  FeatureSet train_f;
  std::unique_ptr<Loader> loader;
  int64_t iters;
  if (cached) {
    train_f = extract_features(enc.get(), *train, eval_tc, global_pool, a.batch_size, a.num_workers, "train features" + tag);
    iters = train_f.n / (int64_t(a.batch_size) * world);  // drop_last=True, as the official train loader
  } else {
    LoaderConfig lcfg;
    lcfg.batch_size = a.batch_size;
    lcfg.seed = a.seed;
    lcfg.num_workers = a.num_workers;
    lcfg.rank = rank;
    lcfg.world = world;
    lcfg.shuffle = true;
    lcfg.drop_last = true;
    lcfg.transform.size = S;
    lcfg.transform.channels = Ch;
    lcfg.transform.train = true;  // RandomResizedCrop(S, interpolation=3): default scale (0.08, 1) + flip
    lcfg.transform.scale_min = 0.08;
    lcfg.transform.scale_max = 1.0;
    lcfg.transform.norm = eval_tc.norm;
    loader = std::make_unique<Loader>(*train, lcfg);
    iters = loader->batches_per_epoch();
  }
  if (iters < 1)
    fail(train->description(), ": ", train->size(), " images is fewer than one batch of ", a.batch_size,
         world > 1 ? " × " + std::to_string(world) + " ranks" : std::string(), " (training drops the last partial batch)");
  std::vector<float> feats(size_t(a.batch_size) * D);
  std::vector<int32_t> labels(a.batch_size);
  std::vector<int64_t> perm(cached ? train_f.n : 0);

  const nlohmann::json args = {
      {"finetune", enc_path}, {"model", a.model}, {"nb_classes", C}, {"global_pool", global_pool},
      {"batch_size", a.batch_size}, {"epochs", a.epochs}, {"accum_iter", a.accum_iter},
      {"weight_decay", a.weight_decay}, {"lr", lr}, {"blr", a.blr}, {"min_lr", a.min_lr},
      {"warmup_epochs", a.warmup_epochs}, {"data_path", a.data_path}, {"seed", a.seed},
      {"cache_features", cached}, {"raw_pixels", raw}, {"random_init", random_init}};
  Progress progress(a.print_every_s);
  Series acc_series{"test top-1", {}, {}, "#d62728", true};
  for (const auto& r : rows)
    if (r.contains("test_acc1") && r["test_acc1"].is_number())
      acc_series.x.push_back(r["epoch"].get<int>() + 1.0), acc_series.y.push_back(r["test_acc1"].get<double>());
  EvalStats last;
  const uint64_t shuffle_key = Rng::derive(a.seed, stream::shuffle);

  for (int epoch = start_epoch; epoch < a.epochs; ++epoch) {
    const auto t_epoch = std::chrono::steady_clock::now();
    if (cached) {
      // per-epoch permutation (Fisher–Yates), a function of (seed, epoch) alone
      for (int64_t i = 0; i < train_f.n; ++i) perm[i] = i;
      Rng r = Rng::keyed(shuffle_key, uint64_t(epoch), 0);
      for (int64_t i = train_f.n - 1; i > 0; --i) std::swap(perm[i], perm[r.uniform_int(uint64_t(i) + 1)]);
    } else {
      loader->start_epoch(epoch);
    }
    double loss_sum = 0, lr_sum = 0;
    float cur_lr = 0;
    for (int64_t it = 0; it < iters; ++it) {
      // lr_sched.adjust_learning_rate(optimizer, data_iter_step / len(data_loader) + epoch, args), per iteration
      if (it % a.accum_iter == 0) cur_lr = float(lr_at(double(it) / iters + epoch, lr, a.min_lr, a.warmup_epochs, a.epochs));
      int B = a.batch_size;
      if (cached) {
        for (int i = 0; i < B; ++i) {
          // global batch `it`, this rank's slice of it (rank-major, as the loader shards)
          const int64_t k = perm[(it * world + rank) * a.batch_size + i];
          std::memcpy(feats.data() + size_t(i) * D, train_f.x.data() + size_t(k) * D, size_t(D) * sizeof(float));
          labels[i] = train_f.labels[k];
        }
      } else {
        const Batch* b = loader->next();
        if (!b) fail("loader ended early at batch ", it, " of ", iters);
        B = b->size;
        if (enc) enc->encode(b->images.data(), B, global_pool, feats.data());
        else std::memcpy(feats.data(), b->images.data(), size_t(B) * D * sizeof(float));  // the image is the feature
        std::copy(b->labels.begin(), b->labels.begin() + B, labels.begin());
      }
      double loss_d = head.train_forward_backward(feats.data(), labels.data(), B, 1.0f / float(a.accum_iter));
      dist::allreduce_sum(&loss_d, 1);  // the global batch's loss: the mean over the ranks' equal slices
      const float loss = float(loss_d / world);
      if (!std::isfinite(loss))
        fail("loss is ", loss, " at epoch ", epoch + 1, " batch ", it + 1, ": stopping", tag, "; try a lower --blr");
      if ((it + 1) % a.accum_iter == 0) head.step(cur_lr, lc);
      loss_sum += loss, lr_sum += cur_lr;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
      char line[320];
      std::snprintf(line, sizeof line, "linprobe epoch %d/%d  batch %lld/%lld  loss %.4f  lr %.3e  %.0f img/s  ETA %s%s",
                    epoch + 1, a.epochs, (long long)(it + 1), (long long)iters, loss, cur_lr,
                    double(it + 1) * a.batch_size * world / std::max(el, 1e-9),
                    format_duration(el / double(it + 1) * double(iters - it - 1)).c_str(), tag.c_str());
      if (root) progress.update(line, it + 1 == iters);
    }
    progress.done();
    res.epochs_run++;
    if (!root) continue;  // the others go on to the next epoch and wait for rank 0 in its first all-reduce
    last = evaluate(head, test_f, a.batch_size);
    max_acc = std::max(max_acc, last.acc1);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    nlohmann::json row = {{"train_lr", lr_sum / double(iters)}, {"train_loss", loss_sum / double(iters)},
                          {"test_loss", last.loss}, {"test_acc1", last.acc1}, {"test_acc5", nan_to_null(last.acc5)},
                          {"epoch", epoch}, {"n_parameters", D * C + C}, {"epoch_time_s", el},
                          {"feature", feature}};
    if (cached) row["mode"] = "cached features, no augmentation";
    append_line(log_txt, row.dump());
    nlohmann::json info = {{"epoch", epoch}, {"epochs", a.epochs}, {"nb_classes", C}, {"dim", D},
                           {"global_pool", global_pool}, {"cached_features", cached}, {"raw_pixels", raw},
                           {"random_init", random_init}, {"init_seed", init_seed}, {"test_acc1", last.acc1},
                           {"max_acc1", max_acc}, {"args", args}};
    save_probe(ck_last, head, info, source_cfg, enc_path, fingerprint);
    if (a.save_every > 0 && ((epoch + 1) % a.save_every == 0 || epoch + 1 == a.epochs))
      save_probe((fs::path(a.output_dir) / ("checkpoint-" + std::to_string(epoch) + ".safetensors")).string(), head,
                 info, source_cfg, enc_path, fingerprint);
    acc_series.x.push_back(epoch + 1.0), acc_series.y.push_back(last.acc1);
    write_curve_svg(curve_svg, "Linear probe: test top-1" + tag, "epoch", "top-1 (%)", {acc_series});
    std::printf("epoch %d/%d: train_loss %.4f  lr %.3e | test loss %.4f  acc1 %.2f%%%s | Max accuracy: %.2f%% | %.1f s%s\n",
                epoch + 1, a.epochs, loss_sum / double(iters), lr_sum / double(iters), last.loss, last.acc1,
                fmt_acc5(last.acc5).c_str(), max_acc, el, tag.c_str());
    std::fflush(stdout);
  }
  dist::barrier();  // rank 0's checkpoints are complete before any rank reports success
  if (!root) return res;
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (res.epochs_run == 0) {
    std::fprintf(stderr, "nothing to do: the probe has already run %d of %d epochs%s\n", start_epoch, a.epochs,
                 tag.c_str());
    last = evaluate(head, test_f, a.batch_size);
  }
  std::printf("Accuracy of the network on the %lld test images: %.2f%% (max %.2f%%; %s; total %.1f s; probe %s)%s\n",
              (long long)test_f.n, last.acc1, std::max(max_acc, last.acc1), feature.c_str(), total, ck_last.c_str(),
              tag.c_str());
  std::fflush(stdout);
  res.acc1 = last.acc1;
  res.acc5 = last.acc5;
  res.loss = last.loss;
  res.max_acc1 = std::max(max_acc, last.acc1);
  return res;
}

}  // namespace mae
