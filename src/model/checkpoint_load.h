// One entry point for model weights in any supported file, by content (magic bytes), never by extension:
//   - our safetensors checkpoints (official names, "config" metadata; optimizer moments and gradients skipped),
//   - safetensors with Hugging Face ViTMAE names (model.safetensors from the hub, or `mae convert --to hf`),
//   - PyTorch .pth/.bin (torch.save >= 1.6 ZIP archives): the released MAE checkpoints {'model': state_dict},
//     training checkpoints, bare state dicts, with official or HF names ("module." from DDP stripped),
//   - a Hugging Face model folder (`mae convert --to hf DIR`, a hub snapshot): its model.safetensors (or
//     pytorch_model.bin) with the config.json beside it.
// Names come back official (q/k/v stacked into qkv; an HF classifier's "classifier.*" as "head.*"). The config is,
// in order of precedence: --model NAME, an explicit config (JSON text or file: ours or an HF config.json), the
// file's "config" metadata (or "hf_config"), the 'config' dict of a .pth written by `mae convert --to pth`, a
// config.json beside an HF-named file, the 'args' of a training checkpoint (args.model names a preset), and
// otherwise an error asking for --model (naming the presets whose shapes fit).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "io/pth.h"
#include "model/config.h"
#include "model/params.h"

namespace mae {

struct LoadedWeights {
  std::string path;           // the file read (a folder's model.safetensors for a folder)
  std::string format;         // "safetensors", "pth {'model': ...}", ... with "(Hugging Face names)" when so
  ModelConfig config;
  std::string config_source;  // "--model mae_vit_base_patch16", "metadata", "config.json beside the file", ...
  io::TensorMap tensors;      // official names, float (or int64) data
  bool has_decoder = false;   // encoder-only checkpoints (mae_pretrain_vit_*.pth) lack decoder* and mask_token
  std::map<std::string, std::string> metadata;  // a safetensors file's __metadata__ (args, run, ...); else empty
  // Set when load_weights_any was asked to defer reads and could: float tensors then have their shapes but no values
  // (f empty), and fill_params reads them from this file (mapped) straight into the model's buffer.
  std::shared_ptr<const io::SafeTensorsReader> deferred;
};

// The weights file of a Hugging Face model folder (model.safetensors, else pytorch_model.bin); `path` itself when
// it is not a folder. Throws naming the folder when it holds neither.
std::string weights_file_of(const std::string& path);

// A model config from JSON text, ours or a Hugging Face config.json (told apart by their keys), validated; errors
// name `where` (a file, or "--config").
ModelConfig config_from_json_text(const std::string& text, const std::string& where);

// defer_reads: a safetensors file with official names keeps its float values in the file until fill_params (one copy
// instead of two: ViT-B/16 is 447 MB); for everything but fill_params, leave it false.
LoadedWeights load_weights_any(const std::string& path, const std::string& model_name_or_empty,
                               const std::string& config_json_or_file = "", bool defer_reads = false);

// Official decoder-side parameter names (decoder_*, mask_token): what an encoder-only checkpoint lacks.
bool is_decoder_param(const std::string& official_name);

// Fills `dst` (laid out by `list`) from the loaded tensors. Decoder parameters are skipped (left as they are in
// dst) when the checkpoint has none and need_decoder is false; with need_decoder an encoder-only checkpoint is an
// error saying so. A missing tensor, a shape other than the model's, or a pos_embed table of another size (other
// img_size/patch_size: interpolating it is not done here) is an error naming the file and the tensor. With dst
// null it only checks.
void fill_params(const LoadedWeights& w, const ParamList& list, float* dst, bool need_decoder);

}  // namespace mae
