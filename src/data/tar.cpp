#include "data/tar.h"

#include <cerrno>
#include <cstring>
#include <string_view>

#include <unistd.h>

#include "core/error.h"
#include "core/limits.h"
#include "data/replace_file.h"

namespace mae {

namespace {

// ustar header fields: (offset, length).
constexpr size_t kName = 0, kNameLen = 100, kSize = 124, kSizeLen = 12, kChecksum = 148, kChecksumLen = 8,
                 kType = 156, kMagic = 257, kPrefix = 345, kPrefixLen = 155;

std::string field(const uint8_t* h, size_t off, size_t len) {  // NUL-terminated or full-length text
  const char* p = reinterpret_cast<const char*>(h + off);
  return std::string(p, strnlen(p, len));
}

// Octal, NUL/space terminated, leading spaces allowed; or GNU base-256 (high bit of the first byte set) for sizes
// beyond 8 GiB. false when the field is not a number.
bool parse_number(const uint8_t* f, size_t len, uint64_t& v) {
  v = 0;
  if (f[0] & 0x80) {
    if (f[0] != 0x80) return false;  // negative or more than 64 bits
    for (size_t i = 1; i < len; i++) {
      if (v >> 56) return false;
      v = v << 8 | f[i];
    }
    return true;
  }
  size_t i = 0;
  while (i < len && f[i] == ' ') i++;
  bool any = false;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v >> 61) return false;
    v = v << 3 | uint64_t(f[i] - '0');
    any = true;
  }
  for (; i < len; i++)
    if (f[i] != ' ' && f[i] != 0) return false;
  return any;
}

bool checksum_ok(const uint8_t* h) {
  uint64_t want;
  if (!parse_number(h + kChecksum, kChecksumLen, want)) return false;
  uint64_t u = 0;
  int64_t s = 0;  // some old writers summed signed chars
  for (size_t i = 0; i < kTarBlock; i++) {
    const bool in_field = i >= kChecksum && i < kChecksum + kChecksumLen;
    u += in_field ? ' ' : h[i];
    s += in_field ? ' ' : int8_t(h[i]);
  }
  return u == want || uint64_t(s) == want;
}

bool zero_block(const uint8_t* h) {
  for (size_t i = 0; i < kTarBlock; i++)
    if (h[i]) return false;
  return true;
}

uint64_t padded(uint64_t n) { return (n + kTarBlock - 1) / kTarBlock * kTarBlock; }

// pax records "LEN key=value\n": the ones that matter here, path and size.
void parse_pax(const std::string& d, std::string& path, bool& has_size, uint64_t& size, const std::string& where) {
  size_t pos = 0;
  while (pos < d.size()) {
    size_t sp = d.find(' ', pos);
    if (sp == std::string::npos) fail(where, ": malformed pax header record");
    uint64_t len = 0;
    for (size_t i = pos; i < sp; i++) {
      if (d[i] < '0' || d[i] > '9' || len > d.size()) fail(where, ": malformed pax header record length");
      len = len * 10 + uint64_t(d[i] - '0');
    }
    if (len <= sp - pos + 1 || pos + len > d.size() || d[pos + len - 1] != '\n')
      fail(where, ": malformed pax header record");
    std::string_view rec(d.data() + sp + 1, pos + len - 1 - (sp + 1));
    const size_t eq = rec.find('=');
    if (eq == std::string_view::npos) fail(where, ": malformed pax header record (no '=')");
    const std::string_view key = rec.substr(0, eq), val = rec.substr(eq + 1);
    if (key == "path") {
      path = std::string(val);
    } else if (key == "size") {
      size = 0;
      if (val.empty() || val.size() > 19) fail(where, ": pax size '", std::string(val), "' is not a byte count");
      for (char ch : val) {
        if (ch < '0' || ch > '9') fail(where, ": pax size '", std::string(val), "' is not a byte count");
        size = size * 10 + uint64_t(ch - '0');
      }
      has_size = true;
    }
    pos += len;
  }
}

}  // namespace

