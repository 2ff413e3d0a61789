// Where a run stands, and the checkpoint layout every training command shares.
//
// A checkpoint is one safetensors file:
//   tensors   the model's parameters under their official names (so the file is also a plain model checkpoint for
//             PyTorch users and for the other mae commands), then the optimizer state as optim.<slot>.<name>
//             (AdamW: m, v; LARS: mu), then gradients of an unfinished accumulation window as optim.grad.<name>
//             (only when the run stopped between the micro-batches of one update);
//   metadata  "run"    {"command": "pretrain"|"finetune"|"linprobe", epoch, next_batch, step, pending_grads,
//                       max_accuracy, and the epoch's running sums}: the exact position of the run;
//             "args"   the command's arguments as JSON;
//             and what the command's model needs to be rebuilt ("config" for MAE and ViT models, "classifier",
//             "linprobe"/"encoder_config" for probes). Written atomically (temp file, fsync, rename).
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/params.h"
#include "model/weights.h"

namespace mae {

// Trivially copyable (broadcast to every rank as bytes).
struct RunState {
  int epoch = 0;               // epoch to run next (or in progress)
  int64_t next_batch = 0;      // first micro-batch of that epoch still to run
  long step = 0;               // optimizer steps done
  bool pending_grads = false;  // stopped inside an accumulation window: the gradients are in the file
  double max_accuracy = 0;     // best test top-1 so far (commands that evaluate)
  // The epoch's running sums, so that the epoch's log row after a resume is the straight run's.
  double loss_sum = 0, lr_sum = 0;
  int64_t loss_n = 0, images = 0;
  double interval_loss = 0;  // metrics.jsonl: loss since the last row
  int64_t interval_n = 0;
  double grad_norm = 0;  // of the last update
};

nlohmann::json to_json(const RunState& s);

// The metadata of a checkpoint written by `command` at state `s`.
std::map<std::string, std::string> run_metadata(const std::string& command, const RunState& s,
                                                const nlohmann::json& args);

// The run state of a checkpoint, which must have been written by `command` (else a one-line error naming the file
// and the command that wrote it). *args gets its "args" metadata when non-null.
RunState read_run_state(const io::SafeTensorsReader& f, const std::string& path, const std::string& command,
                        nlohmann::json* args = nullptr);

// Optimizer state or gradients laid out by `list` as tensors "<prefix><name>" (prefix e.g. "optim.m.").
void add_slot(std::vector<NamedBuffer>& out, const std::string& prefix, const ParamList& list, const float* data);
void read_slot(const io::SafeTensorsReader& f, const std::string& prefix, const ParamList& list, float* data);

struct TrainBuffers {  // host arrays, all laid out by the model's ParamList
  float* params;
  float* m;
  float* v;
  float* grads;
};
// AdamW's state in the shared layout: optim.m.* and optim.v.* (unless weights_only), and optim.grad.* when `grads`
// (an unfinished accumulation window).
void add_adamw_slots(std::vector<NamedBuffer>& out, const ParamList& list, const TrainBuffers& b, bool weights_only,
                     bool grads);
void read_adamw_slots(const io::SafeTensorsReader& f, const ParamList& list, const TrainBuffers& b, bool grads);
// Rank 0's parameters, moments (and gradients, mid-window) to every rank; n floats each.
void broadcast_adamw_state(const TrainBuffers& b, size_t n, bool grads);

// "auto": checkpoint-last in dir, else the newest checkpoint-<N>; "" if none.
std::string find_latest_checkpoint(const std::string& dir);
// Deletes all but the `keep` newest checkpoint-<N>.safetensors in dir (keep ≥ 1; checkpoint-last/-best untouched).
void prune_checkpoints(const std::string& dir, int keep);

}  // namespace mae
