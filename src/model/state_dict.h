// A checkpoint as the official PyTorch module it can become, what `mae convert` and `mae export` write out: one of
//   Mae         MaskedAutoencoderViT (models_mae.py): encoder + decoder, the fixed pos_embed tables included
//   Encoder     the encoder of one (the released mae_pretrain_vit_*.pth: no decoder*, no mask_token)
//   Classifier  models_vit.VisionTransformer after `mae finetune`: learned pos_embed, head, fc_norm (global pool)
//               or norm (cls token)
// Every tensor the module has is checked against the config (name and shape) when the file is read, so a writer
// only lays them out.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"  // Normalization
#include "io/pth.h"           // TensorMap
#include "model/config.h"
#include "model/vit.h"        // ClassifierConfig

namespace mae {

enum class ModelKind { Mae, Encoder, Classifier };

// "mae", "encoder", "classifier": the values of `mae convert --as`.
const char* kind_flag(ModelKind k);
// "an MAE (encoder + decoder)", ... for messages.
const char* kind_words(ModelKind k);
// Parses a kind_flag() value; throws naming the flag otherwise.
ModelKind parse_kind(const std::string& s, const std::string& flag);

struct StateDict {
  std::string path, format, config_source;  // as LoadedWeights (model/checkpoint_load.h)
  ModelKind kind = ModelKind::Mae;
  ModelConfig config;
  ClassifierConfig classifier;  // kind == Classifier: nb_classes from head.weight, global_pool = has fc_norm
  std::vector<std::string> order;   // the module's tensors, in its registration order (fixed tables last)
  std::vector<std::string> extras;  // other tensors of the file (not the module's), kept after them
  io::TensorMap tensors;            // official names, float32 (integer tensors as int64)
  std::map<std::string, std::string> metadata;  // of a safetensors input ("args", "run", "classifier", ...)
  Normalization norm;        // what the model's inputs were normalised with (model/pretrained.h rules)
  std::string norm_source;

  const io::Tensor& at(const std::string& name) const;  // throws naming the file if absent
};

// Reads any weights file or folder load_weights_any reads (model_name / config as there), tells its kind and
// checks every tensor of that module: a missing tensor or a wrong shape is an error naming the file.
StateDict load_state_dict(const std::string& path, const std::string& model_name = "",
                          const std::string& config = "");

// Makes `sd` the module `want`: the same kind, or an MAE down to its encoder (decoder and mask_token dropped).
// Anything else is an error naming the file and why its tensors do not fit (an encoder-only file has no decoder
// for a full MAE; a classifier's learned pos_embed and head are no MAE; an MAE has no classifier head).
void convert_kind(StateDict& sd, ModelKind want);

}  // namespace mae
