// mae forward: one forward (and backward) on a given batch and noise — the parity contract of docs/architecture.md §4.
//   IN : imgs f32 (B, C, H, W) already normalised; noise f32 (B, L) optional (seeded uniform [0,1) if absent)
//   OUT: loss f32 scalar, pred f32 (B, L, p·p·C), mask f32 (B, L), ids_restore i64 (B, L);
//        with --backward also grad.<param> for every trainable parameter (official names).
// Everything is validated before anything is written, and the output is written atomically, so an error never
// leaves a partial file.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/device.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/mae.h"
#include "model/checkpoint_load.h"
#include "model/forward_input.h"
#include "model/weights.h"
#include "ops/dispatch.h"
#include "ops/backend.h"

namespace mae::cli {
namespace {

struct ForwardArgs {
  std::string checkpoint, input, output, model, device = "cpu", precision = "fp32";
  bool backward = false, norm_pix_loss = false;
  double mask_ratio = 0.75;
  uint64_t seed = 0;
  int threads = 0;
};

// The model's outputs, on the host whatever the backend.
struct ForwardResult {
  float loss;
  std::vector<float> pred_cls, mask, grads;  // pred_cls (B, 1+L, P) with the cls rows
  std::vector<int> ids_restore;
};

template <class Bk>
ForwardResult forward_on(const ModelConfig& cfg, const LoadedWeights& w, const std::vector<float>& imgs,
                         const std::vector<float>& noise, int B, double mask_ratio, bool backward) {
  MaeModel<Bk> m(cfg, B, mask_ratio, backward ? ModelMode::train : ModelMode::inference);
  const size_t np = m.params().total;
  std::vector<float> host(np, 0.0f);
  fill_params(w, m.params(), host.data(), true);
  Bk::upload(m.params_data(), host.data(), np);
  float* dimgs = Bk::template alloc<float>(imgs.size());
  Bk::upload(dimgs, imgs.data(), imgs.size());
  ForwardResult r;
  r.loss = m.forward(dimgs, noise.data());
  if (backward) {
    m.zero_grad();
    m.backward();
    r.grads.resize(np);
    Bk::download(r.grads.data(), m.grads_data(), np);
  }
  const int L = cfg.num_patches(), P = cfg.patch_dim();
  r.pred_cls.resize(size_t(B) * (1 + L) * P);
  Bk::download(r.pred_cls.data(), m.pred(), r.pred_cls.size());
  r.mask.resize(size_t(B) * L);
  Bk::download(r.mask.data(), m.mask(), r.mask.size());
  r.ids_restore.assign(m.ids_restore(), m.ids_restore() + size_t(B) * L);
  Bk::release(dimgs);
  return r;
}

void run_forward(const ForwardArgs& a) {
  set_threads(a.threads);
  const DeviceSpec dev = select_device(a.device, a.precision);
  // safetensors (ours or HF names) or an official .pth; the config from metadata or --model
  const LoadedWeights w = load_weights_any(a.checkpoint, a.model);
  ModelConfig cfg = w.config;
  if (a.norm_pix_loss) cfg.norm_pix_loss = true;
  if (!(a.mask_ratio > 0.0 && a.mask_ratio < 1.0))
    fail("--mask_ratio must be in (0, 1), got ", a.mask_ratio);

  const ForwardInput in = read_forward_input(a.input, cfg, a.seed);
  const int B = in.batch, L = cfg.num_patches(), P = cfg.patch_dim();
  const std::vector<float>& imgs = in.imgs;
  const std::vector<float>& noise = in.noise;

  const ForwardResult r = with_backend(dev, [&]<class Bk>() {
    return forward_on<Bk>(cfg, w, imgs, noise, B, a.mask_ratio, a.backward);
  });
  const float loss = r.loss;
  const ParamList plist = make_mae_params(cfg);

  // pred without the cls rows, ids_restore as int64 — the official outputs.
  std::vector<float> pred(size_t(B) * L * P);
  for (int b = 0; b < B; ++b)
    std::copy_n(r.pred_cls.data() + (size_t(b) * (1 + L) + 1) * P, size_t(L) * P, pred.data() + size_t(b) * L * P);
  std::vector<int64_t> ids(r.ids_restore.begin(), r.ids_restore.end());
  std::vector<io::TensorOut> out = {
      {"loss", io::DType::F32, {}, &loss},
      {"pred", io::DType::F32, {B, L, P}, pred.data()},
      {"mask", io::DType::F32, {B, L}, r.mask.data()},
      {"ids_restore", io::DType::I64, {B, L}, ids.data()},
  };
  if (a.backward)
    for (const auto& s : plist.specs)
      out.push_back({"grad." + s.name, io::DType::F32, s.shape, r.grads.data() + s.offset});
  io::write_safetensors(a.output, out, {{"config", config_to_json(cfg).dump()},
                                        {"mask_ratio", std::to_string(a.mask_ratio)}});
  std::printf("loss %.8g  (B=%d, L=%d, len_keep=%d%s) -> %s\n", loss, B, L, cfg.len_keep(a.mask_ratio),
              a.backward ? ", with gradients" : "", a.output.c_str());
}

}  // namespace

void add_forward(CLI::App& app) {
  auto a = std::make_shared<ForwardArgs>();
  auto* c = app.add_subcommand("forward", "One forward (and backward) on a given batch and noise (parity contract)");
  c->add_option("--checkpoint", a->checkpoint, "Weights: .safetensors (config in metadata, or --model), official .pth, or HF-named")->required();
  c->add_option("--input", a->input, "Input .safetensors: imgs f32 (B,C,H,W), optional noise f32 (B,L)")
      ->required();
  c->add_option("--output", a->output, "Output .safetensors: loss, pred, mask, ids_restore [, grad.*]")->required();
  c->add_option("--model", a->model, "Preset name, for weights without a config (e.g. official .pth files)");
  c->add_flag("--backward", a->backward, "Also write grad.<name> for every trainable parameter");
  c->add_option("--mask_ratio,--mask-ratio", a->mask_ratio, "Masking ratio (fraction of patches removed)")
      ->capture_default_str();
  c->add_flag("--norm_pix_loss,--norm-pix-loss", a->norm_pix_loss, "Per-patch normalised pixel target");
  c->add_option("--seed", a->seed, "Seed of the noise when the input has none")->capture_default_str();
  c->add_option("--threads", a->threads, "Threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  add_device_options(c, a->device, a->precision);
  c->callback([a] { run_forward(*a); });
}

}  // namespace mae::cli
