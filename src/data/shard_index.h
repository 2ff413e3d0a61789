// The index of one tar shard: where each sample's image lies (offset, size), its label and its member name, so a
// sample is read with one pread. WebDataset's grouping: consecutive members whose names share the key (the path
// up to the first '.' of the base name) form one sample; the image is its .jpg, .jpeg or .png member (that order),
// the label its .cls (a text integer) or .json (an integer, or an object with "label" or "cls"). Members with no
// '.' in their base name, and hidden ones ('.' first, e.g. macOS "._x.jpg"), belong to no sample, as in WebDataset.
//
// Cache: built once by scanning the headers, then stored as "<shard>.mae-index" beside the shard; where that
// folder is not writable, under "<fallback_dir>/shard-index/"; where neither is, kept in memory only. Each index
// records the shard's size and mtime (ns): a shard changed since is noticed and its index rebuilt. A cache file
// that is stale, truncated or fails its checksum is rebuilt as well (a cache is never trusted over the shard).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mae {

struct ShardSample {
  uint64_t offset = 0;  // image member's data in the shard
  uint32_t size = 0;    // image bytes (≤ limits::kImageFileBytes)
  int32_t label = -1;   // -1: the sample has no label member
};

struct ShardIndex {
  uint64_t shard_size = 0;
  int64_t shard_mtime_ns = 0;
  std::vector<ShardSample> samples;
  // Image member names ("<key>.<ext>") packed, and the key's length in each: 1.28 M names cost ~40 MB, not ~100.
  std::string names;
  std::vector<uint64_t> name_end;
  std::vector<uint32_t> key_len;

  std::string_view member(size_t i) const {
    const uint64_t b = i ? name_end[i - 1] : 0;
    return std::string_view(names).substr(b, name_end[i] - b);
  }
  std::string_view key(size_t i) const { return member(i).substr(0, key_len[i]); }
};

// Scans the shard (open as fd, st_size bytes, mtime mtime_ns) into an index. Throws mae::Error naming the shard and
// the member for a truncated tar, a sample without an image, a label that is not an integer or is out of range
// [0, limits::kClasses), and sizes over the limits.
ShardIndex build_shard_index(int fd, uint64_t size, int64_t mtime_ns, const std::string& path);

// Where an index came from when a dataset was opened (counts over its shards, for the description and tests).
struct IndexStats {
  size_t reused = 0;            // read from a cache file that matched the shard
  size_t built = 0;             // scanned from the shard (first use, or the shard changed)
  size_t saved_beside = 0, saved_fallback = 0, memory_only = 0;  // where the built ones went
};

// The cached index of the shard, or a fresh one (then saved as described above). fallback_dir "" = none.
ShardIndex open_shard_index(const std::string& shard, int fd, uint64_t size, int64_t mtime_ns,
                            const std::string& fallback_dir, IndexStats& stats);

// Cache files: the one beside the shard and the fallback one.
std::string index_path_beside(const std::string& shard);
std::string index_path_fallback(const std::string& shard, const std::string& fallback_dir);
// Writes/reads one cache file. save: false when the folder is not writable (nothing left behind). load: false
// when the file is missing, stale (size/mtime differ) or damaged.
bool save_shard_index(const std::string& file, const ShardIndex& idx);
bool load_shard_index(const std::string& file, uint64_t size, int64_t mtime_ns, ShardIndex& out);

}  // namespace mae
