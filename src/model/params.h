// The one named parameter list. It drives allocation (one contiguous parameter buffer, one gradient buffer, the
// AdamW moments alike), initialisation, checkpoint I/O, the optimizer's groups, the gradient all-reduce and the
// tests. Names and shapes are the official state_dict keys and shapes.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"

namespace mae {

// ConvBias: U(±1/√(C·p·p)), nn.Conv2d's default for the patch-embed bias (and, from kaiming_uniform(a=√5), for its
// weight too).
enum class Init { Xavier, Zero, One, Normal002, ConvBias };

struct ParamSpec {
  std::string name;            // official state_dict key, e.g. "blocks.3.attn.qkv.weight"
  std::vector<int64_t> shape;  // official shape, e.g. {3·D, D}; patch_embed.proj.weight is (D, C, p, p)
  bool decay;                  // AdamW weight decay group (official: not for 1-D tensors and *.bias)
  int layer_id;                // for layer-wise lr decay: embeddings 0, block i → i+1, the rest depth+1
  Init init;
  size_t offset = 0;  // into the flat buffer (elements)
  size_t numel = 0;
};

struct ParamList {
  std::vector<ParamSpec> specs;  // registration order of the official model
  size_t total = 0;              // elements in the flat buffer
  const ParamSpec& find(const std::string& name) const;  // throws if absent
  const ParamSpec* try_find(const std::string& name) const;

 private:
  std::map<std::string, size_t> index_;
  friend ParamList make_param_list(std::vector<ParamSpec> specs);
};

// Lays the specs out in one flat buffer (offsets, numel, 16-element alignment) in the order given.
ParamList make_param_list(std::vector<ParamSpec> specs);

// Appends the 12 tensors of one timm Block (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2) named prefix + ...,
// Linear weights decayed and Xavier-initialised, everything else 1-D and not decayed, all with layer_id `layer`.
void add_block_params(std::vector<ParamSpec>& v, const std::string& prefix, int64_t D, int64_t hidden, int layer);

// Trainable parameters of MaskedAutoencoderViT (the fixed pos_embed / decoder_pos_embed tables are not in it).
ParamList make_mae_params(const ModelConfig& c);

// Shapes of the fixed (non-trained) tables the official state_dict also carries.
inline std::vector<int64_t> pos_embed_shape(const ModelConfig& c) { return {1, 1 + c.num_patches(), c.embed_dim}; }
inline std::vector<int64_t> decoder_pos_embed_shape(const ModelConfig& c) {
  return {1, 1 + c.num_patches(), c.decoder_embed_dim};
}

std::string shape_str(const std::vector<int64_t>& s);  // "(3, 28, 28)"

}  // namespace mae
