// libFuzzer target: the model-config JSON (ours, or a Hugging Face config.json) as `mae init --config`, checkpoint
// metadata and HF folders read it, then what the config makes us compute and allocate: the parameter layout, and
// (for small models) the 2-D sin-cos position tables — the path where an unbounded img_size/patch_size overflowed.
// Every config that validates must round-trip through its JSON forms.
#include "../fuzz_common.h"
#include "core/error.h"
#include "model/checkpoint_load.h"
#include "model/hf_config.h"
#include "model/params.h"
#include "model/pos_embed.h"

#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const ModelConfig c = config_from_json_text(text, "fuzz.json");
    const ParamList list = make_mae_params(c);
    // (the fixed pos_embed tables are not parameters: a narrow model may have fewer parameters than patches)
    FUZZ_CHECK(list.total >= size_t(c.patch_dim()) * size_t(c.embed_dim));
    if (list.total <= (size_t(1) << 22)) {
      const std::vector<float> pos = sincos_pos_embed_2d(c.embed_dim, c.grid(), c.grid(), true);
      FUZZ_CHECK(pos.size() == size_t(1 + c.num_patches()) * c.embed_dim);
      const std::vector<float> dpos = sincos_pos_embed_2d(c.decoder_embed_dim, c.grid(), c.grid(), true);
      FUZZ_CHECK(dpos.size() == size_t(1 + c.num_patches()) * c.decoder_embed_dim);
    }
    const ModelConfig back = config_from_json(config_to_json(c), "round trip");
    FUZZ_CHECK(config_to_json(back) == config_to_json(c));
  } catch (const Error&) {
  }
  return 0;
}
