#include "model/hf_folder.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/name_map.h"
#include "io/safetensors.h"
#include "model/hf_config.h"

namespace mae {

namespace {

// ViTImageProcessor's fields (transformers' image_processing_vit.py): resample 3 = PIL.Image.BICUBIC.
nlohmann::json preprocessor_json(const StateDict& sd) {
  return {{"image_processor_type", "ViTImageProcessor"},
          {"do_resize", true},
          {"size", {{"height", sd.config.img_size}, {"width", sd.config.img_size}}},
          {"resample", 3},
          {"do_rescale", true},
          {"rescale_factor", 1.0 / 255.0},
          {"do_normalize", true},
          {"image_mean", sd.norm.mean},
          {"image_std", sd.norm.std}};
}

}  // namespace

HfFolderInfo write_hf_folder(const std::string& dir, const StateDict& sd, double mask_ratio, bool replace) {
  HfFolderInfo info;
  nlohmann::json config;
  switch (sd.kind) {
    case ModelKind::Mae:
      info.architecture = "ViTMAEForPreTraining";
      config = config_to_hf_json(sd.config, mask_ratio, "ViTMAEForPreTraining");
      break;
    case ModelKind::Encoder:
      info.architecture = "ViTMAEModel";
      config = config_to_hf_json(sd.config, mask_ratio, "ViTMAEModel");
      break;
    case ModelKind::Classifier: {
      if (sd.classifier.global_pool)
        fail(sd.path, ": a global-pool classifier (fc_norm on the mean of the patch tokens) has no Hugging Face "
                      "ViT class (ViTForImageClassification reads the cls token through layernorm): write it with "
                      "--to pth (models_vit), or `mae export --format onnx`; fine-tune with --cls_token for an HF "
                      "classifier");
      info.architecture = "ViTForImageClassification";
      std::vector<std::string> labels;
      for (int k = 0; k < sd.classifier.nb_classes; ++k) labels.push_back("LABEL_" + std::to_string(k));
      config = config_to_hf_vit_json(sd.config, labels);
      break;
    }
  }

  // The module's tensors only: from_pretrained warns about (and drops) any other.
  io::TensorMap official;
  for (const std::string& n : sd.order) official[n] = sd.tensors.at(n);
  info.dropped = sd.extras;
  io::TensorMap hf = io::to_hf(std::move(official), sd.path);
  if (sd.kind == ModelKind::Encoder) {  // ViTMAEModel is the "vit" of ViTMAEForPreTraining: no prefix
    io::TensorMap bare;
    for (auto& [n, t] : hf) bare[n.rfind("vit.", 0) == 0 ? n.substr(4) : n] = std::move(t);
    hf = std::move(bare);
  }
  std::vector<io::TensorOut> out;
  for (const auto& [name, t] : hf) out.push_back({name, io::DType::F32, t.shape, t.f.data()});  // sorted by name
  info.tensors = out.size();

  io::write_folder_atomic(dir, replace, [&](const std::string& tmp) {
    io::write_file_atomic(tmp + "/config.json", config.dump(2) + "\n");
    io::write_file_atomic(tmp + "/preprocessor_config.json", preprocessor_json(sd).dump(2) + "\n");
    io::write_safetensors(tmp + "/model.safetensors", out, {{"format", "pt"}});
  });
  return info;
}

}  // namespace mae
