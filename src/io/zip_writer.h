// ZIP archives as torch.save writes them (PyTorchStreamWriter over miniz), so that `torch.load` and our own
// zip_reader.h open what we write: every entry stored uncompressed, its data starting on a 64-byte boundary (the
// padding lives in the local header's extra field, id "FB", as torch pads it: torch mmaps tensors in place), CRC-32
// from zlib, no data descriptors. Entries stream straight to the FILE* (the body of write_file_atomic), so tensor
// bytes are never gathered into one buffer.
//
// ZIP64 is not written: an archive that would pass 4 GiB is refused (ViT-H weights in float32 are 2.5 GB).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace mae::io {

// One piece of an entry's bytes (an entry may be written from several buffers).
struct ByteSpan {
  const void* data;
  size_t size;
};

class ZipWriter {
 public:
  // `name` stands for the file in error messages.
  ZipWriter(std::FILE* f, std::string name) : f_(f), name_(std::move(name)) {}

  // Appends a stored entry made of `parts`, in order. Throws WriteError on a failed write, mae::Error for a name
  // used twice or an archive growing past 4 GiB.
  void add(const std::string& name, const std::vector<ByteSpan>& parts);
  void add(const std::string& name, const std::string& bytes) { add(name, {{bytes.data(), bytes.size()}}); }
  // Writes the central directory and the end record; nothing may be added after it.
  void finish();

  static constexpr uint64_t kAlign = 64;

 private:
  struct Entry {
    std::string name;
    uint32_t crc, size, offset;
  };
  void put(const void* p, size_t n);
  void put16(uint16_t v);
  void put32(uint32_t v);

  std::FILE* f_;
  std::string name_;
  uint64_t pos_ = 0;
  std::vector<Entry> entries_;
  bool finished_ = false;
};

}  // namespace mae::io
