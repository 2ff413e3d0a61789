// mae info FILE: a checkpoint's config, metadata and tensors.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "model/weights.h"

namespace mae::cli {
namespace {

void run_info(const std::string& path) {
  io::SafeTensorsReader f(path);
  std::printf("%s\n", path.c_str());
  if (f.metadata().count("config")) {
    const ModelConfig c = read_config(f);
    std::printf("config: %s\n", config_to_json(c).dump().c_str());
    std::printf("  patches %d (grid %d×%d), patch dim %d, encoder %d/%d/%d, decoder %d/%d/%d\n", c.num_patches(),
                c.grid(), c.grid(), c.patch_dim(), c.embed_dim, c.depth, c.num_heads, c.decoder_embed_dim,
                c.decoder_depth, c.decoder_num_heads);
  } else {
    std::printf("config: (none in metadata)\n");
  }
  for (const auto& [k, v] : f.metadata())
    if (k != "config") std::printf("meta %s: %s\n", k.c_str(), v.size() > 200 ? (v.substr(0, 200) + "…").c_str() : v.c_str());
  int64_t total = 0;
  const auto names = f.names();
  for (const auto& n : names) {
    const auto& e = f.entry(n);
    std::printf("  %-48s %-4s %s\n", n.c_str(), io::dtype_name(e.dtype), shape_str(e.shape).c_str());
    if (n.rfind("optim.", 0) != 0 && n.rfind("grad.", 0) != 0 && n != "pos_embed" && n != "decoder_pos_embed")
      total += e.numel();
  }
  std::printf("%zu tensors, %lld parameters (excluding optimizer state, gradients and fixed pos tables)\n",
              names.size(), (long long)total);
}

}  // namespace

void add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* c = app.add_subcommand("info", "Print a checkpoint's config and tensors");
  c->add_option("file", *path, "A .safetensors checkpoint")->required();
  c->callback([path] { run_info(*path); });
}

}  // namespace mae::cli
