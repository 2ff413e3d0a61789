// mae convert IN OUT: any supported weights file (official .pth, training checkpoint, HF ViTMAE safetensors or
// pytorch_model.bin, our safetensors) -> safetensors with official names and our "config" metadata (--to official,
// the default; what every other subcommand reads), or with Hugging Face ViTMAE names, q/k/v split (--to hf).
// Floating tensors are written as float32. Encoder-only inputs give encoder-only outputs. Tensors that are not
// parameters of the MAE model (a classifier head, ...) are kept under their names. The write is atomic.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "io/name_map.h"
#include "model/hf_config.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "model/params.h"
#include "model/pos_embed.h"

namespace mae::cli {
namespace {

struct ConvertArgs {
  std::string input, output, model, config, to = "official";
};

std::string base_name(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void run_convert(const ConvertArgs& a) {
  LoadedWeights w = load_weights_any(a.input, a.model, a.config);
  const ModelConfig& cfg = w.config;
  const ParamList list = make_mae_params(cfg);
  fill_params(w, list, nullptr, false);  // checks every shape against the config

  // Official names in the model's registration order, the fixed tables, then anything else the file had.
  io::TensorMap out;
  std::vector<std::string> order;
  auto add = [&](const std::string& name, io::Tensor t) {
    order.push_back(name);
    out[name] = std::move(t);
  };
  for (const ParamSpec& s : list.specs) {
    if (!w.has_decoder && is_decoder_param(s.name)) continue;
    io::Tensor t = std::move(w.tensors.at(s.name));  // moved, not copied: ViT-H weights are 2.5 GB
    w.tensors.erase(s.name);
    t.dtype = io::DType::F32;
    add(s.name, std::move(t));
  }
  auto table = [&](const char* name, int dim, const std::vector<int64_t>& shape) {
    auto it = w.tensors.find(name);  // shape already checked by fill_params
    if (it != w.tensors.end() && it->second.is_float()) {
      io::Tensor t = std::move(it->second);
      w.tensors.erase(it);
      t.dtype = io::DType::F32;
      add(name, std::move(t));
    } else {
      io::Tensor t;
      t.shape = shape;
      t.f = sincos_pos_embed_2d(dim, cfg.grid(), cfg.grid(), true);
      add(name, std::move(t));
    }
  };
  table("pos_embed", cfg.embed_dim, pos_embed_shape(cfg));
  if (w.has_decoder) table("decoder_pos_embed", cfg.decoder_embed_dim, decoder_pos_embed_shape(cfg));
  std::vector<std::string> extras;
  for (auto& [name, t] : w.tensors)
    if (!out.count(name) && name != "pos_embed" && name != "decoder_pos_embed") {
      extras.push_back(name);
      add(name, std::move(t));
    }

  std::map<std::string, std::string> meta = {{"config", config_to_json(cfg).dump()},
                                             {"format", "pt"},
                                             {"converted_from", base_name(a.input)}};
  if (!w.has_decoder) meta["encoder_only"] = "1";
  if (a.to == "hf") {
    out = io::to_hf(std::move(out), a.input);
    meta["hf_config"] = config_to_hf_json(cfg).dump();
    order.clear();
    for (const auto& [name, t] : out) order.push_back(name);  // sorted, like the safetensors library writes
  }

  std::vector<io::TensorOut> tensors;
  for (const std::string& name : order) {
    const io::Tensor& t = out.at(name);
    if (t.is_float()) tensors.push_back({name, io::DType::F32, t.shape, t.f.data()});
    else tensors.push_back({name, io::DType::I64, t.shape, t.i.data()});
  }
  io::write_safetensors(a.output, tensors, meta);

  std::printf("%s: %s, config from %s: %s\n", a.input.c_str(), w.format.c_str(), w.config_source.c_str(),
              config_to_json(cfg).dump().c_str());
  if (!w.has_decoder) std::printf("  encoder-only (no decoder weights): the output is encoder-only too\n");
  if (!extras.empty()) {
    std::string list_s;
    for (size_t k = 0; k < extras.size() && k < 8; ++k) list_s += (k ? ", " : "") + extras[k];
    std::printf("  kept %zu tensor(s) that are not MAE parameters: %s%s\n", extras.size(), list_s.c_str(),
                extras.size() > 8 ? ", ..." : "");
  }
  std::printf("wrote %s: %zu tensors, %s names\n", a.output.c_str(), tensors.size(),
              a.to == "hf" ? "Hugging Face ViTMAE" : "official");
}

}  // namespace

void add_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* c = app.add_subcommand(
      "convert", "Convert weights (.pth, HF ViTMAE, safetensors) to a safetensors checkpoint (official or HF names)");
  c->add_option("input", a->input, "Weights: official .pth (torch>=1.6), training checkpoint, HF ViTMAE, .safetensors")
      ->required();
  c->add_option("output", a->output, "Output .safetensors")->required();
  c->add_option("--model", a->model, "Preset name, for files without a config (the released .pth checkpoints)");
  c->add_option("--config", a->config,
                "Model config instead of --model: JSON text or a JSON file (constructor keys, or an HF config.json)");
  c->add_option("--to", a->to, "Tensor names of the output: official (default) or hf")
      ->check(CLI::IsMember({"official", "hf"}))
      ->capture_default_str();
  c->callback([a] { run_convert(*a); });
}

}  // namespace mae::cli
