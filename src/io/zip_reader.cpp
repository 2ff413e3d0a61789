#include "io/zip_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"

static_assert(std::endian::native == std::endian::little, "ZIP fields are little-endian: add byte swapping");

namespace mae::io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalLen = 30, kCentralLen = 46, kEndLen = 22, kZip64EndLen = 56, kZip64LocatorLen = 20;
// Deflate cannot do better than about 1032:1; a larger claimed ratio is a corrupt (or hostile) size field, and
// believing it would allocate that much.
constexpr uint64_t kMaxDeflateRatio = 1032;

template <class T> T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Names as they may appear in messages: control and non-ASCII bytes shown as '?', long ones cut.
std::string printable(const std::string& s) {
  std::string r = s.substr(0, 200);
  for (char& c : r)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s.size() > 200 ? r + "..." : r;
}

}  // namespace

bool looks_like_zip(const uint8_t* p, size_t n) {
  return n >= 4 && p[0] == 'P' && p[1] == 'K' && ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6));
}

ZipReader::ZipReader(const std::string& path) : path_(path), file_(read_file_bytes(path)) { parse(); }

ZipReader::ZipReader(Bytes file, std::string name) : path_(std::move(name)), file_(std::move(file)) { parse(); }

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipReader::parse() {
  const uint8_t* f = file_.data;
  const uint64_t size = file_.size;
  auto bad = [&](const auto&... what) { fail(path_, ": not a valid ZIP archive (truncated or corrupt): ", what...); };
  if (size < kEndLen) bad("the file is ", size, " bytes, shorter than an end-of-central-directory record");

  // The end record sits in the last 22 + 65535 (comment) bytes; take the last candidate whose comment length
  // reaches exactly the end of the file (a signature inside stored data or the comment then cannot fool us).
  uint64_t end = std::numeric_limits<uint64_t>::max();
  const uint64_t lowest = size - kEndLen > 0xffff ? size - kEndLen - 0xffff : 0;
  for (uint64_t at = size - kEndLen + 1; at-- > lowest;) {
    if (get<uint32_t>(f + at) == kEndSig && at + kEndLen + get<uint16_t>(f + at + 20) == size) {
      end = at;
      break;
    }
  }
  if (end == std::numeric_limits<uint64_t>::max()) bad("no end-of-central-directory record");

  const uint8_t* e = f + end;
  uint64_t disk = get<uint16_t>(e + 4), cd_disk = get<uint16_t>(e + 6);
  uint64_t n_here = get<uint16_t>(e + 8), n_total = get<uint16_t>(e + 10);
  uint64_t cd_size = get<uint32_t>(e + 12), cd_offset = get<uint32_t>(e + 16);
  uint64_t cd_limit = end;  // the central directory ends before the end records

  if (end >= kZip64LocatorLen && get<uint32_t>(f + end - kZip64LocatorLen) == kZip64LocatorSig) {
    const uint8_t* loc = f + end - kZip64LocatorLen;
    const uint64_t z64 = get<uint64_t>(loc + 8);
    if (get<uint32_t>(loc + 4) != 0 || get<uint32_t>(loc + 16) > 1) bad("multi-disk archives are not supported");
    if (z64 > end - kZip64LocatorLen || end - kZip64LocatorLen - z64 < kZip64EndLen)
      bad("ZIP64 end record offset ", z64, " is out of range");
    const uint8_t* r = f + z64;
    if (get<uint32_t>(r) != kZip64EndSig) bad("no ZIP64 end record at offset ", z64);
    // The 32-bit record's fields must either defer (all ones) or agree with the ZIP64 ones.
    auto agree = [&](uint64_t small, uint64_t ones, uint64_t big, const char* what) {
      if (small != ones && small != big) bad("the end records disagree on the ", what, " (", small, " and ", big, ")");
      return big;
    };
    disk = get<uint32_t>(r + 16), cd_disk = get<uint32_t>(r + 20);
    n_here = agree(n_here, 0xffff, get<uint64_t>(r + 24), "number of entries");
    n_total = agree(n_total, 0xffff, get<uint64_t>(r + 32), "number of entries");
    cd_size = agree(cd_size, 0xffffffff, get<uint64_t>(r + 40), "central directory size");
    cd_offset = agree(cd_offset, 0xffffffff, get<uint64_t>(r + 48), "central directory offset");
    cd_limit = z64;
  } else if (n_total == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    bad("the end record defers to ZIP64 records, which are missing");
  }
  if (disk != 0 || cd_disk != 0 || n_here != n_total) bad("multi-disk archives are not supported");
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
    bad("central directory [", cd_offset, ", +", cd_size, ") runs past its end records at ", cd_limit);
  if (n_total > cd_size / kCentralLen) bad(n_total, " entries cannot fit a central directory of ", cd_size, " bytes");

  entries_.reserve(n_total);
  uint64_t at = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < n_total; ++i) {
    if (cd_end - at < kCentralLen) bad("central directory entry ", i, " is truncated");
    const uint8_t* c = f + at;
    if (get<uint32_t>(c) != kCentralSig) bad("central directory entry ", i, " at offset ", at, " has a bad signature");
    ZipEntry z;
    z.flags = get<uint16_t>(c + 8);
    z.method = get<uint16_t>(c + 10);
    z.crc32 = get<uint32_t>(c + 16);
    z.comp_size = get<uint32_t>(c + 20);
    z.size = get<uint32_t>(c + 24);
    const uint64_t name_len = get<uint16_t>(c + 28), extra_len = get<uint16_t>(c + 30),
                   comment_len = get<uint16_t>(c + 32);
    uint64_t entry_disk = get<uint16_t>(c + 34);
    uint64_t local = get<uint32_t>(c + 42);
    if (cd_end - at - kCentralLen < name_len + extra_len + comment_len)
      bad("central directory entry ", i, " runs past the directory");
    z.name.assign(reinterpret_cast<const char*>(c + kCentralLen), name_len);
    if (z.name.empty()) bad("central directory entry ", i, " has an empty name");
    if (z.name.find('\0') != std::string::npos) bad("entry name '", printable(z.name), "' holds a NUL byte");

    // ZIP64 extended information: the 64-bit values of exactly the fields that read all-ones, in this order.
    const uint8_t* x = c + kCentralLen + name_len;
    for (uint64_t xo = 0; xo < extra_len;) {
      if (extra_len - xo < 4) bad("entry '", printable(z.name), "': malformed extra field");
      const uint16_t id = get<uint16_t>(x + xo), len = get<uint16_t>(x + xo + 2);
      if (extra_len - xo - 4 < len) bad("entry '", printable(z.name), "': malformed extra field");
      if (id == 0x0001) {
        const uint8_t* v = x + xo + 4;
        uint64_t left = len;
        auto take = [&](uint64_t& field) {
          if (left < 8) bad("entry '", printable(z.name), "': ZIP64 extra field is too short");
          field = get<uint64_t>(v);
          v += 8, left -= 8;
        };
        if (z.size == 0xffffffff) take(z.size);
        if (z.comp_size == 0xffffffff) take(z.comp_size);
        if (local == 0xffffffff) take(local);
        if (entry_disk == 0xffff) {
          if (left < 4) bad("entry '", printable(z.name), "': ZIP64 extra field is too short");
          entry_disk = get<uint32_t>(v);
        }
      }
      xo += 4 + len;
    }
    at += kCentralLen + name_len + extra_len + comment_len;

    const std::string what = "entry '" + printable(z.name) + "'";
    if (entry_disk != 0) bad(what, " is on another disk (multi-disk archives are not supported)");
    if (z.flags & 1) bad(what, " is encrypted");
    if (z.method == 0 && z.comp_size != z.size)
      bad(what, " is stored, but its sizes differ (", z.comp_size, " and ", z.size, " bytes)");

    // The local header must agree with the central one.
    if (local > cd_offset || cd_offset - local < kLocalLen) bad(what, ": local header offset ", local, " is out of range");
    const uint8_t* l = f + local;
    if (get<uint32_t>(l) != kLocalSig) bad(what, ": no local header at offset ", local);
    const uint64_t lname = get<uint16_t>(l + 26), lextra = get<uint16_t>(l + 28);
    if (cd_offset - local - kLocalLen < lname + lextra) bad(what, ": local header runs into the central directory");
    if (lname != name_len || std::memcmp(l + kLocalLen, z.name.data(), name_len) != 0)
      bad(what, ": the local header names '",
          printable(std::string(reinterpret_cast<const char*>(l + kLocalLen), lname)), "'");
    if (get<uint16_t>(l + 8) != z.method) bad(what, ": local and central headers disagree on the method");
    if (!(z.flags & 8)) {  // no data descriptor: the local header carries the real CRC and sizes
      const uint32_t lcrc = get<uint32_t>(l + 14), lcomp = get<uint32_t>(l + 18), lsize = get<uint32_t>(l + 22);
      if (lcrc != z.crc32) bad(what, ": local and central headers disagree on the CRC");
      if ((lcomp != 0xffffffff && lcomp != z.comp_size) || (lsize != 0xffffffff && lsize != z.size))
        bad(what, ": local and central headers disagree on the sizes");
    }
    z.data_offset = local + kLocalLen + lname + lextra;
    if (z.comp_size > cd_offset - z.data_offset)
      bad(what, ": its ", z.comp_size, " bytes at offset ", z.data_offset, " run past the start of the central directory");
    if (z.method == 8 && z.size > z.comp_size * kMaxDeflateRatio + 1024)
      bad(what, ": claims ", z.size, " bytes from ", z.comp_size, " compressed (impossible for deflate)");

    if (!index_.emplace(z.name, entries_.size()).second) bad("the name '", printable(z.name), "' appears twice");
    entries_.push_back(std::move(z));
  }
}

