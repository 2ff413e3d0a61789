#include "data/shard_dataset.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string_view>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/limits.h"
#include "data/decode.h"
#include "data/tar.h"

namespace fs = std::filesystem;

namespace mae {

namespace {

int64_t mtime_ns(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec; }

// Opens a shard read-only and checks it is a regular file; st receives its size and mtime.
int open_shard(const std::string& path, struct stat& st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("shard ", path, ": cannot open: ", std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("shard ", path, ": not a regular file");
  }
  return fd;
}

// Descriptors for every shard when the open-file limit allows (raising the soft limit towards the hard one):
// a pread on a kept descriptor is what makes shards cheaper than a folder of files.
bool can_keep_open(size_t shards) {
  const rlim_t need = rlim_t(shards) + 256;  // headroom: checkpoints, logs, MPI, the loader's other files
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= need) return true;
  rlimit want = rl;
  want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : std::min<rlim_t>(need, rl.rlim_max);
  return ::setrlimit(RLIMIT_NOFILE, &want) == 0 && want.rlim_cur >= need;
}

std::vector<std::string> read_class_names(const fs::path& file) {
  std::vector<std::string> names;
  std::ifstream f(file);
  std::string line;
  while (names.size() <= size_t(limits::kClasses) && std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    names.push_back(line);
  }
  return names;
}

}  // namespace

ShardDataset::ShardDataset(const std::vector<std::string>& shards, const std::string& source,
                           const std::string& index_dir)
    : source_(source), index_dir_(index_dir) {
  if (shards.empty()) fail("data path ", source, ": no shards");
  const bool keep = can_keep_open(shards.size());
  // Every shard's index, then one numbering by key over all of them.
  std::vector<ShardIndex> idx(shards.size());
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); s++) {
    struct stat st {};
    const int fd = open_shard(shards[s], st);
    try {
      idx[s] = open_shard_index(shards[s], fd, uint64_t(st.st_size), mtime_ns(st), index_dir, stats_);
    } catch (...) {
      ::close(fd);
      for (int k : fds_) ::close(k);
      throw;
    }
    shards_.push_back({shards[s], uint64_t(st.st_size), mtime_ns(st)});
    if (keep)
      fds_.push_back(fd);
    else
      ::close(fd);
    total += idx[s].samples.size();
  }
  if (total > limits::kDatasetItems) fail("data path ", source, ": more than ", limits::kDatasetItems, " samples");
  if (total == 0) fail("data path ", source, ": the ", shards.size(), " shards hold no sample (no .jpg/.png member)");

  struct Ref {
    uint32_t shard, pos;
  };
  std::vector<Ref> refs;
  refs.reserve(size_t(total));
  for (size_t s = 0; s < idx.size(); s++)
    for (size_t p = 0; p < idx[s].samples.size(); p++) refs.push_back({uint32_t(s), uint32_t(p)});
  std::stable_sort(refs.begin(), refs.end(), [&](const Ref& a, const Ref& b) {
    return idx[a.shard].key(a.pos) < idx[b.shard].key(b.pos);
  });

  items_.reserve(refs.size());
  name_end_.reserve(refs.size());
  size_t labelled = 0;
  const Ref* unlabelled = nullptr;
  for (const Ref& r : refs) {
    const ShardSample& smp = idx[r.shard].samples[r.pos];
    items_.push_back({smp.offset, smp.size, smp.label, r.shard});
    names_ += idx[r.shard].member(r.pos);
    name_end_.push_back(names_.size());
    if (smp.label >= 0)
      labelled++;
    else if (!unlabelled)
      unlabelled = &r;
  }
  if (labelled == 0) {  // no labels anywhere: one class, as a flat image folder
    unlabelled_ = true;
    for (Item& it : items_) it.label = 0;
  } else if (unlabelled) {
    fail("shard ", shards_[unlabelled->shard].path, ": sample ", idx[unlabelled->shard].key(unlabelled->pos),
         " has no label member (.cls or .json) while ", labelled, " other samples have one");
  }
  int max_label = 0;
  for (const Item& it : items_) max_label = std::max(max_label, int(it.label));
  num_classes_ = max_label + 1;
  // `mae shard` writes the folder's class names beside the shards.
  classes_ = read_class_names(fs::path(shards_[0].path).parent_path() / "classes.txt");
  if (classes_.size() < size_t(num_classes_)) {
    classes_.clear();
    for (int c = 0; c < num_classes_; c++) classes_.push_back(std::to_string(c));
  }
  classes_.resize(size_t(num_classes_));
}

ShardDataset::~ShardDataset() {
  for (int fd : fds_) ::close(fd);
}

int ShardDataset::shard_fd(uint32_t s) const {
  if (!fds_.empty()) return fds_[s];
  struct stat st {};
  const int fd = open_shard(shards_[s].path, st);
  if (uint64_t(st.st_size) != shards_[s].size || mtime_ns(st) != shards_[s].mtime_ns) {
    ::close(fd);
    fail("shard ", shards_[s].path, " changed after its index was built (size ", shards_[s].size, " → ",
         uint64_t(st.st_size), ", or its mtime): restart to rebuild the index");
  }
  return fd;
}

bool ShardDataset::load_encoded(size_t i, std::vector<uint8_t>& bytes) const {
  const Item& it = items_[i];
  bytes.resize(it.size);
  const int fd = shard_fd(it.shard);
  try {
    pread_exact(fd, bytes.data(), bytes.size(), it.offset, "image " + item_name(i));
  } catch (...) {
    if (fds_.empty()) ::close(fd);
    throw;
  }
  if (fds_.empty()) ::close(fd);
  return true;
}

void ShardDataset::load(size_t i, Image& out) const {
  thread_local std::vector<uint8_t> buf;  // per worker, reused
  load_encoded(i, buf);
  decode_image_memory(buf.data(), buf.size(), item_name(i), out);
}

std::string ShardDataset::item_name(size_t i) const {
  const uint64_t b = i ? name_end_[i - 1] : 0;
  return shards_[items_[i].shard].path + ":" + names_.substr(b, name_end_[i] - b);
}

std::string ShardDataset::description() const {
  std::string s = detail::cat("tar shards ", source_, ": ", size(), " samples in ", shards_.size(), " shard",
                              shards_.size() == 1 ? "" : "s", ", ");
  s += unlabelled_ ? "unlabelled (one class, label 0)" : detail::cat(num_classes_, " classes");
  s += detail::cat("; index: ", stats_.reused, " cached, ", stats_.built, " built");
  if (stats_.saved_fallback) s += detail::cat(" (", stats_.saved_fallback, " saved under ", index_dir_, "/shard-index)");
  if (stats_.memory_only) s += detail::cat(" (", stats_.memory_only, " in memory only: the shards' folder is read-only)");
  return s;
}

}  // namespace mae
