// MAE pretraining: the official main_pretrain.py + engine_pretrain.py loop.
#pragma once
#include <cstdint>
#include <string>

namespace mae {

struct PretrainArgs {
  // model
  std::string model = "mae_vit_fmnist_small";
  int input_size = 0;  // 0: the preset's img_size
  int in_chans = 0;    // 0: follow the data (1 for grey sets, 3 for colour)
  double mask_ratio = 0.75;
  bool norm_pix_loss = false;
  // optimisation
  int batch_size = 256;  // per process
  int epochs = 10;
  int accum_iter = 1;
  double weight_decay = 0.05;
  double lr = 0;  // absolute lr; 0 = blr · eff_batch / 256
  double blr = 1e-3;
  double min_lr = 0;
  double warmup_epochs = 1;
  long max_steps = 0;  // total optimizer steps of the run from step 0 (0 = all epochs)
  // data
  std::string data_path;  // "" = Fashion-MNIST from the Debian package
  int num_workers = 2;
  // run
  std::string output_dir = "./output_dir";
  std::string log_dir;  // "" = output_dir
  std::string resume;   // path, "auto", or ""
  int start_epoch = -1; // -1: from the checkpoint (or 0)
  int save_every = 1;   // also write checkpoint-<epoch> every N epochs (0: only checkpoint-last)
  uint64_t seed = 0;
  int threads = 0;
  double print_every_s = 5;
  std::string device = "cpu";  // "cuda": the model on the GPU (CUDA builds); precision is set globally (ops_cuda.h)
  bool cuda_graph = false;      // cuda: each step's forward+backward replayed from a CUDA graph
};

// Runs the whole pretraining; throws mae::Error on bad input. Returns the final epoch-mean loss.
double run_pretrain(const PretrainArgs& a);

}  // namespace mae
