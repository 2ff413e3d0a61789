// mae embed: frozen-encoder features of every image of a dataset split, for k-NN, probes, retrieval, plots.
//   OUT (.safetensors): features F32 (N, D); labels I64 (N) when the data has classes (more than one);
//   names U8 (newline-separated UTF-8 item names, index order); metadata: config, checkpoint, feature (what a row
//   is), normalize, dataset, split, class_names (JSON list).
// The output is written atomically once every image is encoded: an error leaves no file.
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/device.h"
#include "eval/frozen_encoder.h"
#include "core/error.h"
#include "core/limits.h"
#include "eval/features.h"
#include "io/safetensors.h"
#include "model/pretrained.h"
#include "core/progress.h"

namespace mae::cli {
namespace {

namespace fs = std::filesystem;

struct EmbedArgs {
  std::string checkpoint, model, output, data_path, split = "train";
  bool global_pool = false, cls_token = false;
  int batch_size = 64, num_workers = 2, threads = 0;
  double crop_pct = 0;  // auto: probe_eval_transform
  std::string device = "cpu", precision = "fp32";
};

void run_embed(const EmbedArgs& a) {
  set_threads(a.threads);
  const DeviceSpec dev = select_device(a.device, a.precision);
  limits::check_batch_size(a.batch_size);
  limits::check_num_workers(a.num_workers);
  if (!(a.crop_pct >= 0.0 && a.crop_pct <= 1.0)) fail("--crop_pct must be in (0, 1] (0: auto), got ", a.crop_pct);
  if (a.global_pool && a.cls_token) fail("--global_pool and --cls_token contradict each other");
  {
    std::error_code ec;
    const fs::path p(a.output);
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (fs::is_directory(p, ec)) fail("--output ", a.output, ": is a directory");
    if (!fs::is_directory(dir, ec)) fail("--output ", a.output, ": folder ", dir.string(), " does not exist");
  }

  const Pretrained pt = load_pretrained(a.checkpoint, a.model, /*need_decoder=*/false);
  const ModelConfig& cfg = pt.config;
  auto ds = open_dataset(a.data_path, a.split);
  const size_t N = ds->size();
  const int D = cfg.embed_dim;
  std::fprintf(stderr, "checkpoint: %s (%s, config from %s)\n", a.checkpoint.c_str(), pt.format.c_str(),
               pt.config_source.c_str());
  std::fprintf(stderr, "data: %s\n", ds->description().c_str());
  // The names tensor joins item names with newlines: a name holding one would put every later row out of step.
  for (size_t i = 0; i < ds->size(); i++)
    if (ds->item_name(i).find_first_of("\n\r") != std::string::npos)
      fail("data item ", i, " '", ds->item_name(i), "': its name holds a line break, which the output's newline-joined "
           "names cannot carry: rename the file");
  // The same transform as knn and linprobe (eval/frozen_encoder.h): the same flags give the same features.
  const TransformConfig tc = probe_eval_transform(*ds, cfg.img_size, cfg.in_chans, a.crop_pct);
  std::fprintf(stderr, "normalize: %s %s (the data's, as knn and linprobe)  crop_pct %g\n",
               nlohmann::json(tc.norm.mean).dump().c_str(), nlohmann::json(tc.norm.std).dump().c_str(), tc.crop_pct);

  const std::string what = a.global_pool ? "mean of the patch tokens of the latent after the encoder's norm"
                                         : "cls token of the latent after the encoder's norm";
  auto model = pt.make_model(limits::batch_within(a.batch_size, N), 0.0, dev);
  Progress progress;
  const auto t0 = std::chrono::steady_clock::now();
  auto report = [&](size_t done, size_t total) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = done / std::max(s, 1e-9);
    char line[160];
    std::snprintf(line, sizeof line, "embed %zu/%zu images  %.1f img/s  ETA %s", done, total, rate,
                  format_duration((total - done) / std::max(rate, 1e-9)).c_str());
    progress.update(line, done == total);
  };
  std::vector<float> feats;
  try {
    feats = compute_features(*model, *ds, tc, a.global_pool,
                             a.num_workers, report);
  } catch (...) {
    progress.done();
    throw;
  }
  progress.done();

  std::vector<io::TensorOut> out = {{"features", io::DType::F32, {int64_t(N), D}, feats.data()}};
  std::vector<int64_t> labels;
  if (ds->num_classes() > 1) {
    labels.resize(N);
    for (size_t i = 0; i < N; i++) labels[i] = ds->label(i);
    out.push_back({"labels", io::DType::I64, {int64_t(N)}, labels.data()});
  }
  std::string names;
  for (size_t i = 0; i < N; i++) names += (i ? "\n" : "") + ds->item_name(i);
  out.push_back({"names", io::DType::U8, {int64_t(names.size())}, names.data()});
  nlohmann::json norm = {{"mean", tc.norm.mean}, {"std", tc.norm.std}};
  io::write_safetensors(a.output, out,
                        {{"config", config_to_json(cfg).dump()},
                         {"checkpoint", a.checkpoint},
                         {"feature", what},
                         {"global_pool", a.global_pool ? "true" : "false"},
                         {"normalize", norm.dump()},
                         {"dataset", ds->description()},
                         {"split", a.split},
                         {"crop_pct", std::to_string(tc.crop_pct)},
                         {"class_names", nlohmann::json(ds->class_names()).dump()}});
  std::printf("wrote %s: features (%zu, %d) = %s%s\n", a.output.c_str(), N, D, what.c_str(),
              labels.empty() ? "" : ", labels");
}

}  // namespace

void add_embed(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  auto* c = app.add_subcommand("embed", "Encoder features of every image of a dataset split (no masking)");
  c->footer(
      "Features are read from the encoder's latent after its final `norm` (every patch kept): the cls token by "
      "default, or with --global_pool the mean of the patch tokens. (Official fine-tuning pools before `norm` and "
      "applies a trained fc_norm instead; a pretraining checkpoint has no fc_norm.) Output tensors: features F32 "
      "(N, D), labels I64 (N) when the data has more than one class, names U8 (item names joined by newlines: "
      "bytes(t).decode().split('\\n')); metadata: config, checkpoint, feature, normalize, dataset, split, "
      "class_names.");
  c->add_option("--checkpoint", a->checkpoint, "MAE weights (.safetensors, training checkpoint, official/HF .pth)")
      ->required();
  c->add_option("--data_path,--data-path", a->data_path,
                "IDX folder, CIFAR-10 batches, or image folder; default Fashion-MNIST");
  c->add_option("--split", a->split, "train, or val/test")->capture_default_str();
  c->add_option("--output", a->output, "Output .safetensors")->required();
  c->add_flag("--global_pool,--global-pool", a->global_pool, "Mean of the patch tokens instead of the cls token");
  c->add_flag("--cls_token,--cls-token", a->cls_token, "The cls token (the default)");
  c->add_option("--batch_size,--batch-size", a->batch_size, "Images per forward")->capture_default_str();
  c->add_option("--model", a->model, "Preset name, for weights without config metadata (official .pth)");
  c->add_option("--crop_pct,--crop-pct", a->crop_pct,
                "Eval transform: shorter side to size/crop_pct, then centre crop (0: auto, as knn/linprobe: 0.875, or 1 when the data has the model's size)")
      ->capture_default_str();
  c->add_option("--num_workers,--num-workers", a->num_workers, "Decoding threads ahead")->capture_default_str();
  c->add_option("--threads", a->threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  add_device_options(c, a->device, a->precision);
  c->callback([a] { run_embed(*a); });
}

}  // namespace mae::cli
