// mae bench --gemm_limit: the time one training step's linear layers take as bare GEMMs — every product of the
// step's linear layers (forward, input gradient, weight gradient) on its full shape, OpenBLAS on all the threads —
// measured in the same process as the steps, a round after each step, so a drifting machine slows both alike. The
// step time over this is the share of the GEMM limit (issue 20's target: ≥ 85 %): everything else in the step
// (attention, LayerNorm, GELU, bias sums, AdamW, waiting) is what the share loses.
#pragma once
#include <vector>

#include "model/config.h"

namespace mae::cli {

struct GemmCall {
  bool ta = false, tb = false;
  int M = 0, N = 0, K = 0;
  int count = 0;  // calls of this shape in one step
};

// The linear-layer GEMMs of one MAE training step (cpu/linear.cpp's three products per layer; the patch embedding
// has no input gradient), encoder on B·(1 + len_keep) rows, decoder on B·(1 + L); equal shapes merged.
std::vector<GemmCall> mae_step_gemms(const ModelConfig& c, int B, int len_keep);

class GemmLimit {
 public:
  explicit GemmLimit(std::vector<GemmCall> calls);  // buffers for the largest operands, allocated once
  ~GemmLimit();
  GemmLimit(const GemmLimit&) = delete;
  GemmLimit& operator=(const GemmLimit&) = delete;
  double run() const;    // one round: each shape once, timed; returns Σ count × time (seconds per step)
  double flops() const;  // of one step's calls
 private:
  std::vector<GemmCall> calls_;
  float *a_ = nullptr, *b_ = nullptr, *c_ = nullptr;
};

}  // namespace mae::cli
