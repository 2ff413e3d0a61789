// libFuzzer target: `mae forward`'s --input file (a safetensors with imgs f32 (B, C, H, W) and optional noise f32
// (B, L)), read and checked against a small model's config as the command does before running it.
#include "../fuzz_common.h"
#include "core/error.h"
#include "model/forward_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  static const ModelConfig cfg = [] {
    ModelConfig c;
    c.img_size = 8, c.patch_size = 4, c.in_chans = 3;
    return c;
  }();
  const std::string path = fuzz::write_temp(".input.safetensors", data, size);
  try {
    const ForwardInput in = read_forward_input(path, cfg, 0);
    FUZZ_CHECK(in.batch >= 1);
    FUZZ_CHECK(in.imgs.size() == size_t(in.batch) * 3 * 8 * 8);
    FUZZ_CHECK(in.noise.size() == size_t(in.batch) * 4);
  } catch (const Error&) {
  }
  return 0;
}
