#include "model/pretrained.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"

namespace mae {

Normalization fashion_mnist_normalization() { return {{0.2860406f}, {0.3530242f}}; }

namespace {

// {"mean": [..], "std": [..]} with one value per channel (one value is repeated for every channel).
bool parse_norm(const nlohmann::json& j, int channels, Normalization& out) {
  if (!j.is_object() || !j.contains("mean") || !j.contains("std")) return false;
  Normalization n;
  n.mean = j.at("mean").get<std::vector<float>>();
  n.std = j.at("std").get<std::vector<float>>();
  if (n.mean.size() != n.std.size() || n.mean.empty()) return false;
  for (float s : n.std)
    if (!(s > 0)) return false;
  if (int(n.mean.size()) != channels) {
    if (n.mean.size() != 1 && int(n.mean.size()) != 3) return false;
    n = normalization_for_channels(n, channels);
  }
  out = n;
  return true;
}

}  // namespace

Normalization checkpoint_normalization(const std::string& path, int channels, std::string* source) {
  auto said = [&](const std::string& s) {
    if (source) *source = s;
  };
  std::map<std::string, std::string> meta;
  try {
    meta = io::SafeTensorsReader(weights_file_of(path)).metadata();
  } catch (const Error&) {
    // not safetensors (an official .pth): no metadata, the defaults below apply
  }
  Normalization n;
  try {
    // A Hugging Face folder: its preprocessor_config.json (image_mean / image_std).
    if (std::error_code ec; std::filesystem::is_directory(path, ec)) {
      const std::string pre = (std::filesystem::path(path) / "preprocessor_config.json").string();
      if (std::ifstream f(pre); f) {
        const auto j = nlohmann::json::parse(f);
        if (j.contains("image_mean") && j.contains("image_std") &&
            parse_norm({{"mean", j["image_mean"]}, {"std", j["image_std"]}}, channels, n)) {
          said(pre);
          return n;
        }
      }
    }
    if (auto it = meta.find("normalize"); it != meta.end() && parse_norm(nlohmann::json::parse(it->second), channels, n)) {
      said("checkpoint metadata \"normalize\"");
      return n;
    }
    if (auto it = meta.find("args"); it != meta.end()) {
      const auto args = nlohmann::json::parse(it->second);
      if (args.is_object() && args.contains("normalize") && parse_norm(args["normalize"], channels, n)) {
        said("checkpoint args.normalize");
        return n;
      }
    }
  } catch (const std::exception&) {
    // malformed metadata JSON or values: fall back to the defaults, as for a file without them
  }
  if (channels == 1) {
    said("default for 1-channel models: Fashion-MNIST train statistics");
    return fashion_mnist_normalization();
  }
  said("default for 3-channel models: ImageNet");
  return normalization_for_channels(imagenet_normalization(), channels);
}

Pretrained load_pretrained(const std::string& path, const std::string& model_name, bool need_decoder) {
  LoadedWeights w = load_weights_any(path, model_name, "", /*defer_reads=*/true);
  Pretrained p;
  p.path = path;
  p.format = w.format;
  p.config_source = w.config_source;
  p.config = w.config;
  p.has_decoder = w.has_decoder;
  const ParamList list = make_mae_params(p.config);
  p.params.resize(list.total);
  fill_params(w, list, p.params.data(), need_decoder);
  // NaN/Inf weights (a diverged run's file) would give black reconstructions and NaN features without a word.
  for (const ParamSpec& s : list.specs)
    for (size_t i = 0; i < s.numel; ++i)
      if (!std::isfinite(p.params[s.offset + i]))
        fail(path, ": tensor '", s.name, "' holds a non-finite value (", p.params[s.offset + i], " at element ", i,
             "): the weights of a diverged run cannot be used");
  p.norm = checkpoint_normalization(path, p.config.in_chans, &p.norm_source);
  return p;
}

std::unique_ptr<InferenceModel> Pretrained::make_model(int batch, double mask_ratio,
                                                       const DeviceSpec& device) const& {
  MAE_CHECK(make_mae_params(config).total == params.size());
  return make_inference_model(config, batch, mask_ratio, device, params.data());
}

}  // namespace mae
