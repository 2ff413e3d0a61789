// End-to-end fine-tuning for classification: the official main_finetune.py + engine_finetune.py.
#pragma once
#include <cstdint>
#include <string>

namespace mae {

struct FinetuneArgs {
  // model
  std::string finetune;    // MAE checkpoint to start from ("" = train from scratch)
  std::string model;       // preset (official vit_* names map to our mae_vit_* presets); "" = the checkpoint's
                           // config, or mae_vit_fmnist_small's encoder from scratch
  int input_size = 0;      // 0: the checkpoint's / preset's img_size
  int in_chans = 0;        // 0: the data's channels
  int nb_classes = 0;      // 0: the dataset's number of classes
  bool global_pool = true;  // --global_pool (default) / --cls_token
  double drop_path = 0.1;
  // optimisation
  int batch_size = 64;
  int epochs = 50;
  int accum_iter = 1;
  double weight_decay = 0.05;
  double lr = 0;  // absolute lr; 0 = blr · eff_batch / 256
  double blr = 1e-3;
  double layer_decay = 0.75;
  double min_lr = 1e-6;
  double warmup_epochs = 5;
  // augmentation
  std::string aa = "rand-m9-mstd0.5-inc1";  // "" = no RandAugment
  double smoothing = 0.1;
  double reprob = 0.25;
  std::string remode = "pixel";
  int recount = 1;
  double mixup = 0, cutmix = 0, mixup_prob = 1.0, mixup_switch_prob = 0.5;
  std::string mixup_mode = "batch";
  // data
  std::string data_path;  // "" = Fashion-MNIST from the Debian package
  int num_workers = 2;
  // run
  std::string output_dir = "./output_dir";
  std::string log_dir;  // "" = output_dir
  std::string resume;   // training checkpoint, or "auto"; with --eval the classifier to evaluate
  bool eval = false;
  int stop_epoch = 0;   // stop once this many epochs are done (the schedule still spans --epochs); 0 = all
  uint64_t seed = 0;
  double print_every_s = 5;
  std::string device = "cpu";  // "cuda": the classifier on the GPU (select_device has checked it)
};

struct FinetuneResult {
  double best_acc1 = 0;  // max test top-1 (%) over the epochs run (or the --eval accuracy)
  double last_acc1 = 0, last_acc5 = 0, last_test_loss = 0, last_train_loss = 0;
  int epochs_run = 0;
};

// Runs fine-tuning (or --eval); throws mae::Error on bad input.
FinetuneResult run_finetune(const FinetuneArgs& a);

}  // namespace mae
