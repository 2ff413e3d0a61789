#include "train/run_state.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "dist/comm.h"

namespace mae {

namespace fs = std::filesystem;

nlohmann::json to_json(const RunState& s) {
  return {{"epoch", s.epoch},         {"next_batch", s.next_batch},     {"step", s.step},
          {"pending_grads", s.pending_grads}, {"max_accuracy", s.max_accuracy}, {"loss_sum", s.loss_sum},
          {"lr_sum", s.lr_sum},       {"loss_n", s.loss_n},             {"images", s.images},
          {"interval_loss", s.interval_loss}, {"interval_n", s.interval_n},
          // NaN (a task that computes no norm) is not JSON: null
          {"grad_norm", std::isfinite(s.grad_norm) ? nlohmann::json(s.grad_norm) : nlohmann::json(nullptr)}};
}

namespace {

RunState from_json(const nlohmann::json& j) {
  RunState s;
  s.epoch = j.at("epoch").get<int>();
  s.next_batch = j.at("next_batch").get<int64_t>();
  s.step = j.at("step").get<long>();
  s.pending_grads = j.value("pending_grads", false);
  s.max_accuracy = j.value("max_accuracy", 0.0);
  s.loss_sum = j.value("loss_sum", 0.0), s.lr_sum = j.value("lr_sum", 0.0);
  s.loss_n = j.value("loss_n", int64_t(0)), s.images = j.value("images", int64_t(0));
  s.interval_loss = j.value("interval_loss", 0.0), s.interval_n = j.value("interval_n", int64_t(0));
  s.grad_norm = j.contains("grad_norm") && j["grad_norm"].is_number() ? j["grad_norm"].get<double>() : NAN;
  if (s.epoch < 0 || s.next_batch < 0 || s.step < 0) throw std::out_of_range("negative position");
  return s;
}

// Which command wrote a file: its "run" metadata, or what its other metadata says (weights-only files too).
std::string writer_of(const io::SafeTensorsReader& f) {
  const auto& md = f.metadata();
  if (auto it = md.find("run"); it != md.end()) try {
      return nlohmann::json::parse(it->second).value("command", std::string("?"));
    } catch (...) {
      return "?";
    }
  if (md.count("linprobe")) return "linprobe";
  if (md.count("classifier") || f.has("head.weight")) return "finetune";
  if (md.count("config")) return "a model export (no run state)";
  return "?";
}

}  // namespace

std::map<std::string, std::string> run_metadata(const std::string& command, const RunState& s,
                                                const nlohmann::json& args) {
  nlohmann::json run = to_json(s);
  run["command"] = command;
  return {{"run", run.dump()}, {"args", args.dump()}};
}

RunState read_run_state(const io::SafeTensorsReader& f, const std::string& path, const std::string& command,
                        nlohmann::json* args) {
  const auto& md = f.metadata();
  const std::string by = writer_of(f);
  if (by != command || !md.count("run"))
    fail(path, ": not a checkpoint of `mae ", command, "` to resume (written by ",
         by.find(' ') == std::string::npos ? "`mae " + by + "`" : by, "); ",
         command == "linprobe" ? "give a probe checkpoint written by `mae linprobe`"
                               : "to start from its weights use --finetune");
  try {
    const RunState s = from_json(nlohmann::json::parse(md.at("run")));
    if (args && md.count("args")) *args = nlohmann::json::parse(md.at("args"));
    return s;
  } catch (const std::exception& e) {
    fail(path, ": malformed \"run\" metadata: ", e.what());
  }
}

void add_slot(std::vector<NamedBuffer>& out, const std::string& prefix, const ParamList& list, const float* data) {
  for (const auto& s : list.specs) out.push_back({prefix + s.name, s.shape, data + s.offset});
}

void read_slot(const io::SafeTensorsReader& f, const std::string& prefix, const ParamList& list, float* data) {
  for (const auto& s : list.specs) {
    if (!f.has(prefix + s.name))
      fail(f.path(), ": no tensor '", prefix, s.name, "' (a weights-only file cannot be resumed: resume from "
           "checkpoint-last, or start a new run from it with --finetune)");
    f.read_f32(prefix + s.name, data + s.offset, s.shape);
  }
}

void add_adamw_slots(std::vector<NamedBuffer>& out, const ParamList& list, const TrainBuffers& b, bool weights_only,
                     bool grads) {
  if (!weights_only) add_slot(out, "optim.m.", list, b.m), add_slot(out, "optim.v.", list, b.v);
  if (grads) add_slot(out, "optim.grad.", list, b.grads);
}

void read_adamw_slots(const io::SafeTensorsReader& f, const ParamList& list, const TrainBuffers& b, bool grads) {
  read_slot(f, "optim.m.", list, b.m);
  read_slot(f, "optim.v.", list, b.v);
  if (grads) read_slot(f, "optim.grad.", list, b.grads);
}

void broadcast_adamw_state(const TrainBuffers& b, size_t n, bool grads) {
  for (float* p : {b.params, b.m, b.v}) dist::broadcast(p, n * sizeof(float));
  if (grads) dist::broadcast(b.grads, n * sizeof(float));
}

namespace {
// The N of checkpoint-<N>.safetensors, or -1.
long numbered(const fs::path& p) {
  long k;
  char tail[32];
  const std::string n = p.filename().string();
  if (std::sscanf(n.c_str(), "checkpoint-%ld.%31s", &k, tail) == 2 && std::string(tail) == "safetensors" && k >= 0 &&
      n == "checkpoint-" + std::to_string(k) + ".safetensors")
    return k;
  return -1;
}
std::vector<std::pair<long, fs::path>> numbered_in(const std::string& dir) {
  std::vector<std::pair<long, fs::path>> r;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (const long k = numbered(e.path()); k >= 0) r.push_back({k, e.path()});
  std::sort(r.begin(), r.end());
  return r;
}
}  // namespace

std::string find_latest_checkpoint(const std::string& dir) {
  const fs::path last = fs::path(dir) / "checkpoint-last.safetensors";
  if (fs::exists(last)) return last.string();
  const auto all = numbered_in(dir);
  return all.empty() ? std::string() : all.back().second.string();
}

void prune_checkpoints(const std::string& dir, int keep) {
  const auto all = numbered_in(dir);
  for (size_t i = 0; i + size_t(std::max(keep, 1)) < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].second, ec);
    if (ec) std::fprintf(stderr, "warning: --keep_last: cannot remove %s: %s\n", all[i].second.c_str(),
                         ec.message().c_str());
  }
}

}  // namespace mae
