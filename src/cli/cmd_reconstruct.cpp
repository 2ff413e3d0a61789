// mae reconstruct: the official demo's picture (demo/mae_visualize.ipynb) for any images and checkpoint — one row
// per image: original, masked, reconstruction, reconstruction + visible.
// Everything (checkpoint, every image, the output folder) is checked before the model runs, and the PNG is written
// atomically, so an error never leaves a partial picture.
#include <filesystem>

#include "cli/common.h"
#include "cli/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/decode.h"
#include "data/transforms.h"
#include "eval/features.h"
#include "eval/reconstruct.h"
#include "model/pretrained.h"

namespace mae::cli {
namespace {

namespace fs = std::filesystem;

struct ReconstructArgs {
  std::string checkpoint, model, output, data_path, split = "test";
  std::vector<std::string> images;
  int num = 8, scale = 0, gap = 2, threads = 0;
  double mask_ratio = 0.75, crop_pct = 1.0;
  uint64_t seed = 0;
  bool norm_pix = false, no_norm_pix = false;
  std::vector<float> mean, std;
  std::string device = "cpu", precision = "fp32";
};

// --mean/--std given by the user replace the checkpoint's (one value, or one per model channel).
void override_norm(const ReconstructArgs& a, int channels, Normalization& norm, std::string& source) {
  if (a.mean.empty() && a.std.empty()) return;
  if (a.mean.empty() || a.std.empty()) fail("--mean and --std go together");
  Normalization n{a.mean, a.std};
  if (n.mean.size() != n.std.size() || (n.mean.size() != 1 && int(n.mean.size()) != channels))
    fail("--mean/--std: give 1 or ", channels, " values each, got ", n.mean.size(), " and ", n.std.size());
  for (float s : n.std)
    if (!(s > 0)) fail("--std must be > 0, got ", s);
  if (n.mean.size() == 1) n = {std::vector<float>(channels, n.mean[0]), std::vector<float>(channels, n.std[0])};
  norm = n;
  source = "--mean/--std";
}

void check_output_path(const std::string& out) {
  const fs::path p(out);
  std::error_code ec;
  if (fs::is_directory(p, ec)) fail("--output ", out, ": is a directory (give a file name such as grid.png)");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) fail("--output ", out, ": folder ", dir.string(), " does not exist");
}

void run_reconstruct(const ReconstructArgs& a) {
  set_threads(a.threads);
  const DeviceSpec dev = select_device(a.device, a.precision);
  if (a.images.empty() == a.data_path.empty())
    fail("give the pictures either as --image FILE [FILE ...] or as --data_path DIR [--num N] (one of the two)");
  if (!(a.mask_ratio >= 0.0 && a.mask_ratio < 1.0)) fail("--mask_ratio must be in [0, 1), got ", a.mask_ratio);
  if (a.scale < 0) fail("--scale must be ≥ 1 (0: automatic), got ", a.scale);
  if (a.gap < 0) fail("--gap must be ≥ 0, got ", a.gap);
  if (a.num < 1) fail("--num must be ≥ 1, got ", a.num);
  if (!(a.crop_pct > 0.0 && a.crop_pct <= 1.0)) fail("--crop_pct must be in (0, 1], got ", a.crop_pct);
  if (a.norm_pix && a.no_norm_pix) fail("--norm_pix_loss and --no_norm_pix_loss contradict each other");
  check_output_path(a.output);

  Pretrained pt = load_pretrained(a.checkpoint, a.model, /*need_decoder=*/true);
  const ModelConfig& cfg = pt.config;
  if (cfg.len_keep(a.mask_ratio) < 1)
    fail("--mask_ratio ", a.mask_ratio, " keeps no patch of ", cfg.num_patches());
  override_norm(a, cfg.in_chans, pt.norm, pt.norm_source);
  const bool norm_pix = a.norm_pix || (cfg.norm_pix_loss && !a.no_norm_pix);

  // ---- the pictures, model-ready: shorter side resized (bicubic), centre crop, model's channels ----
  Transform tf(eval_transform(cfg, pt.norm, a.crop_pct));
  TransformScratch scratch;
  Rng unused(0);
  std::vector<Image> crops;
  std::vector<std::string> names;
  Image img;
  if (!a.images.empty()) {
    for (const std::string& f : a.images) {
      decode_image(f, img);  // throws naming the file: missing, not an image, truncated, corrupt
      names.push_back(f);
      crops.emplace_back();
      tf.apply_u8(img, unused, crops.back(), scratch);
    }
  } else {
    auto ds = open_dataset(a.data_path, a.split);
    const size_t n = std::min<size_t>(a.num, ds->size());
    for (size_t k = 0; k < n; k++) {  // spread over the split: varied classes, the same pictures every run
      const size_t i = k * ds->size() / n;
      ds->load(i, img);
      names.push_back(ds->item_name(i));
      crops.emplace_back();
      tf.apply_u8(img, unused, crops.back(), scratch);
    }
  }

  const int L = cfg.num_patches(), n = int(crops.size());
  std::vector<float> noise(size_t(n) * L);
  const uint64_t key = Rng::derive(a.seed, stream::mask);
  for (int k = 0; k < n; k++) {  // image k's mask depends on (seed, k) only
    Rng r = Rng::keyed(key, 0, uint64_t(k));
    for (int l = 0; l < L; l++) noise[size_t(k) * L + l] = r.uniform_f();
  }

  std::fprintf(stderr, "checkpoint: %s (%s, config from %s)\n", a.checkpoint.c_str(), pt.format.c_str(),
               pt.config_source.c_str());
  std::fprintf(stderr, "model: %d px, patch %d, %d channel(s); mask ratio %g keeps %d of %d patches; %s\n",
               cfg.img_size, cfg.patch_size, cfg.in_chans, a.mask_ratio, cfg.len_keep(a.mask_ratio), L,
               norm_pix ? "norm-pix predictions mapped back with each patch's mean/std" : "pixel predictions");
  std::string ms, ss;
  for (int c = 0; c < cfg.in_chans; c++)
    ms += (c ? ", " : "") + std::to_string(pt.norm.mean[c]), ss += (c ? ", " : "") + std::to_string(pt.norm.std[c]);
  std::fprintf(stderr, "normalize: mean (%s) std (%s) — %s\n", ms.c_str(), ss.c_str(), pt.norm_source.c_str());

  auto model = pt.make_model(std::min(n, 16), a.mask_ratio, dev);
  const auto rows = reconstruct(*model, crops, pt.norm, noise, norm_pix);
  const int scale = a.scale > 0 ? a.scale : default_scale(cfg.img_size);
  const Image grid = make_grid(rows, scale, a.gap);
  encode_png(a.output, grid);
  for (int k = 0; k < n; k++) std::fprintf(stderr, "row %d: %s\n", k + 1, names[k].c_str());
  std::printf("wrote %s: %dx%d, %d row(s) of original | masked | reconstruction | reconstruction + visible "
              "(%d px panels, x%d)\n",
              a.output.c_str(), grid.w, grid.h, n, cfg.img_size * scale, scale);
}

}  // namespace

