#include "model/weights.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/pos_embed.h"

namespace mae {

ModelConfig read_config(const io::SafeTensorsReader& f) {
  auto it = f.metadata().find("config");
  if (it == f.metadata().end())
    fail(f.path(), ": no \"config\" in the safetensors metadata (give --model NAME for files without one)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    fail(f.path(), ": metadata \"config\" is not valid JSON: ", e.what());
  }
  return config_from_json(j, f.path());
}

void load_params(const io::SafeTensorsReader& f, const ParamList& list, float* dst) {
  for (const auto& s : list.specs) {
    if (!f.has(s.name)) fail(f.path(), ": missing tensor '", s.name, "' ", shape_str(s.shape));
    f.read_f32(s.name, dst + s.offset, s.shape);
  }
}

void save_params(const std::string& path, const ModelConfig& cfg, const ParamList& list, const float* params,
                 const std::vector<NamedBuffer>& extra, std::map<std::string, std::string> meta) {
  std::vector<io::TensorOut> out;
  for (const auto& s : list.specs) out.push_back({s.name, io::DType::F32, s.shape, params + s.offset});
  // The official state_dict carries the fixed tables too; PyTorch users load them with the rest.
  const auto pe = sincos_pos_embed_2d(cfg.embed_dim, cfg.grid(), cfg.grid(), true);
  const auto dpe = sincos_pos_embed_2d(cfg.decoder_embed_dim, cfg.grid(), cfg.grid(), true);
  out.push_back({"pos_embed", io::DType::F32, pos_embed_shape(cfg), pe.data()});
  out.push_back({"decoder_pos_embed", io::DType::F32, decoder_pos_embed_shape(cfg), dpe.data()});
  for (const auto& e : extra) out.push_back({e.name, io::DType::F32, e.shape, e.data});
  meta["config"] = config_to_json(cfg).dump();
  meta["format"] = "pt";  // what safetensors.torch writes; lets HF tooling recognise the file
  io::write_safetensors(path, out, meta);
}

}  // namespace mae
