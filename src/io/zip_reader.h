// ZIP archives as torch.save writes them (the default since PyTorch 1.6): entries stored uncompressed, each one's
// data 64-byte aligned (padding in the local header's extra field), ZIP64 end records and extra fields wherever a
// size or offset needs more than 32 bits (released ViT-H checkpoints are 2.5 GB). Deflated entries are read too
// (zlib), for archives that other tools re-zipped.
//
// The whole central directory is validated when the archive is opened: end records (ZIP64 included), every entry's
// sizes and offsets within the file, its local header consistent with the central one (signature, name, method,
// CRC and sizes unless a data descriptor defers them), names non-empty, without NUL and unique. Reading an entry
// checks its CRC-32. Any defect throws mae::Error "<file>: <problem>"; nothing reads out of bounds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/file_bytes.h"

namespace mae::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;       // 0 stored, 8 deflate
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t comp_size = 0;    // bytes in the archive
  uint64_t size = 0;         // bytes once extracted
  uint64_t data_offset = 0;  // of the first (compressed) byte, within the file
};

class ZipReader {
 public:
  explicit ZipReader(const std::string& path);
  // An archive already in memory; `name` stands for the file in error messages.
  ZipReader(Bytes file, std::string name);

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }  // in central-directory order
  const ZipEntry* find(const std::string& name) const;               // nullptr if absent

  // The entry's bytes: a view into the file for stored entries, a fresh buffer for deflated ones. Checks the
  // CRC-32; throws naming the file and the entry on any mismatch or decompression error.
  Bytes read(const ZipEntry& e) const;

 private:
  void parse();

  std::string path_;
  Bytes file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> index_;
};

// "PK\3\4" (a local header: every archive with entries starts so) or "PK\5\6" (an empty archive).
bool looks_like_zip(const uint8_t* p, size_t n);

}  // namespace mae::io
