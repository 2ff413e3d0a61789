#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

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

// One run per folder: an exclusive flock on <dir>/.mae.lock, held until the process ends (the kernel drops it
// however the process dies, so a killed run never leaves a stale lock). The file holds the owner's pid for the message.
int lock_folder(const std::string& dir, const char* flag) {
  const std::string path = (fs::path(dir) / ".mae.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail(flag, " ", dir, ": cannot create ", path, ": ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = "";
    const ssize_t n = ::pread(fd, owner, sizeof owner - 1, 0);
    owner[n > 0 ? n : 0] = 0;
    ::close(fd);
    fail(flag, " ", dir, ": another mae run (pid ", owner[0] ? owner : "?", ") is writing to this folder; wait for "
         "it to end or choose another ", flag);
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {}  // the pid is only for messages
  return fd;
}

// What a finished or stopped run leaves: a new run (not resuming) must not truncate or replace it.
std::vector<std::string> records_in(const std::string& out, const std::string& logs) {
  std::vector<std::string> found;
  for (const char* f : {"log.txt", "metrics.jsonl"})
    if (fs::exists(fs::path(logs) / f)) found.push_back(f);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) == 0 && n.size() > 12 && n.find(".tmp.") == std::string::npos) found.push_back(n);
  }
  return found;
}

// Temp files of atomic writes cut short by a kill (<name>.tmp.<pid>). Called with the folder locked, so no live
// mae run is writing them.
void remove_stale_temps(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    const size_t k = n.rfind(".tmp.");
    if (k == std::string::npos || n.find_first_not_of("0123456789", k + 5) != std::string::npos || k + 5 == n.size())
      continue;
    std::error_code rec;
    if (fs::remove(e.path(), rec)) std::fprintf(stderr, "removed %s (left by a run killed while saving)\n", n.c_str());
  }
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
  locks_.push_back(lock_folder(out_, "--output_dir"));
  if (logs_ != out_) locks_.push_back(lock_folder(logs_, "--log_dir"));
  if (a.resume.empty() && !a.overwrite) {
    const std::vector<std::string> found = records_in(out_, logs_);
    if (!found.empty())
      fail("--output_dir ", out_, " already holds a run (", nlohmann::json(found).dump(), "): continue it with "
           "--resume auto, choose another --output_dir, or replace it with --overwrite");
  }
  remove_stale_temps(out_);
}

RunDir::~RunDir() {
  for (int fd : locks_) ::close(fd);
}

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
