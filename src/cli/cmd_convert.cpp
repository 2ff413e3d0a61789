// mae convert IN OUT: any supported weights (official .pth, training checkpoint, HF ViTMAE safetensors, folder or
// pytorch_model.bin, our safetensors; an MAE, its encoder or a fine-tuned classifier) to
//   --to official  safetensors with official names and our "config" metadata (the default; what every other
//                  subcommand reads)
//   --to pth       the .pth PyTorch code loads: {'model': OrderedDict, 'epoch', 'args', 'config'}
//                  (model/pth_export.h); the default when OUT ends in .pth or .pt
//   --to hf        a Hugging Face model folder OUT (model/hf_folder.h); with OUT ending in .safetensors, the one
//                  file with HF names and the config in its metadata, as before folders existed
// --as names the module the output must be (mae, encoder, classifier); an MAE goes down to its encoder, and
// anything else that does not fit is refused naming the file. Floating tensors are written as float32; tensors that
// are not the module's (a probe head, ...) are kept except in an HF folder. An existing OUT is refused unless --force;
// every write goes to a temp file (or folder) renamed at the end, so an error leaves no partial output.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "io/name_map.h"
#include "io/pth_writer.h"
#include "io/safetensors.h"
#include "model/hf_config.h"
#include "model/hf_folder.h"
#include "model/pth_export.h"
#include "model/state_dict.h"
#include "model/vit_weights.h"

namespace mae::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string input, output, model, config, to, as;
  bool force = false;
};

