// A run's output folder (util/misc.py's role): checkpoints in --output_dir; log.txt (one JSON row per epoch, the
// official keys), metrics.jsonl (a row every few optimizer steps), the curves (SVG) and TensorBoard event files in
// --log_dir. Only rank 0 makes one that writes; the other ranks' RunDir is inert (every call a no-op).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/run_args.h"

namespace mae {

class TensorBoardWriter;

class RunDir {
 public:
  // writer: rank 0. Creates both folders and checks that they are writable (an error naming the flag otherwise),
  // locks them for this run (a second run on them is refused), refuses a new run (no --resume) in a folder that
  // holds another run's log or checkpoints, and removes temp files left by a run killed while saving.
  RunDir(const RunArgs& a, bool writer);
  ~RunDir();

  bool writer() const { return writer_; }
  const std::string& output_dir() const { return out_; }
  // <output_dir>/checkpoint-<name>.safetensors
  std::string checkpoint(const std::string& name) const;

  // Keeps the log.txt rows of epochs before `epoch` and the metrics.jsonl rows up to optimizer step `step` (a run
  // killed after its last checkpoint may have logged past it), so the records continue those of the checkpoint.
  void rewind(int epoch, long step);
  void log_epoch(const nlohmann::json& row);     // log.txt
  void log_metrics(const nlohmann::json& row);   // metrics.jsonl
  // TensorBoard scalar (events.out.tfevents.* in --log_dir, opened at the first call).
  void scalar(const std::string& tag, double value, int64_t step);
  void flush();
  // loss_curve.svg (metrics + epoch means) and, when the rows have test_acc1, accuracy_curve.svg.
  void draw_curves(const std::string& title) const;
  std::string log_path() const;

 private:
  bool writer_;
  std::string out_, logs_;
  std::vector<nlohmann::json> epochs_, metrics_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::vector<int> locks_;  // flock'd descriptors of the folders
};

}  // namespace mae
