// Classifier weights: starting a fine-tune from an MAE checkpoint (main_finetune.py --finetune), the position-table
// interpolation of util/pos_embed.py, and fine-tuned classifier checkpoints (safetensors, official names).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "model/config.h"
#include "model/params.h"
#include "model/vit.h"
#include "model/weights.h"

namespace mae {

// util/pos_embed.py interpolate_pos_embed: the (gs_old², D) patch rows of a (extra + gs_old², D) table resized to
// (gs_new², D) by F.interpolate(mode='bicubic', align_corners=False) on the (gs, gs) grid (A = −0.75, edge
// values repeated, float arithmetic as torch's CPU kernel), the `extra` leading rows (cls) kept as they are.
std::vector<float> interpolate_pos_embed(const float* src, int extra, int old_grid, int new_grid, int D);

struct FinetuneInit {
  std::vector<std::string> loaded;   // tensors taken from the checkpoint
  std::vector<std::string> missing;  // model tensors left at their initialisation (head.*, fc_norm.* ...)
  std::vector<std::string> ignored;  // checkpoint tensors the classifier has no use for (decoder*, norm.* ...)
  std::string pos_note;              // "", "interpolated 7x7 -> 14x14" or "no pos_embed in the file: sin-cos table"
};

// main_finetune.py --finetune: copies the encoder of an MAE (or classifier) checkpoint into `dst`, a classifier's
// float parameters laid out by `list` and already initialised. As the official code with strict=False:
// patch_embed, cls_token, blocks and (cls-token models) norm must be in the file with the model's shapes; head.*
// is taken only when its shape matches; everything else in the file is ignored. pos_embed is interpolated when the
// grid differs. A missing encoder tensor or a shape that differs is an error naming the file and the tensor.
// `model` is the classifier's encoder config (its in_chans, embed_dim, depth... must equal the checkpoint's).
FinetuneInit load_finetune_weights(const LoadedWeights& w, const ModelConfig& model, const ParamList& list,
                                   float* dst);

// The classifier part of a checkpoint's metadata: "classifier": {"nb_classes", "global_pool", "drop_path"}.
nlohmann::json classifier_to_json(const ClassifierConfig& cc);

// Writes a classifier checkpoint: parameters under their official names + extras, metadata "config" (the encoder's
// ModelConfig), "classifier" and `meta`. Atomic.
void save_classifier(const std::string& path, const ModelConfig& cfg, const ClassifierConfig& cc,
                     const ParamList& list, const float* params, const std::vector<NamedBuffer>& extra = {},
                     std::map<std::string, std::string> meta = {});

// Reads the config and classifier metadata of a fine-tuned checkpoint. A file without "classifier" metadata or
// without head.weight (a plain MAE checkpoint) is an error saying it is not a fine-tuned classifier.
void read_classifier_config(const io::SafeTensorsReader& f, ModelConfig* cfg, ClassifierConfig* cc);

}  // namespace mae