void add_reconstruct(CLI::App& app) {
  auto a = std::make_shared<ReconstructArgs>();
  auto* c = app.add_subcommand(
      "reconstruct",
      "Picture of MAE reconstructions, as the official demo: per image original | masked | reconstruction | "
      "reconstruction + visible patches");
  c->footer(
      "Images are resized (shorter side, bicubic) and centre-cropped to the model's input size, converted to its "
      "channels and normalised with the statistics the checkpoint was trained with (its metadata; else ImageNet's "
      "for 3 channels, Fashion-MNIST's for 1). Removed patches show the normalisation mean (0 after Normalize, as "
      "the demo). For a norm_pix_loss model (from the checkpoint's config, or --norm_pix_loss) the decoder predicts "
      "each patch normalised by its own mean and std, so every predicted patch is mapped back with the mean and std "
      "(unbiased variance + 1e-6) of that patch in the original image: the colours and contrast shown are partly "
      "the original's, as in the official visualisation of such models. The output is a PNG of width "
      "4·S·scale + 3·gap and height rows·S·scale + (rows−1)·gap.");
  c->add_option("--checkpoint", a->checkpoint,
                "Full MAE weights with decoder (.safetensors, training checkpoint, official/HF .pth)")
      ->required();
  c->add_option("--image", a->images, "Input pictures (JPEG/PNG, any size, grey or colour)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1, -1);
  c->add_option("--data_path,--data-path", a->data_path,
                "Instead of --image: take --num pictures spread over a dataset's split (IDX, CIFAR-10, folder)");
  c->add_option("--num", a->num, "Pictures to take with --data_path")->capture_default_str();
  c->add_option("--split", a->split, "Split used with --data_path (train, val/test)")->capture_default_str();
  c->add_option("--output", a->output, "Output PNG")->required();
  c->add_option("--mask_ratio,--mask-ratio", a->mask_ratio, "Fraction of patches removed")->capture_default_str();
  c->add_option("--seed", a->seed, "Seed of the masks (image k's mask depends on the seed and k only)")
      ->capture_default_str();
  c->add_option("--model", a->model, "Preset name, for weights without config metadata (official .pth)");
  c->add_flag("--norm_pix_loss,--norm-pix-loss", a->norm_pix,
              "Treat predictions as norm-pix (per-patch normalised), whatever the config says");
  c->add_flag("--no_norm_pix_loss,--no-norm-pix-loss", a->no_norm_pix,
              "Treat predictions as plain pixels, whatever the config says");
  c->add_option("--scale", a->scale, "Upscale factor of each panel, nearest neighbour (0: about 224 px panels)")
      ->capture_default_str();
  c->add_option("--gap", a->gap, "White pixels between panels and rows")->capture_default_str();
  c->add_option("--crop_pct,--crop-pct", a->crop_pct, "Resize the shorter side to size/crop_pct before the crop")
      ->capture_default_str();
  c->add_option("--mean", a->mean, "Override the normalisation mean (1 or C values)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--std", a->std, "Override the normalisation std (1 or C values)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--threads", a->threads, "Threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  add_device_options(c, a->device, a->precision);
  c->callback([a] { run_reconstruct(*a); });
}

}  // namespace mae::cli
