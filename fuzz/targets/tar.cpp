// libFuzzer target: tar shards — the ustar/pax reader with the shard index built on it — and the same bytes read as
// a shard index cache file.
#include <fcntl.h>

#include "../fuzz_common.h"
#include "core/error.h"
#include "data/shard_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  const std::string tar = fuzz::write_temp(".tar", data, size);
  const int fd = ::open(tar.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  try {
    const ShardIndex idx = build_shard_index(fd, size, 0, tar);
    for (size_t i = 0; i < idx.samples.size(); i++) (void)idx.key(i).size();
  } catch (const Error&) {
  }
  ::close(fd);
  try {
    ShardIndex cached;
    if (load_shard_index(tar, 1 << 20, 0, cached))
      for (size_t i = 0; i < cached.samples.size(); i++) (void)cached.key(i).size();
  } catch (const Error&) {
  }
  return 0;
}
