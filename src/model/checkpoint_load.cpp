#include "model/checkpoint_load.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/name_map.h"
#include "model/hf_config.h"
#include "io/safetensors.h"
#include "io/zip_reader.h"

namespace mae {

namespace {

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// The first bytes of the file, to pick the reader.
std::vector<uint8_t> head_of(const std::string& path, size_t n) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    const int e = errno;
    fail(path, ": cannot open: ", std::strerror(e));
  }
  std::vector<uint8_t> h(n);
  h.resize(std::fread(h.data(), 1, n, f));
  std::fclose(f);
  return h;
}

// defer: float tensors get their dtype and shape only; fill_params reads their values from the file.
io::TensorMap read_safetensors(const io::SafeTensorsReader& r, bool defer) {
  io::TensorMap m;
  for (const std::string& n : r.names()) {
    if (starts(n, "optim.") || starts(n, "grad.")) continue;  // a training checkpoint's moments and gradients
    const io::TensorEntry& e = r.entry(n);
    io::Tensor t;
    t.dtype = e.dtype;
    if (t.is_float()) {
      t.shape = e.shape;
      if (!defer) {
        t.f.resize(size_t(e.numel()));
        r.read_f32(n, t.f.data(), e.shape);
      }
    } else {
      t.i = r.read_i64(n, &t.shape);
    }
    m.emplace(n, std::move(t));
  }
  return m;
}

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(where, ": not valid JSON: ", e.what());
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

ModelConfig config_from_any_json(const nlohmann::json& j, const std::string& where) {
  return is_hf_config(j) ? config_from_hf_json(j, where) : config_from_json(j, where);
}

// Presets whose every encoder (and, if present, decoder) tensor has the shape found in the file.
std::string fitting_presets(const io::TensorMap& m) {
  std::string fits;
  for (const std::string& name : preset_names()) {
    const ParamList list = make_mae_params(preset(name));
    bool ok = true;
    for (const auto& s : list.specs) {
      auto it = m.find(s.name);
      if (it == m.end() ? !is_decoder_param(s.name) : it->second.shape != s.shape) ok = false;
    }
    if (ok) fits += (fits.empty() ? "" : ", ") + name;
  }
  return fits;
}

bool is_preset(const std::string& name) {
  for (const std::string& n : preset_names())
    if (n == name || n == "mae_" + name) return true;  // official vit_* names: the encoders (preset())
  return false;
}

std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

// The 'config' dict of a .pth we wrote, whose values the reader hands over as Python text: ints, True/False,
// and floats as their repr.
nlohmann::json pth_config_json(const std::map<std::string, std::string>& text) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : text) {
    if (v == "True" || v == "False") j[k] = v == "True";
    else if (nlohmann::json n = nlohmann::json::parse(v, nullptr, false); n.is_number()) j[k] = n;
    else j[k] = v;
  }
  return j;
}

}  // namespace

ModelConfig config_from_json_text(const std::string& text, const std::string& where) {
  return config_from_any_json(parse_json(text, where), where);
}

bool is_decoder_param(const std::string& n) { return starts(n, "decoder_") || n == "mask_token"; }

std::string weights_file_of(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return path;
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    const std::string f = (std::filesystem::path(path) / name).string();
    if (std::filesystem::is_regular_file(f, ec)) return f;
  }
  fail(path, ": a folder without model.safetensors or pytorch_model.bin (expected a Hugging Face model folder, as "
             "`mae convert --to hf` writes)");
}

