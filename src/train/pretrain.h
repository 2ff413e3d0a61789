// MAE pretraining: the official main_pretrain.py + engine_pretrain.py, as a TrainTask of the shared run
// (train/engine.h): the model, its loss and AdamW are this file's; the loop, resume, logs and checkpoints are not.
#pragma once
#include <string>

#include "train/run_args.h"

namespace mae {

struct PretrainArgs : RunArgs {
  // model
  std::string model = "mae_vit_fmnist_small";
  int input_size = 0;  // 0: the preset's img_size
  int in_chans = 0;    // 0: follow the data (1 for grey sets, 3 for colour)
  double mask_ratio = 0.75;
  bool norm_pix_loss = false;
  double weight_decay = 0.05;
  bool cuda_graph = false;  // cuda: each step's forward+backward replayed from a CUDA graph

  PretrainArgs() {  // main_pretrain.py's defaults where ours differ from RunArgs'
    batch_size = 256;
    epochs = 10;
    blr = 1e-3;
    warmup_epochs = 1;
  }
};

// Runs the whole pretraining; throws mae::Error on bad input. Returns the final epoch-mean loss (NaN when no epoch
// ended in this run). A run stopped by a signal has saved its position: *preempted (when given) says so.
double run_pretrain(const PretrainArgs& a, bool* preempted = nullptr);

}  // namespace mae
