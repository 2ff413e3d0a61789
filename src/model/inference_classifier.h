// A fine-tuned classifier (models_vit, VitClassifier) for inference, loaded from a checkpoint in any format mae reads:
// what `mae classify`, `mae serve --classifier` and the C++ API run. Weight loading is finetune --eval's
// (load_weights_any + load_finetune_weights with every tensor required); the class names come from the checkpoint's
// "class_names" metadata, which `mae finetune` writes from its training data.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/checkpoint_load.h"
#include "model/config.h"
#include "model/vit.h"
#include "ops/device_spec.h"

namespace mae {

// The head of a loaded classifier file: nb_classes from head.weight, global pool when fc_norm is there. Throws naming
// the file when it is not a fine-tuned classifier (no head.weight; e.g. an MAE checkpoint).
ClassifierConfig classifier_config_of(const LoadedWeights& w);

struct LoadedClassifier {
  std::string path, format, config_source;
  ModelConfig config;
  ClassifierConfig head;
  std::vector<float> params;             // make_vit_params(config, head) layout
  std::vector<std::string> class_names;  // head.nb_classes names: the metadata's, else "0" … "N-1"
  bool named = false;                    // class_names came from the checkpoint's metadata
  Normalization norm;                    // what the fine-tuning normalised with (checkpoint_normalization)
  std::string norm_source;
};

LoadedClassifier load_classifier(const std::string& path, const std::string& model_name = "");

// finetune --eval's crop: Resize(int(S / crop_pct), bicubic) + CenterCrop(S), crop_pct 224/256 up to 224 px (the
// official build_transform), 1 above.
inline double classifier_crop_pct(int img_size) { return img_size <= 224 ? 224.0 / 256.0 : 1.0; }

class InferenceClassifier {
 public:
  virtual ~InferenceClassifier() = default;
  virtual int batch() const = 0;
  virtual int num_classes() const = 0;
  // imgs (n, C, S, S) normalised, n ≤ batch() → logits (n, nb_classes), a host array valid until the next call.
  virtual const float* forward(const float* imgs, int n) = 0;
};

std::unique_ptr<InferenceClassifier> make_inference_classifier(const LoadedClassifier& c, int batch,
                                                               const DeviceSpec& spec = {});

}  // namespace mae