std::string base_name(const std::string& p) { return fs::path(p).filename().string(); }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The mask ratio the model was pretrained with (HF's config carries one), from the run's arguments if known.
double trained_mask_ratio(const StateDict& sd) {
  if (auto it = sd.metadata.find("args"); it != sd.metadata.end()) {
    const auto args = nlohmann::json::parse(it->second, nullptr, false);
    if (args.is_object() && args.contains("mask_ratio") && args["mask_ratio"].is_number())
      return args["mask_ratio"].get<double>();
  }
  return 0.75;
}

void write_official(const ConvertArgs& a, const StateDict& sd, bool hf_names) {
  std::map<std::string, std::string> meta = {{"config", config_to_json(sd.config).dump()},
                                             {"format", "pt"},
                                             {"converted_from", base_name(a.input)}};
  if (sd.kind == ModelKind::Encoder) meta["encoder_only"] = "1";
  if (sd.kind == ModelKind::Classifier) meta["classifier"] = classifier_to_json(sd.classifier).dump();
  if (sd.norm_source.rfind("default", 0) != 0)  // keep a normalisation the file stated
    meta["normalize"] = nlohmann::json{{"mean", sd.norm.mean}, {"std", sd.norm.std}}.dump();
  io::TensorMap renamed;
  std::vector<std::string> order = sd.order;
  order.insert(order.end(), sd.extras.begin(), sd.extras.end());
  if (hf_names) {
    io::TensorMap all;
    for (const std::string& n : order) all[n] = sd.tensors.at(n);
    renamed = io::to_hf(std::move(all), a.input);
    meta["hf_config"] = config_to_hf_json(sd.config, trained_mask_ratio(sd)).dump();
    order.clear();
    for (const auto& [name, t] : renamed) order.push_back(name);  // sorted, like the safetensors library writes
  }
  const io::TensorMap& src = hf_names ? renamed : sd.tensors;
  std::vector<io::TensorOut> tensors;
  for (const std::string& name : order) {
    const io::Tensor& t = src.at(name);
    if (t.is_float()) tensors.push_back({name, io::DType::F32, t.shape, t.f.data()});
    else tensors.push_back({name, io::DType::I64, t.shape, t.i.data()});
  }
  io::write_safetensors(a.output, tensors, meta);
  std::printf("wrote %s: %zu tensors, %s names\n", a.output.c_str(), tensors.size(),
              hf_names ? "Hugging Face ViTMAE" : "official");
}

void run_convert(ConvertArgs a) {
  if (a.to.empty()) a.to = ends_with(a.output, ".pth") || ends_with(a.output, ".pt") ? "pth" : "official";
  const bool folder = a.to == "hf" && !ends_with(a.output, ".safetensors");
  // Refuse before reading a (possibly large) input: an existing output, or a folder that cannot take it.
  check_output_path(a.output, a.force);

  StateDict sd = load_state_dict(a.input, a.model, a.config);
  std::printf("%s: %s, %s, config from %s: %s\n", a.input.c_str(), sd.format.c_str(), kind_words(sd.kind),
              sd.config_source.c_str(), config_to_json(sd.config).dump().c_str());
  if (!a.as.empty()) convert_kind(sd, parse_kind(a.as, "--as"));
  if (sd.kind == ModelKind::Encoder)
    std::printf("  encoder-only (no decoder weights): the output is encoder-only too\n");
  if (!sd.extras.empty()) {
    std::string list_s;
    for (size_t k = 0; k < sd.extras.size() && k < 8; ++k) list_s += (k ? ", " : "") + sd.extras[k];
    std::printf("  %s %zu tensor(s) that are not the model's: %s%s\n", folder ? "dropped" : "kept", sd.extras.size(),
                list_s.c_str(), sd.extras.size() > 8 ? ", ..." : "");
  }

  if (a.to == "pth") {
    const io::PthDocument doc = pth_document(sd);
    io::write_pth(a.output, doc);
    std::printf("wrote %s: {'model': %zu tensors%s%s, 'config'} (torch.load(p, weights_only=True)['model'])\n",
                a.output.c_str(), doc.model.size(), doc.epoch ? ", 'epoch'" : "", doc.args.empty() ? "" : ", 'args'");
    if (sd.config.ln_eps != 1e-6)
      std::printf("  note: LayerNorm eps is %g, not the official module's 1e-6: build it with that eps\n",
                  sd.config.ln_eps);
  } else if (folder) {
    const HfFolderInfo info = write_hf_folder(a.output, sd, trained_mask_ratio(sd), a.force);
    std::printf("wrote %s/: config.json (%s), model.safetensors (%zu tensors, Hugging Face names), "
                "preprocessor_config.json (mean %s, std %s)\n",
                a.output.c_str(), info.architecture.c_str(), info.tensors, nlohmann::json(sd.norm.mean).dump().c_str(),
                nlohmann::json(sd.norm.std).dump().c_str());
  } else {
    if (a.to == "hf" && sd.kind == ModelKind::Classifier)
      fail(a.input, ": a classifier goes to Hugging Face as a folder (ViTForImageClassification): give a folder "
                    "name instead of ", a.output);
    write_official(a, sd, a.to == "hf");
  }
}

}  // namespace

void add_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* c = app.add_subcommand(
      "convert", "Convert weights (.pth, HF, safetensors) to our safetensors, a PyTorch .pth or a Hugging Face folder");
  c->add_option("input", a->input,
                "Weights: official .pth (torch>=1.6), training checkpoint, HF ViTMAE file or folder, .safetensors")
      ->required();
  c->add_option("output", a->output, "Output .safetensors, .pth, or (--to hf) a folder")->required();
  c->add_option("--model", a->model, "Preset name, for files without a config (the released .pth checkpoints)");
  c->add_option("--config", a->config,
                "Model config instead of --model: JSON text or a JSON file (constructor keys, or an HF config.json)");
  c->add_option("--to", a->to,
                "Output: official (safetensors, official names), pth (PyTorch), hf (a Hugging Face folder; HF-named "
                "safetensors if OUT ends in .safetensors). Default: pth for OUT ending in .pth/.pt, else official")
      ->check(CLI::IsMember({"official", "hf", "pth"}));
  c->add_option("--as", a->as,
                "The model OUT must hold: mae (encoder + decoder), encoder (an MAE's encoder alone), classifier "
                "(default: what IN holds)")
      ->check(CLI::IsMember({"mae", "encoder", "classifier"}));
  c->add_flag("--force,-f", a->force, "Replace OUT if it exists");
  c->callback([a] { run_convert(*a); });
}

}  // namespace mae::cli