LoadedWeights load_weights_any(const std::string& given, const std::string& model, const std::string& config_arg,
                               bool defer_reads) {
  const std::string path = weights_file_of(given);
  LoadedWeights w;
  w.path = path;
  std::map<std::string, std::string> meta, args, pth_config;
  const std::vector<uint8_t> head = head_of(path, 64);
  if (io::looks_like_legacy_torch(head.data(), head.size()) || io::looks_like_zip(head.data(), head.size())) {
    io::PthContents pc = io::read_pth(path);  // refuses the legacy format with advice
    w.tensors = std::move(pc.tensors);
    w.format = "pth " + pc.layout;
    args = std::move(pc.args);
    pth_config = std::move(pc.config);
  } else if (head.size() >= 9 && head[8] == '{') {
    auto r = std::make_shared<const io::SafeTensorsReader>(path);
    w.tensors = read_safetensors(*r, defer_reads);
    if (defer_reads) {
      // Only official names are read in place; DDP's "module." prefix and Hugging Face names are renamed (and q/k/v
      // stacked) below, which needs the values.
      bool plain = true;
      for (const auto& [n, t] : w.tensors) plain &= !starts(n, "module.");
      if (plain && io::detect_style(w.tensors, path) == io::NameStyle::Official) w.deferred = r;
      else w.tensors = read_safetensors(*r, false);
    }
    w.format = "safetensors";
    meta = r->metadata();
    w.metadata = meta;
  } else {
    fail(path, ": not a checkpoint: neither safetensors nor a PyTorch (torch.save ZIP) file");
  }
  if (w.tensors.empty()) fail(path, ": holds no model tensors");

  // DistributedDataParallel's state_dict prefixes every name with "module.".
  bool all_module = true;
  for (const auto& [n, t] : w.tensors) all_module &= starts(n, "module.");
  if (all_module) {
    io::TensorMap m;
    for (auto& [n, t] : w.tensors) m.emplace(n.substr(7), std::move(t));
    w.tensors = std::move(m);
  }

  const io::NameStyle style = io::detect_style(w.tensors, path);
  if (style == io::NameStyle::Unknown) {
    std::string some;
    int k = 0;
    for (auto it = w.tensors.begin(); it != w.tensors.end() && k < 4; ++it, ++k) some += (k ? ", " : "") + it->first;
    fail(path, ": no MAE tensors in it (expected official names like 'blocks.0.attn.qkv.weight' or Hugging Face ones "
               "like 'vit.encoder.layer.0...'; it has ", some, k < int(w.tensors.size()) ? ", ..." : "", ")");
  }
  if (style == io::NameStyle::HF) {
    w.tensors = io::to_official(std::move(w.tensors), path);
    w.format += " (Hugging Face names)";
  }
  for (const auto& [n, t] : w.tensors) w.has_decoder |= is_decoder_param(n);

  if (!model.empty()) {
    w.config = preset(model);
    w.config_source = "--model " + model;
  } else if (!config_arg.empty()) {
    const size_t first = config_arg.find_first_not_of(" \t\r\n");
    const bool inline_json = first != std::string::npos && config_arg[first] == '{';
    const std::string where = inline_json ? std::string("--config") : config_arg;
    w.config = config_from_json_text(inline_json ? config_arg : read_text(config_arg), where);
    w.config_source = inline_json ? "--config" : "--config " + config_arg;
  } else if (meta.count("config")) {
    w.config = config_from_json(parse_json(meta["config"], path + ": metadata \"config\""), path);
    w.config_source = "the file's metadata";
  } else if (meta.count("hf_config")) {
    w.config = config_from_hf_json(parse_json(meta["hf_config"], path + ": metadata \"hf_config\""), path);
    w.config_source = "the file's metadata (hf_config)";
  } else if (!pth_config.empty()) {
    w.config = config_from_json(pth_config_json(pth_config), path + ": 'config'");
    w.config_source = "the file's 'config'";
  } else if (const std::string beside = folder_of(path) + "/config.json";
             style == io::NameStyle::HF && std::ifstream(beside).good()) {
    w.config = config_from_hf_json(parse_json(read_text(beside), beside), beside);
    w.config_source = beside;
  } else if (args.count("model") && is_preset(args["model"])) {
    // A training checkpoint of main_pretrain.py: args.model, args.input_size, args.norm_pix_loss.
    w.config = preset(args["model"]);
    if (args.count("input_size")) {
      try {
        w.config.img_size = std::stoi(args["input_size"]);
      } catch (const std::exception&) {
        fail(path, ": args.input_size '", args["input_size"], "' is not an integer");
      }
    }
    if (args.count("norm_pix_loss")) w.config.norm_pix_loss = args["norm_pix_loss"] == "True";
    w.config.validate(path);
    w.config_source = "the checkpoint's args (model " + args["model"] + ")";
  } else {
    const std::string fits = fitting_presets(w.tensors);
    fail(path, ": the file carries no model config: give --model NAME",
         fits.empty() ? std::string(" (no preset has these shapes; or give --config with the constructor's arguments)")
                      : " (the shapes fit: " + fits + ")",
         args.count("model") ? " (its args.model '" + args["model"] + "' is not a known preset)" : std::string());
  }
  return w;
}

void fill_params(const LoadedWeights& w, const ParamList& list, float* dst, bool need_decoder) {
  const ModelConfig& c = w.config;
  auto check_table = [&](const char* name, const std::vector<int64_t>& want) {
    auto it = w.tensors.find(name);
    if (it != w.tensors.end() && it->second.shape != want)
      fail(w.path, ": ", name, " has shape ", shape_str(it->second.shape), " but the model (img_size ", c.img_size,
           ", patch_size ", c.patch_size, ", config from ", w.config_source, ") has ", shape_str(want),
           ": the weights are for another image or patch size (position tables are not interpolated here)");
  };
  check_table("pos_embed", pos_embed_shape(c));
  if (w.has_decoder) check_table("decoder_pos_embed", decoder_pos_embed_shape(c));
  if (need_decoder && !w.has_decoder)
    fail(w.path, " is encoder-only (no decoder weights): reconstruct needs a full checkpoint such as "
                 "mae_visualize_vit_base.pth");
  for (const ParamSpec& s : list.specs) {
    if (!w.has_decoder && is_decoder_param(s.name)) continue;
    auto it = w.tensors.find(s.name);
    if (it == w.tensors.end())
      fail(w.path, ": missing tensor '", s.name, "' ", shape_str(s.shape), " (model config from ", w.config_source, ")");
    const io::Tensor& t = it->second;
    if (t.shape != s.shape)
      fail(w.path, ": tensor '", s.name, "' has shape ", shape_str(t.shape), " but the model (config from ",
           w.config_source, ") expects ", shape_str(s.shape));
    if (!t.is_float()) fail(w.path, ": tensor '", s.name, "' holds ", io::dtype_name(t.dtype), ", not floating point");
    if (!dst) continue;
    if (w.deferred && t.f.size() != size_t(t.numel()))
      w.deferred->read_f32(s.name, dst + s.offset, s.shape);  // straight from the file (load_weights_any defer_reads)
    else
      std::copy(t.f.begin(), t.f.end(), dst + s.offset);
  }
}

}  // namespace mae
