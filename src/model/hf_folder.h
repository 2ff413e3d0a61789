// A Hugging Face model folder (`mae convert IN DIR --to hf`), what `from_pretrained(DIR)` loads:
//   config.json               ViTMAEConfig (MAE: ViTMAEForPreTraining; encoder-only: ViTMAEModel) or ViTConfig (a
//                             cls-token classifier: ViTForImageClassification), layer_norm_eps as trained (1e-6)
//   model.safetensors         the tensors under HF names (io/name_map.h), q/k/v split
//   preprocessor_config.json  ViTImageProcessor: resize to image_size (bicubic), rescale 1/255, normalise with the
//                             checkpoint's mean/std
// A global-pool classifier (fc_norm on the mean of the patch tokens, mae finetune's default) has no transformers ViT
// class: it is refused, naming --to pth and mae export instead. The folder is written whole or not at all.
// load_weights_any (model/checkpoint_load.h) reads such a folder back.
#pragma once
#include <string>
#include <vector>

#include "model/state_dict.h"

namespace mae {

struct HfFolderInfo {
  std::string architecture;         // "ViTMAEForPreTraining", ...
  size_t tensors = 0;
  std::vector<std::string> dropped;  // tensors of the file that are not the module's (not written)
};

HfFolderInfo write_hf_folder(const std::string& dir, const StateDict& sd, double mask_ratio, bool replace);

}  // namespace mae