void pread_exact(int fd, void* dst, size_t size, uint64_t offset, const std::string& what) {
  auto* p = static_cast<uint8_t*>(dst);
  size_t got = 0;
  while (got < size) {
    const ssize_t r = ::pread(fd, p + got, size - got, off_t(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(what, ": read error: ", std::strerror(errno));
    if (r == 0) fail(what, ": the file ends at byte ", offset + got, " (", size, " bytes wanted at ", offset, ")");
    got += size_t(r);
  }
}

void scan_tar(int fd, uint64_t file_size, const std::string& path, const std::function<void(const TarMember&)>& visit) {
  uint8_t h[kTarBlock];
  uint64_t pos = 0;
  std::string last = "(none: the first header)";  // the last complete member, for messages about what follows it
  // Extended names and sizes apply to the next real header.
  std::string long_name;
  bool pax_size = false;
  uint64_t pax_size_value = 0;
  uint64_t first_header = 0;
  bool pending = false;  // pax/GNU blocks seen, their member not yet
  for (;;) {
    if (pos == file_size)
      fail("shard ", path, ": truncated: the file ends at byte ", pos, " without the end-of-archive block (last "
           "member: ", last, ")");
    if (pos + kTarBlock > file_size)
      fail("shard ", path, ": truncated: the file ends inside the header after member ", last, " (byte ", file_size,
           ")");
    pread_exact(fd, h, kTarBlock, pos, "shard " + path);
    if (zero_block(h)) {
      if (pending) fail("shard ", path, ": an extended header after member ", last, " is followed by the end block");
      return;  // end of archive (the second zero block and any padding after it are not needed)
    }
    if (!checksum_ok(h))
      fail("shard ", path, ": the header at byte ", pos, " (after member ", last, ") has a bad checksum: not a tar "
           "file, or corrupt");
    uint64_t size;
    if (!parse_number(h + kSize, kSizeLen, size))
      fail("shard ", path, ": the header at byte ", pos, " has a malformed size field");
    const char type = char(h[kType]);
    if (!pending) first_header = pos;
    std::string name = field(h, kName, kNameLen);
    if (std::memcmp(h + kMagic, "ustar\0" "00", 8) == 0) {  // POSIX ustar: the prefix field extends the name
      const std::string prefix = field(h, kPrefix, kPrefixLen);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    const uint64_t data = pos + kTarBlock;
    if (type == 'x' || type == 'L') {  // pax extended header or GNU long name: read whole, bounded
      const std::string what = "shard " + path + ": extended header at byte " + std::to_string(pos);
      if (size > limits::kShardMetaBytes)
        fail(what, ": ", size, " bytes is more than the limit of ", limits::kShardMetaBytes);
      if (data + size > file_size) fail("shard ", path, ": truncated inside an extended header after member ", last);
      std::string d(size_t(size), '\0');
      pread_exact(fd, d.data(), d.size(), data, "shard " + path);
      if (type == 'L') {
        d.resize(strnlen(d.data(), d.size()));
        long_name = d;
      } else {
        parse_pax(d, long_name, pax_size, pax_size_value, what);
      }
      if (long_name.size() > limits::kTarNameBytes)
        fail(what, ": a member name of ", long_name.size(), " bytes is more than the limit of ",
             limits::kTarNameBytes);
      pending = true;
      pos = data + padded(size);
      continue;
    }
    if (type == 'g' || type == 'K') {  // pax global header, GNU long link name: nothing a sample needs
      pos = data + padded(size);
      continue;
    }
    if (!long_name.empty()) name = long_name;
    if (pax_size) size = pax_size_value;
    long_name.clear();
    pax_size = pending = false;
    if (data > file_size || size > file_size - data)
      fail("shard ", path, ": truncated: member ", name, " needs ", size, " bytes at byte ", data,
           " but the file ends at byte ", file_size);
    if (type == '0' || type == '\0' || type == '7') visit(TarMember{name, first_header, data, size});
    last = name;
    pos = data + padded(size);
  }
}

namespace {

void put_octal(uint8_t* f, size_t len, uint64_t v) {  // len-1 digits, zero-padded, then NUL
  for (size_t i = len - 1; i-- > 0; v >>= 3) f[i] = uint8_t('0' + (v & 7));
  f[len - 1] = 0;
}

}  // namespace

uint64_t TarWriter::add(const std::string& name, const void* data, size_t size) {
  if (name.empty() || name.size() > kNameLen) fail("tar: member name '", name, "' must have 1 to 100 bytes");
  if (uint64_t(size) >= uint64_t(1) << 33) fail("tar: member ", name, " is larger than ustar's 8 GiB");
  uint8_t h[kTarBlock] = {};
  std::memcpy(h + kName, name.data(), name.size());
  put_octal(h + 100, 8, 0644);  // mode
  put_octal(h + 108, 8, 0);     // uid
  put_octal(h + 116, 8, 0);     // gid
  put_octal(h + kSize, kSizeLen, size);
  put_octal(h + 136, 12, 0);    // mtime: fixed, so equal inputs give byte-equal shards
  h[kType] = '0';
  std::memcpy(h + kMagic, "ustar\0" "00", 8);
  std::memset(h + kChecksum, ' ', kChecksumLen);
  uint64_t sum = 0;
  for (uint8_t b : h) sum += b;
  put_octal(h + kChecksum, 7, sum);  // six digits, NUL, space: the classic layout
  h[kChecksum + 7] = ' ';
  write_or_fail(f_, h, kTarBlock);
  write_or_fail(f_, data, size);
  static const uint8_t zeros[kTarBlock] = {};
  write_or_fail(f_, zeros, size_t(padded(size) - size));
  const uint64_t at = pos_ + kTarBlock;
  pos_ += member_bytes(size);
  return at;
}

void TarWriter::finish() {
  static const uint8_t zeros[2 * kTarBlock] = {};
  write_or_fail(f_, zeros, sizeof zeros);
  pos_ += sizeof zeros;
}

}  // namespace mae
