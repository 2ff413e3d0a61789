// The input of `mae forward` (the parity contract, docs/architecture.md §4): a safetensors file with imgs f32
// (B, C, H, W), already normalised, and optionally noise f32 (B, L) — the official random_masking's noise.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace mae {

struct ForwardInput {
  int batch = 0;              // B
  std::vector<float> imgs;    // (B, C, H, W)
  std::vector<float> noise;   // (B, L): the file's, or uniform [0, 1) from `seed` when it has none
};

// Reads and checks the file against the model: imgs present with the model's (C, H, W), noise (if present) (B, L).
// Errors name the file and both shapes.
ForwardInput read_forward_input(const std::string& path, const ModelConfig& cfg, uint64_t seed);

}  // namespace mae
