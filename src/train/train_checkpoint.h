// Training checkpoints: the model's parameters under their official names (so the file is also a plain model
// checkpoint for PyTorch users), the AdamW moments as optim.m.<name> / optim.v.<name>, gradients still being
// accumulated (optim.grad.<name>, only when a run stops between micro-batches of one update), and in the metadata
// the config, the position in the run and the arguments. Written atomically.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/params.h"

namespace mae {

struct TrainState {
  int epoch = 0;           // epoch to run next (or in progress)
  int64_t next_batch = 0;  // first micro-batch of that epoch still to run
  long step = 0;           // optimizer steps done
  bool pending_grads = false;
};

struct TrainBuffers {  // all laid out by the same ParamList
  float* params;
  float* m;
  float* v;
  float* grads;  // saved only with state.pending_grads
};

void save_train_checkpoint(const std::string& path, const ModelConfig& cfg, const ParamList& list,
                           const TrainBuffers& buf, const TrainState& st, const nlohmann::json& args);

// Restores everything save_train_checkpoint wrote. The checkpoint's config must equal `cfg` (else an error naming
// the file and both configs). A model-only file (no optimizer state) is an error unless allow_weights_only.
TrainState load_train_checkpoint(const std::string& path, const ModelConfig& cfg, const ParamList& list,
                                 const TrainBuffers& buf, nlohmann::json* args_out = nullptr);

// "auto": the newest checkpoint-last / checkpoint-<N> in dir ("" if none).
std::string find_latest_checkpoint(const std::string& dir);

}  // namespace mae
