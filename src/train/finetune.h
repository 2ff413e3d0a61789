// End-to-end fine-tuning for classification: the official main_finetune.py + engine_finetune.py, as a TrainTask of
// the shared run (train/engine.h).
#pragma once
#include <cstdint>
#include <string>

#include "train/run_args.h"

namespace mae {

struct FinetuneArgs : RunArgs {
  // model
  std::string finetune;    // MAE checkpoint to start from ("" = train from scratch)
  std::string model;       // preset (official vit_* names map to our mae_vit_* presets); "" = the checkpoint's
                           // config, or mae_vit_fmnist_small's encoder from scratch
  int input_size = 0;      // 0: the checkpoint's / preset's img_size
  int in_chans = 0;        // 0: the data's channels
  int nb_classes = 0;      // 0: the dataset's number of classes
  bool global_pool = true;  // --global_pool (default) / --cls_token
  double drop_path = 0.1;
  double weight_decay = 0.05;
  double layer_decay = 0.75;
  // augmentation
  std::string aa = "rand-m9-mstd0.5-inc1";  // "" = no RandAugment
  double smoothing = 0.1;
  double reprob = 0.25;
  std::string remode = "pixel";
  int recount = 1;
  double mixup = 0, cutmix = 0, mixup_prob = 1.0, mixup_switch_prob = 0.5;
  std::string mixup_mode = "batch";
  bool eval = false;  // only evaluate the classifier in --resume (or --finetune)
  std::string logits;  // with eval: write every image's logits (N, nb_classes) and label (N) here (.safetensors)

  FinetuneArgs() {  // main_finetune.py's defaults where ours differ from RunArgs'
    batch_size = 64;
    epochs = 50;
    blr = 1e-3;
    min_lr = 1e-6;
    warmup_epochs = 5;
    save_every = 0;  // checkpoint-last and checkpoint-best only, unless asked
  }
};

struct FinetuneResult {
  double best_acc1 = 0;  // max test top-1 (%) over the epochs run (or the --eval accuracy)
  double last_acc1 = 0, last_acc5 = 0, last_test_loss = 0, last_train_loss = 0;
  int epochs_run = 0;
  bool preempted = false;  // stopped by a signal after saving checkpoint-last
};

// Runs fine-tuning (or --eval); throws mae::Error on bad input.
FinetuneResult run_finetune(const FinetuneArgs& a);

}  // namespace mae
