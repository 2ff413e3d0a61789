// The tar format as WebDataset shards use it, read by member offset and written as plain ustar.
//
// Why our own reader and not libarchive: training reads single members at random by (offset, size) with pread, and
// libarchive is a streaming extractor that does not hand out data offsets; what shards need is small (ustar headers,
// pax 'x' records for long names and sizes, GNU 'L' long names, base-256 sizes) and every field is checked here
// against the file's size and core/limits.h before anything is allocated (tests/test_shards.cpp, the fuzz target).
//
// Reading: scan_tar walks the headers in order, seeking over member data, and hands every regular file to `visit`.
// Errors are mae::Error naming the shard and the member: a bad header checksum, a member whose data runs past the
// end of the file, a file that ends without the end-of-archive block (a shard cut on a block boundary).
// Writing: TarWriter emits ustar headers (names ≤ 100 bytes, mode 0644, mtime 0 so equal inputs give equal shards)
// and the two zero blocks that end an archive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace mae {

constexpr uint64_t kTarBlock = 512;

struct TarMember {
  std::string name;         // full path inside the archive (pax path / GNU long name / ustar prefix + name)
  uint64_t header = 0;      // offset of the member's first header block (pax/GNU blocks included)
  uint64_t offset = 0;      // offset of its data
  uint64_t size = 0;        // bytes of data
};

// Scans the tar in fd (file_size bytes; `path` names it in messages) and calls visit for every regular file member.
// Directories, links and device entries are skipped. Reads only headers (and pax/GNU name blocks).
void scan_tar(int fd, uint64_t file_size, const std::string& path, const std::function<void(const TarMember&)>& visit);

// Reads `size` bytes at `offset` of fd into dst (pread, restarting on EINTR); throws mae::Error "<what>: ..." when the
// file is shorter or unreadable.
void pread_exact(int fd, void* dst, size_t size, uint64_t offset, const std::string& what);

class TarWriter {
 public:
  explicit TarWriter(FILE* f) : f_(f) {}
  // Appends a regular file member; returns the offset of its data. name: 1..100 bytes.
  uint64_t add(const std::string& name, const void* data, size_t size);
  // The end-of-archive blocks. The archive is complete after this.
  void finish();
  uint64_t bytes() const { return pos_; }
  // Bytes a member of `size` data bytes takes in the archive (header + padded data).
  static uint64_t member_bytes(uint64_t size) { return kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock; }

 private:
  FILE* f_;
  uint64_t pos_ = 0;
};

}  // namespace mae
