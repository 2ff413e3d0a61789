#include "model/forward_input.h"

#include <random>

#include "core/error.h"
#include "core/limits.h"
#include "io/safetensors.h"
#include "model/params.h"

namespace mae {

ForwardInput read_forward_input(const std::string& path, const ModelConfig& cfg, uint64_t seed) {
  io::SafeTensorsReader in(path);
  if (!in.has("imgs")) fail(path, ": no tensor 'imgs' (expected f32 (B, C, H, W))");
  std::vector<int64_t> ishape;
  ForwardInput r;
  r.imgs = in.read_f32("imgs", &ishape);
  if (ishape.size() != 4 || ishape[0] < 1)
    fail(path, ": 'imgs' has shape ", shape_str(ishape), ", expected (B, C, H, W)");
  if (ishape[1] != cfg.in_chans || ishape[2] != cfg.img_size || ishape[3] != cfg.img_size)
    fail(path, ": 'imgs' has shape ", shape_str(ishape), " but the model takes (B, ", cfg.in_chans, ", ",
         cfg.img_size, ", ", cfg.img_size, ") (in_chans ", cfg.in_chans, ", img_size ", cfg.img_size, ")");
  if (ishape[0] > limits::kBatchImages)
    fail(path, ": 'imgs' holds ", ishape[0], " images; at most ", limits::kBatchImages, " in one batch");
  r.batch = int(ishape[0]);
  const int L = cfg.num_patches();
  r.noise.resize(size_t(r.batch) * L);
  if (in.has("noise")) {
    in.read_f32("noise", r.noise.data(), {r.batch, L});
  } else {
    std::mt19937_64 rng(seed);
    for (auto& x : r.noise) x = float(double(rng() >> 11) * 0x1.0p-53);
  }
  return r;
}

}  // namespace mae
