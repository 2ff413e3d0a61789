#include "io/zip_writer.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <limits>

#include "core/error.h"
#include "io/atomic_file.h"

static_assert(std::endian::native == std::endian::little, "ZIP fields are little-endian: add byte swapping");

namespace mae::io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint64_t kLocalLen = 30, kEndLen = 22;
constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();
constexpr uint16_t kVersion = 20;  // "2.0": stored entries, no ZIP64 (miniz writes the same)

}  // namespace

void ZipWriter::put(const void* p, size_t n) {
  write_all(f_, p, n);
  pos_ += n;
}
void ZipWriter::put16(uint16_t v) { put(&v, 2); }
void ZipWriter::put32(uint32_t v) { put(&v, 4); }

void ZipWriter::add(const std::string& name, const std::vector<ByteSpan>& parts) {
  MAE_CHECK(!finished_);
  for (const Entry& e : entries_)
    if (e.name == name) fail(name_, ": archive entry '", name, "' written twice");
  if (name.empty() || name.size() > 0xffff) fail(name_, ": archive entry name of ", name.size(), " bytes");
  uint64_t size = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const ByteSpan& s : parts) {
    size += s.size;
    // zlib's crc32 takes a uInt length: feed large buffers in pieces.
    for (size_t done = 0; done < s.size;) {
      const size_t n = std::min<size_t>(s.size - done, size_t(1) << 30);
      crc = crc32(crc, static_cast<const Bytef*>(s.data) + done, static_cast<uInt>(n));
      done += n;
    }
  }
  // Extra field "FB" + its length, then filler, so that the data starts on a multiple of kAlign.
  const uint64_t header_end = pos_ + kLocalLen + name.size();
  uint64_t pad = (kAlign - (header_end + 4) % kAlign) % kAlign;
  const uint64_t extra = 4 + pad;
  if (pos_ > kMax32 || header_end + extra + size > kMax32)
    fail(name_, ": the archive would pass 4 GiB, which needs ZIP64 (not written here)");

  const uint32_t off = static_cast<uint32_t>(pos_);
  put32(kLocalSig);
  put16(kVersion), put16(0), put16(0), put16(0), put16(0);  // version needed, flags, stored, time, date
  put32(static_cast<uint32_t>(crc)), put32(static_cast<uint32_t>(size)), put32(static_cast<uint32_t>(size));
  put16(static_cast<uint16_t>(name.size())), put16(static_cast<uint16_t>(extra));
  put(name.data(), name.size());
  put16(0x4246), put16(static_cast<uint16_t>(pad));  // "FB": torch's padding record
  static const char zeros[kAlign] = {};
  put(zeros, pad);
  for (const ByteSpan& s : parts) put(s.data, s.size);
  entries_.push_back({name, static_cast<uint32_t>(crc), static_cast<uint32_t>(size), off});
}

void ZipWriter::finish() {
  MAE_CHECK(!finished_);
  finished_ = true;
  const uint64_t cd_start = pos_;
  for (const Entry& e : entries_) {
    put32(kCentralSig);
    put16(kVersion), put16(kVersion), put16(0), put16(0), put16(0), put16(0);  // made by, needed, flags, method, time, date
    put32(e.crc), put32(e.size), put32(e.size);
    put16(static_cast<uint16_t>(e.name.size())), put16(0), put16(0);  // name, extra, comment lengths
    put16(0), put16(0), put32(0);                                       // disk, internal and external attributes
    put32(e.offset);
    put(e.name.data(), e.name.size());
  }
  const uint64_t cd_size = pos_ - cd_start;
  if (pos_ + kEndLen > kMax32 || entries_.size() > 0xffff)
    fail(name_, ": the archive would pass 4 GiB or 65535 entries, which needs ZIP64 (not written here)");
  put32(kEndSig);
  put16(0), put16(0);  // this disk, the central directory's disk
  put16(static_cast<uint16_t>(entries_.size())), put16(static_cast<uint16_t>(entries_.size()));
  put32(static_cast<uint32_t>(cd_size)), put32(static_cast<uint32_t>(cd_start));
  put16(0);  // comment length
}

}  // namespace mae::io
