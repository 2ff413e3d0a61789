// `mae shard`: an image folder written as tar shards in the WebDataset layout, so ImageNet-size sets can be read as
// a few hundred large files. Each sample is two members, "<key>.jpg" (or .png: the file's bytes as they are, never
// re-encoded) and "<key>.cls" (the folder's label as a text integer); key = the folder index, zero-padded, then
// the file's stem ("0001234_n01440764_10026"), so shards read back number their samples as the folder does
// (data/shard_dataset.h) and train bit-identically to it. The samples are shuffled once with a seed (streaming
// readers with a small shuffle buffer see mixed classes), shards hold at most max_count samples and max_size bytes,
// each shard's index is written beside it, and the folder's class names go to classes.txt.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace mae {

struct ShardWriteConfig {
  std::string out_dir;
  std::string prefix = "train";       // shards are <out_dir>/<prefix>-000000.tar, ...
  int64_t max_count = 10000;          // samples per shard
  uint64_t max_size = 1'000'000'000;  // bytes per shard (one larger sample gets a shard of its own)
  uint64_t seed = 0;
  bool shuffle = true;
  bool overwrite = false;  // replace <prefix>-*.tar already in out_dir (else refused)
};

struct ShardWriteResult {
  std::vector<std::string> shards;
  std::string pattern;  // the brace pattern naming them, for --data_path
  uint64_t bytes = 0;
  size_t samples = 0;
};

// progress(samples written) is called after every sample. Throws mae::Error naming the file for an unreadable
// or non-JPEG/PNG image, and the folder when it already holds shards of this prefix (without overwrite).
ShardWriteResult write_shards(const FolderDataset& ds, const ShardWriteConfig& cfg,
                              const std::function<void(size_t)>& progress = {});

}  // namespace mae
