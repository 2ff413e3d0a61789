#include "train/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mae {

namespace {

std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

// Protobuf wire format, the four kinds the Event messages use. A key is (field number << 3) | wire type.
enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& o, uint64_t v) {
  for (; v >= 0x80; v >>= 7) o += char(v | 0x80);
  o += char(v);
}
void put_le(std::string& o, uint64_t v, int bytes) {  // little-endian whatever the host's order
  for (int i = 0; i < bytes; ++i) o += char(v >> (8 * i));
}
void put_key(std::string& o, uint32_t field, Wire w) { put_varint(o, (uint64_t(field) << 3) | w); }
void put_int64(std::string& o, uint32_t field, int64_t v) {  // negative: 10-byte two's complement, as protobuf
  put_key(o, field, kVarint), put_varint(o, uint64_t(v));
}
void put_double(std::string& o, uint32_t field, double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  put_key(o, field, kFixed64), put_le(o, b, 8);
}
void put_float(std::string& o, uint32_t field, float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  put_key(o, field, kFixed32), put_le(o, b, 4);
}
void put_bytes(std::string& o, uint32_t field, const std::string& v) {  // strings and embedded messages
  put_key(o, field, kBytes), put_varint(o, v.size()), o += v;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char h[256] = {};
  if (gethostname(h, sizeof h - 1) != 0 || !h[0]) return "localhost";
  return h;
}

// Opens a file that did not exist (O_EXCL): the plain TensorBoard name, else with .<pid> and a counter, so two
// writers in one second (two runs, or a restart) never share or truncate a file. Returns the path.
std::string create_new(const std::string& dir, std::FILE*& f) {
  const std::string base = (std::filesystem::path(dir) / "events.out.tfevents.").string() +
                           std::to_string(int64_t(now_seconds())) + "." + hostname();
  for (int n = 0; n < 1000; ++n) {
    std::string p = base;
    // appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string&&
    if (n > 0) (p += '.') += std::to_string(getpid());
    if (n > 1) (p += '.') += std::to_string(n);
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) fail("tensorboard dir ", dir, ": cannot create ", p, ": ", std::strerror(errno));
    if (!(f = fdopen(fd, "wb"))) {
      const int e = errno;
      ::close(fd);
      fail("tensorboard dir ", dir, ": cannot open ", p, ": ", std::strerror(e));
    }
    return p;
  }
  fail("tensorboard dir ", dir, ": no free event file name after ", base);
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("tensorboard dir ", dir, ": cannot create it: ", ec.message());
  std::FILE* f = nullptr;
  path_ = create_new(dir, f);
  file_.reset(f);
  // First record, as TensorBoard expects: Event{wall_time = 1, file_version = 3}.
  std::string event;
  put_double(event, 1, now_seconds());
  put_bytes(event, 3, "brain.Event:2");
  try {
    write_record(event);
    flush();  // the file is valid (and visible to TensorBoard) from the start
  } catch (...) {
    file_.reset(), std::remove(path_.c_str());  // no broken file left behind for TensorBoard to trip on
    throw;
  }
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string v, summary, event;
  put_bytes(v, 1, tag);                 // Summary.Value.tag = 1
  put_float(v, 2, float(value));        // Summary.Value.simple_value = 2
  put_bytes(summary, 1, v);             // Summary.value = 1 (repeated)
  put_double(event, 1, now_seconds());  // Event.wall_time = 1
  put_int64(event, 2, step);            // Event.step = 2
  put_bytes(event, 5, summary);         // Event.summary = 5
  write_record(event);
}

void TensorBoardWriter::write_record(const std::string& data) {
  MAE_CHECK(file_, "TensorBoardWriter used after a move: ", path_);
  std::string r, len;
  put_le(len, data.size(), 8);
  r += len;
  put_le(r, masked_crc32c(len.data(), len.size()), 4);
  r += data;
  put_le(r, masked_crc32c(data.data(), data.size()), 4);
  if (std::fwrite(r.data(), 1, r.size(), file_.get()) != r.size())
    fail("tensorboard file ", path_, ": write failed: ", std::strerror(errno));
}

void TensorBoardWriter::flush() {
  MAE_CHECK(file_, "TensorBoardWriter used after a move: ", path_);
  if (std::fflush(file_.get()) != 0 || std::ferror(file_.get()))
    fail("tensorboard file ", path_, ": write failed: ", std::strerror(errno));
}

}  // namespace mae
