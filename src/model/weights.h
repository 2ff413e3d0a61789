// Model weights in safetensors files (docs/architecture.md §4): official tensor names and shapes, the constructor's arguments
// as JSON in __metadata__["config"], the fixed pos_embed / decoder_pos_embed tables included (accepted, not
// required, when reading).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/params.h"

namespace mae {

// The "config" metadata of a checkpoint; throws naming the file if it is missing or malformed.
ModelConfig read_config(const io::SafeTensorsReader& f);

// Fills `dst` (laid out by `list`) with every parameter from the file, as float. A missing tensor or a shape that
// differs from the model's is an error naming the file, the tensor and both shapes.
void load_params(const io::SafeTensorsReader& f, const ParamList& list, float* dst);

// Extra tensors written after the parameters (optimizer moments, gradients, ...).
struct NamedBuffer {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
};

// Writes params (official names) + the fixed pos tables + extras atomically, with "config" and `meta` metadata.
void save_params(const std::string& path, const ModelConfig& cfg, const ParamList& list, const float* params,
                 const std::vector<NamedBuffer>& extra = {}, std::map<std::string, std::string> meta = {});

}  // namespace mae
