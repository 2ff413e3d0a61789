// mae init: a checkpoint with the official initialisation of a preset (or a config JSON), from a seed.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "model/mae.h"
#include "model/weights.h"
#include "ops/backend.h"

namespace mae::cli {
namespace {

struct InitArgs {
  std::string model = "mae_vit_fmnist", config_json, output;
  uint64_t seed = 0;
  bool norm_pix_loss = false;
};

void run_init(const InitArgs& a) {
  ModelConfig cfg;
  if (!a.config_json.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(a.config_json);
    } catch (const std::exception& e) {
      fail("--config: not valid JSON: ", e.what());
    }
    cfg = config_from_json(j, "--config");
  } else {
    cfg = preset(a.model);
  }
  if (a.norm_pix_loss) cfg.norm_pix_loss = true;
  const ParamList plist = make_mae_params(cfg);
  std::vector<float> w(plist.total);  // the weights alone: no model, whose activations may be far larger
  init_mae_weights(cfg, plist, a.seed, w.data());
  save_params(a.output, cfg, plist, w.data(), {}, {{"seed", std::to_string(a.seed)}});
  size_t n = 0;
  for (const auto& s : plist.specs) n += s.numel;
  std::printf("wrote %s: %s, %zu parameters, seed %llu\n", a.output.c_str(), config_to_json(cfg).dump().c_str(), n,
              (unsigned long long)a.seed);
}

}  // namespace

void add_init(CLI::App& app) {
  auto a = std::make_shared<InitArgs>();
  auto* c = app.add_subcommand("init", "Write a checkpoint with the official initialisation");
  c->add_option("--model", a->model, "Preset name")->capture_default_str();
  c->add_option("--config", a->config_json, "Explicit config as JSON (official constructor keys) instead of --model");
  c->add_option("--output", a->output, "Output .safetensors")->required();
  c->add_option("--seed", a->seed, "Seed")->capture_default_str();
  c->add_flag("--norm_pix_loss,--norm-pix-loss", a->norm_pix_loss, "Record norm_pix_loss in the config");
  c->callback([a] { run_init(*a); });
}

}  // namespace mae::cli
