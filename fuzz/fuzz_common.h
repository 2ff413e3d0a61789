// Pieces shared by the fuzz targets in fuzz/targets/ (one libFuzzer binary per reader of untrusted bytes).
// The rule every target checks: a reader may reject an input only with mae::Error; any other exception, crash,
// leak, sanitizer report or broken invariant (FUZZ_CHECK) is a bug.
#pragma once
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/file_bytes.h"

// An invariant of what a reader accepted (sizes that match, labels in range): a failure is a finding.
#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace mae::fuzz {

inline std::string le(uint64_t v, int n) {
  std::string s(static_cast<size_t>(n), '\0');
  for (int k = 0; k < n; ++k) s[k] = static_cast<char>(v >> (8 * k));
  return s;
}

// A stored ZIP archive of (name, data) entries, laid out as torch.save writes it (minus the alignment padding).
inline std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string file, central;
  for (const auto& [name, data] : entries) {
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
    const uint64_t offset = file.size();
    file += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(data.size(), 4) +
            le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) +
               le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
               le(0, 2) + le(0, 4) + le(offset, 4) + name;
  }
  const uint64_t cd = file.size();
  file += central + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
          le(central.size(), 4) + le(cd, 4) + le(0, 2);
  return file;
}

// An exact-size heap copy, so that AddressSanitizer sees any read past the end.
inline io::Bytes copy_of(const std::string& s) {
  auto buf = std::make_shared<std::vector<uint8_t>>(s.begin(), s.end());
  return io::Bytes{std::shared_ptr<const void>(buf, buf->data()), buf->data(), buf->size()};
}

// Where write_temp puts its files: tmpfs (/dev/shm) where there is one. On a disk every execution's rewrite of the
// file waits for the writeback of the last one (truncating a page under writeback blocks): the cifar and idx targets,
// which take a path, spent 40–60 % of their time in I/O wait, writing ~15 MB/s.
inline const std::string& temp_dir() {
  static const std::string dir = ::access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
  return dir;
}

// Writes bytes to <temp_dir>/mae_fuzz_<pid><suffix> (one file per suffix and process; readers that take a path) and
// returns the path. Removed at exit so that long runs leave nothing behind.
inline std::vector<std::string>& temp_files() {
  static std::vector<std::string>* files = [] {
    std::atexit([] {
      for (const auto& p : temp_files()) ::unlink(p.c_str());
    });
    return new std::vector<std::string>;
  }();
  return *files;
}

inline std::string write_temp(const std::string& suffix, const void* data, size_t size) {
  const std::string path = temp_dir() + "/mae_fuzz_" + std::to_string(::getpid()) + suffix;
  bool known = false;
  for (const auto& p : temp_files()) known = known || p == path;
  if (!known) temp_files().push_back(path);
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace mae::fuzz
