#include "train/run_dir.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "train/curve.h"
#include "train/tensorboard.h"

namespace mae {

namespace fs = std::filesystem;

namespace {

void make_writable_dir(const std::string& dir, const char* flag) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(flag, " ", dir, ": cannot create: ", ec.message());
  // fail now, not after an epoch, if the folder is not writable
  const std::string probe = (fs::path(dir) / ".write_test").string();
  try {
    io::write_file_atomic(probe, std::string("ok"));
  } catch (const Error& e) {
    fail(flag, " ", dir, ": not writable (", e.what(), ")");
  }
  fs::remove(probe, ec);
}

// JSON rows of a file; a torn last line (a kill mid-write) is dropped.
std::vector<nlohmann::json> read_rows(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) try {
      rows.push_back(nlohmann::json::parse(line));
    } catch (...) {
    }
  return rows;
}

void write_rows(const std::string& path, const std::vector<nlohmann::json>& rows) {
  std::string s;
  for (const auto& r : rows) s += r.dump() + "\n";
  io::write_file_atomic(path, s);
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream o(path, std::ios::app);
  o << line << "\n";
  o.flush();
  if (!o) fail(path, ": cannot append: ", std::strerror(errno));
}

double num(const nlohmann::json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN;
}

}  // namespace

RunDir::RunDir(const RunArgs& a, bool writer)
    : writer_(writer), out_(a.output_dir), logs_(a.log_dir.empty() ? a.output_dir : a.log_dir) {
  if (!writer_) return;
  make_writable_dir(out_, "--output_dir");
  if (logs_ != out_) make_writable_dir(logs_, "--log_dir");
}

RunDir::~RunDir() = default;

std::string RunDir::checkpoint(const std::string& name) const {
  return (fs::path(out_) / ("checkpoint-" + name + ".safetensors")).string();
}
std::string RunDir::log_path() const { return (fs::path(logs_) / "log.txt").string(); }

void RunDir::rewind(int epoch, long step) {
  if (!writer_) return;
  epochs_.clear(), metrics_.clear();
  for (auto& r : read_rows(log_path()))
    if (r.value("epoch", 1 << 30) < epoch) epochs_.push_back(std::move(r));
  const std::string mpath = (fs::path(logs_) / "metrics.jsonl").string();
  for (auto& r : read_rows(mpath))
    if (r.value("step", long(1) << 62) <= step) metrics_.push_back(std::move(r));
  write_rows(log_path(), epochs_);
  write_rows(mpath, metrics_);
}

void RunDir::log_epoch(const nlohmann::json& row) {
  if (!writer_) return;
  epochs_.push_back(row);
  append_line(log_path(), row.dump());
}

void RunDir::log_metrics(const nlohmann::json& row) {
  if (!writer_) return;
  metrics_.push_back(row);
  append_line((fs::path(logs_) / "metrics.jsonl").string(), row.dump());
}

void RunDir::scalar(const std::string& tag, double value, int64_t step) {
  if (!writer_) return;
  if (!tb_) tb_ = std::make_unique<TensorBoardWriter>(logs_);
  tb_->add_scalar(tag, value, step);
}

void RunDir::flush() {
  if (tb_) tb_->flush();
}

void RunDir::draw_curves(const std::string& title) const {
  if (!writer_) return;
  Series steps{"loss (every log interval)", {}, {}, "#1f77b4", false};
  for (const auto& r : metrics_) steps.x.push_back(num(r, "epoch_f")), steps.y.push_back(num(r, "loss"));
  Series means{"epoch mean", {}, {}, "#d62728", true};
  Series acc1{"test acc@1", {}, {}, "#1f77b4", true}, acc5{"test acc@5", {}, {}, "#2ca02c", true};
  for (const auto& r : epochs_) {
    const double x = num(r, "epoch") + 1.0;
    means.x.push_back(x), means.y.push_back(num(r, "train_loss"));
    if (std::isfinite(num(r, "test_acc1"))) acc1.x.push_back(x), acc1.y.push_back(num(r, "test_acc1"));
    if (std::isfinite(num(r, "test_acc5"))) acc5.x.push_back(x), acc5.y.push_back(num(r, "test_acc5"));
  }
  write_curve_svg((fs::path(logs_) / "loss_curve.svg").string(), title + ": training loss", "epoch", "loss",
                  {steps, means});
  if (!acc1.x.empty())
    write_curve_svg((fs::path(logs_) / "accuracy_curve.svg").string(), title + ": test accuracy", "epoch",
                    "accuracy (%)", acc5.x.empty() ? std::vector<Series>{acc1} : std::vector<Series>{acc1, acc5});
}

}  // namespace mae
