// The flags every training command shares (main_pretrain.py, main_finetune.py and main_linprobe.py have the same
// run-level arguments): schedule, output, resume, checkpoint cadence. Each command's own args derive from this and
// set their official defaults in their constructor.
#pragma once
#include <cstdint>
#include <string>

#include "ops/device_spec.h"

namespace mae {

struct RunArgs {
  // schedule
  int batch_size = 64;  // per process
  int epochs = 10;
  int accum_iter = 1;
  double lr = 0;  // absolute lr; 0 = blr · batch_size · accum_iter · world / 256
  double blr = 1e-3;
  double min_lr = 0;
  double warmup_epochs = 1;
  long max_steps = 0;  // stop after this many optimizer steps of the run, counted from step 0 (0 = all epochs)
  int stop_epoch = 0;  // stop once this many epochs are done (the schedule still spans --epochs); 0 = all
  // data
  std::string data_path;  // "" = Fashion-MNIST from the Debian package
  int num_workers = 2;
  std::string decode = "exact";  // --decode: exact (PIL's bytes) | fast (crop-aware JPEG decode, data/crop_decode.h)
  uint64_t seed = 0;
  // output and resume
  std::string output_dir = "./output_dir";
  std::string log_dir;  // log.txt, metrics.jsonl, curves, TensorBoard events; "" = output_dir
  std::string resume;   // a checkpoint of the same command, "auto" (the newest in output_dir), or ""
  bool overwrite = false;  // a new run may replace the records of another run in output_dir
  int start_epoch = -1; // -1: from the checkpoint (or 0)
  // checkpoint cadence: checkpoint-last at every epoch end, and
  int save_every = 1;             // checkpoint-<epoch> every N epochs (0: never)
  long save_every_steps = 0;      // checkpoint-last every N optimizer steps (0: off)
  double save_every_minutes = 0;  // checkpoint-last every M minutes of training (0: off)
  int keep_last = 0;              // keep only the K newest checkpoint-<epoch> files (0: all)
  double print_every_s = 5;
  std::string device = "cpu";  // the flag, as given (recorded in the args)
  DeviceSpec spec;             // parsed once from --device/--precision by the CLI (start_run); runs dispatch on it
};

// Every flag's impossible values: throws mae::Error naming the flag.
void validate(const RunArgs& a);

}  // namespace mae
