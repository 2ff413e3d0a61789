// Which tar shards a --data_path names: a folder of *.tar files, one .tar file, or a WebDataset-style pattern
// (`shards/train-{000000..000146}.tar`: brace alternatives {a,b} and zero-padded ranges {000..146}, nested or in
// sequence, then shell globs * ? [..] per expanded name).
#pragma once
#include <string>
#include <vector>

namespace mae {

// Brace expansion as the `braceexpand` package WebDataset uses: left to right, ranges keep the zero padding of their
// bounds. Throws mae::Error when the expansion would list more than limits::kShardFiles names.
std::vector<std::string> expand_braces(const std::string& pattern);

// true when the path is a pattern (braces or glob characters) rather than the name of a file or folder.
bool is_shard_pattern(const std::string& path);

// The shards a pattern names, in expansion order (glob matches sorted). Throws mae::Error naming the pattern when
// it matches nothing, and naming the first missing file when a brace list names files that do not exist.
std::vector<std::string> resolve_shard_pattern(const std::string& pattern);

// The *.tar files of a folder (regular files, not hidden), sorted, for a split: names starting with "train" for the
// train split, "val" (else "test") for the others; when no name starts with train/val/test, all of them serve every
// split. Empty when the folder holds no .tar file; throws when it has shards of other splits but not this one.
std::vector<std::string> shards_in_folder(const std::string& dir, bool train);

}  // namespace mae