Bytes ZipReader::read(const ZipEntry& z) const {
  auto bad = [&](const auto&... what) { fail(path_, ": entry '", printable(z.name), "': ", what...); };
  const uint8_t* src = file_.data + z.data_offset;
  Bytes out;
  if (z.method == 0) {
    out.hold = file_.hold;
    out.data = src;
    out.size = z.size;
  } else if (z.method == 8) {
    if (z.size > std::numeric_limits<size_t>::max() / 2) bad("too large to inflate (", z.size, " bytes)");
    auto buf = std::make_shared<std::vector<uint8_t>>(z.size);
    z_stream s{};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) bad("cannot start zlib");
    // avail_in/avail_out are 32-bit: feed and drain in chunks of at most 1 GB.
    constexpr uint64_t kChunk = 1u << 30;
    uint64_t in_left = z.comp_size, out_left = z.size;
    const uint8_t* in = src;
    uint8_t* outp = buf->data();
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (s.avail_in == 0 && in_left) {
        s.next_in = const_cast<Bytef*>(in);
        s.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
        in += s.avail_in, in_left -= s.avail_in;
      }
      if (s.avail_out == 0 && out_left) {
        s.next_out = outp;
        s.avail_out = static_cast<uInt>(std::min(out_left, kChunk));
        outp += s.avail_out, out_left -= s.avail_out;
      }
      const uInt before_in = s.avail_in, before_out = s.avail_out;
      // With both buffers empty, zlib reports Z_BUF_ERROR: the stream wants more than the entry declares.
      rc = inflate(&s, Z_NO_FLUSH);
      if (rc == Z_OK && s.avail_in == before_in && s.avail_out == before_out) rc = Z_BUF_ERROR;
    }
    const uint64_t produced = z.size - out_left - s.avail_out;
    const bool input_used = in_left == 0 && s.avail_in == 0;
    inflateEnd(&s);
    if (rc != Z_STREAM_END) {
      if (rc == Z_DATA_ERROR) bad("corrupt deflate data");
      bad("deflate data does not end within the declared sizes (", z.comp_size, " bytes compressed, ", z.size,
          " bytes extracted)");
    }
    if (produced != z.size || !input_used)
      bad("deflate data gives ", produced, " bytes, but the archive declares ", z.size);
    out.data = buf->data();
    out.size = buf->size();
    out.hold = std::shared_ptr<const void>(buf, buf->data());
  } else {
    bad("compression method ", z.method, " is not supported (only stored and deflate)");
  }
  // crc32_z takes z_size_t, so even multi-GB entries go in one call.
  const uint32_t crc = static_cast<uint32_t>(crc32_z(0, out.data, out.size));
  if (crc != z.crc32) bad("CRC-32 mismatch (the data is corrupt)");
  return out;
}

}  // namespace mae::io
