// Tar shards (WebDataset layout) as a dataset: `key.jpg` + `key.cls` members, read at random by (offset, size) from
// each shard's index (data/shard_index.h), so the loader's (seed, epoch, index) determinism, exact resume and the
// MPI split work as for any dataset.
//
// Order: samples are numbered by key (byte order; equal keys by shard, then position), whatever the order of the
// shards or of the members in them. `mae shard` names keys after the folder index ("0000042_<stem>"), so a
// folder and the shards made from it number the same pictures alike and give bit-identical batches.
// Labels: .cls/.json per sample; shards with no label member at all are one class (label 0), as a flat folder.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/shard_index.h"

namespace mae {

class ShardDataset : public Dataset {
 public:
  // shards: the files in order; source: the folder or pattern the user gave (for messages); index_dir: where
  // indexes go when the shards' folder is not writable ("" = memory only).
  ShardDataset(const std::vector<std::string>& shards, const std::string& source, const std::string& index_dir);
  ~ShardDataset() override;
  ShardDataset(const ShardDataset&) = delete;
  ShardDataset& operator=(const ShardDataset&) = delete;

  size_t size() const override { return items_.size(); }
  int num_classes() const override { return num_classes_; }
  int label(size_t i) const override { return items_[i].label; }
  int channels() const override { return 3; }
  void load(size_t i, Image& out) const override;
  using Dataset::load;
  bool load_encoded(size_t i, std::vector<uint8_t>& bytes) const override;
  std::string name() const override { return "shards"; }
  std::string description() const override;
  std::string item_name(size_t i) const override;  // "<shard>:<member>"
  std::vector<std::string> class_names() const override { return classes_; }

  const IndexStats& index_stats() const { return stats_; }
  size_t shard_count() const { return shards_.size(); }

 private:
  struct Item {
    uint64_t offset;
    uint32_t size;
    int32_t label;
    uint32_t shard;
  };
  struct Shard {
    std::string path;
    uint64_t size;
    int64_t mtime_ns;
  };
  int shard_fd(uint32_t s) const;  // an open descriptor of shard s (owned when kept open; else the caller closes)

  std::string source_;
  std::vector<Shard> shards_;
  std::vector<int> fds_;  // one per shard when they fit under the open-file limit, else empty (open per read)
  std::vector<Item> items_;
  std::string names_;  // member names in dataset order, packed
  std::vector<uint64_t> name_end_;
  std::vector<std::string> classes_;
  int num_classes_ = 1;
  bool unlabelled_ = false;
  IndexStats stats_;
  std::string index_dir_;
};

}  // namespace mae
