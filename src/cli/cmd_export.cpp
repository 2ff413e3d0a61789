// mae export IN OUT.onnx --format onnx: a checkpoint as an ONNX model for deployment runtimes (model/onnx_vit.h):
// an MAE or encoder becomes a feature extractor (outputs cls and mean, as `mae embed` and `--global_pool`), a
// fine-tuned classifier its logits. Opset 17, dynamic batch; the input normalisation is in the metadata_props.
// An existing OUT is refused unless --force; the file is written atomically.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "io/onnx_writer.h"
#include "model/onnx_vit.h"
#include "model/state_dict.h"

namespace mae::cli {
namespace {

struct ExportArgs {
  std::string input, output, model, config, format = "onnx";
  bool force = false;
};

void run_export(const ExportArgs& a) {
  check_output_path(a.output, a.force);
  const StateDict sd = load_state_dict(a.input, a.model, a.config);
  std::printf("%s: %s, %s, config from %s: %s\n", a.input.c_str(), sd.format.c_str(), kind_words(sd.kind),
              sd.config_source.c_str(), config_to_json(sd.config).dump().c_str());
  const io::onnx::Model m = build_onnx_vit(sd);
  io::onnx::write_onnx(a.output, m);
  std::string outs;
  for (const auto& o : m.outputs) outs += (outs.empty() ? "" : ", ") + o.name;
  std::printf("wrote %s: ONNX opset %lld, %zu nodes, %zu initializers; images (batch, %d, %d, %d) -> %s\n"
              "  normalise inputs: pixels / 255, then (x - %s) / %s  (%s)\n",
              a.output.c_str(), (long long)m.opset, m.nodes.size(), m.initializers.size(), sd.config.in_chans,
              sd.config.img_size, sd.config.img_size, outs.c_str(), nlohmann::json(sd.norm.mean).dump().c_str(),
              nlohmann::json(sd.norm.std).dump().c_str(), sd.norm_source.c_str());
}

}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* c = app.add_subcommand("export", "Export a checkpoint for deployment runtimes (ONNX): encoder features or "
                                         "a fine-tuned classifier's logits");
  c->footer(
      "An MAE or encoder-only checkpoint gives a feature extractor: input `images` (batch, C, S, S), outputs `cls` "
      "and `mean` (batch, D): the cls token and the mean of the patch tokens of the encoder's latent after its "
      "final norm, every patch kept (mae embed / mae embed --global_pool). A fine-tuned classifier gives `logits` "
      "(batch, nb_classes). Images go in normalised; the model's metadata_props say how (mae.normalize_mean, "
      "mae.normalize_std, of pixels scaled to [0, 1]).");
  c->add_option("input", a->input, "Weights: any file or folder `mae convert` reads")->required();
  c->add_option("output", a->output, "Output .onnx")->required();
  c->add_option("--format", a->format, "Export format")->check(CLI::IsMember({"onnx"}))->capture_default_str();
  c->add_option("--model", a->model, "Preset name, for files without a config (the released .pth checkpoints)");
  c->add_option("--config", a->config, "Model config instead of --model: JSON text or a JSON file");
  c->add_flag("--force,-f", a->force, "Replace OUT if it exists");
  c->callback([a] { run_export(*a); });
}

}  // namespace mae::cli
