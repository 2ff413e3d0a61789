// Linear probing of a frozen MAE encoder: the official main_linprobe.py + engine_finetune.py, as a TrainTask of the
// shared run (train/engine.h).
//   feature (cls token, or mean of patch tokens with global_pool) of the frozen encoder
//   → BatchNorm1d(D, affine=False, eps=1e-6) → Linear(D, nb_classes) (weight trunc_normal std 0.01, bias 0)
//   CrossEntropyLoss; LARS(momentum 0.9, trust 0.001, weight_decay) on the head; lr = blr · eff_batch / 256 with
//   per-iteration linear warmup + half-cycle cosine; train transform RandomResizedCrop(S, scale 0.08–1, bicubic) +
//   flip + normalize; top-1/top-5 on the test split every epoch; log.txt; a probe checkpoint every epoch (head.*, head_bn.* and the
//   LARS momentum optim.mu.head.*, with the run state: --resume continues exactly, mid-epoch too).
// Differences from the official script, by design: the test-split features are computed once (the encoder is frozen
// and the eval transform deterministic, so they are the same every epoch); --cache_features also computes the
// train-split features once, without augmentation, and trains the head on those (every output line says so).
#pragma once
#include <cstdint>
#include <string>

#include "train/run_args.h"

namespace mae {

struct LinprobeArgs : RunArgs {
  std::string finetune;    // encoder checkpoint (any format load_weights_any reads)
  std::string model;       // preset overriding the checkpoint's config ("" = the file's)
  int nb_classes = 0;      // 0 = the train split's classes; otherwise must equal them
  bool global_pool = false;
  double weight_decay = 0.0;
  bool eval = false;
  bool cache_features = false;
  bool raw_pixels = false;   // baseline: the normalised image is the feature (no encoder)
  bool random_init = false;  // baseline: the encoder config of --finetune (or --model) with official init from seed

  LinprobeArgs() {  // main_linprobe.py's defaults where ours differ from RunArgs'
    batch_size = 512;
    epochs = 90;
    blr = 0.1;
    min_lr = 0;
    warmup_epochs = 10;
    save_every = 0;  // checkpoint-last only, unless asked
  }
};

struct LinprobeResult {
  double acc1 = 0, acc5 = 0, loss = 0;  // of the last evaluation; acc5 is NaN with ≤ 5 classes
  double max_acc1 = 0;
  int epochs_run = 0;
  bool preempted = false;  // stopped by a signal after saving checkpoint-last
};

// Throws mae::Error on bad input (messages name the flag or file and the problem).
LinprobeResult run_linprobe(const LinprobeArgs& a);

}  // namespace mae
