// The training run, written once for pretrain, finetune and linprobe: the official engine_*.train_one_epoch loop
// and the run-level half of main_*.py (schedule, accumulation, resume, checkpoints, evaluation cadence, logs,
// TensorBoard, progress, preemption). A command supplies a TrainTask: its model, loss, optimizer and evaluation.
//
// One optimizer step (engine_pretrain.py / engine_finetune.py):
//   for data_iter_step, samples in enumerate(data_loader):       # from the epoch's first batch, or the resumed one
//     if data_iter_step % accum_iter == 0: adjust_learning_rate(data_iter_step / len(data_loader) + epoch)
//     loss = task(samples) / accum_iter; loss.backward()              task.forward_backward(epoch, i, 1/accum_iter)
//     if (data_iter_step + 1) % accum_iter == 0: step; zero_grad      task.optimizer_step(lr, step)
//   optimizer.zero_grad() at the start of every epoch: an accumulation window never spans two epochs.
// Data parallel: every rank runs the same loop on its slice of each global batch; the task averages gradients in
// optimizer_step; the loss logged is the mean over ranks; rank 0 alone evaluates, prints and writes.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "io/safetensors.h"
#include "train/run_args.h"
#include "train/run_state.h"

namespace mae {

class Dataset;

struct EvalStats {
  double loss = 0, acc1 = 0, acc5 = 0;  // acc5 NaN when undefined (≤ 5 classes)
  int64_t n = 0;
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual std::string command() const = 0;  // "pretrain" | "finetune" | "linprobe": checkpoints say who wrote them
  virtual nlohmann::json args() const = 0;  // the arguments, into every checkpoint
  virtual int64_t batches_per_epoch() const = 0;
  virtual int batch_images() const = 0;  // images of one micro-batch on this rank
  // Per-line suffix naming a mode that changes what the numbers mean (e.g. cached probe features).
  virtual std::string tag() const { return ""; }
  // TensorBoard tag of the training loss: 'train_loss' (engine_pretrain) or 'loss' (engine_finetune).
  virtual std::string loss_tag() const { return "loss"; }

  // ---- the step ----
  virtual void start_epoch(int epoch, int64_t first_batch) = 0;  // data order of the epoch; model.train(True)
  virtual void zero_grad() = 0;
  // Forward and backward of micro-batch i: gradients += dloss · ∂loss/∂θ. May return before the loss is known.
  virtual void forward_backward(int epoch, int64_t i, float dloss) = 0;
  // Averages gradients over ranks, updates with learning rate lr (step = updates so far, this one included),
  // zeroes the gradients.
  virtual void optimizer_step(float lr, long step) = 0;
  virtual double loss_wait() = 0;  // this rank's loss of the last micro-batch
  virtual double grad_norm() { return NAN; }  // of the last update, when the task computes it
  virtual void average_grads() = 0;           // pending gradients over ranks, before they are saved

  // ---- evaluation at the end of each epoch (rank 0) ----
  virtual bool evaluates() const { return false; }
  virtual EvalStats evaluate() { return {}; }
  virtual bool keeps_best() const { return false; }  // also write checkpoint-best (weights only) on a new best
  virtual nlohmann::json log_extras() const { return nlohmann::json::object(); }  // more keys of each log row

  // ---- state ----
  // Writes the model (official names), with the optimizer state (and the gradients when `grads`) unless
  // weights_only, and `meta` (run position, args) atomically to path.
  virtual void save(const std::string& path, const std::map<std::string, std::string>& meta, bool weights_only,
                    bool grads) = 0;
  virtual void load(const io::SafeTensorsReader& f, bool grads) = 0;  // rank 0
  virtual void broadcast(bool grads) = 0;                             // rank 0's state to every rank
};

struct RunResult {
  RunState state;              // where the run ended
  int epochs_run = 0;          // epochs completed in this process
  double last_train_loss = NAN;
  EvalStats last_eval;         // of the last evaluation (rank 0)
  bool evaluated = false;
  bool preempted = false;      // stopped by a signal after saving checkpoint-last
};

// The resume target: "auto" → the newest checkpoint in output_dir (or "" with a note), a path as given. Every rank
// gets rank 0's answer.
std::string resolve_resume(const RunArgs& a);

// Training drops the last partial batch (drop_last=True, as the official loaders): fails, naming the data, when `ds`
// holds fewer images than one global batch (--batch_size × ranks). Call it before allocating for the batch.
void check_one_batch(const Dataset& ds, int batch_size, int world);

// Runs the schedule from the position of --resume (or --start_epoch, or 0) to --epochs / --stop_epoch /
// --max_steps. Throws mae::Error on bad input and on a non-finite loss (nothing saved after it).
RunResult run_training(const RunArgs& a, TrainTask& task);

}  // namespace mae
