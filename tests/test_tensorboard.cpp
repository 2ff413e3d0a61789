// TensorBoard event files: CRC32C against published vectors, and files read back by a minimal reader written here
// independently of the writer (bitwise CRC, its own varint decoding), so one misreading of the format cannot hide
// in both. tests/tensorboard_py.sh decodes with Google's protobuf library as a third opinion.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "train/tensorboard.h"

namespace fs = std::filesystem;
using mae::TensorBoardWriter;

namespace {

uint32_t crc32c_bitwise(const std::string& s) {  // no table: a different implementation from the writer's
  uint32_t c = ~0u;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}
uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

uint64_t le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | (unsigned char)s.at(at + i);
  return v;
}

struct Scalar {
  std::string tag;
  float value;
};
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<Scalar> values;
};

// A protobuf message as (field, wire type, payload) triples; varints come back in `num`.
struct Field {
  uint32_t number, wire;
  uint64_t num;
  std::string bytes;
};
std::vector<Field> fields(const std::string& m) {
  std::vector<Field> out;
  size_t i = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (shift > 63) throw std::runtime_error("varint too long");
      const unsigned char b = m.at(i++);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < m.size()) {
    const uint64_t key = varint();
    Field f{uint32_t(key >> 3), uint32_t(key & 7), 0, {}};
    if (f.wire == 0) f.num = varint();
    else if (f.wire == 1) f.num = le(m, i, 8), i += 8;
    else if (f.wire == 5) f.num = le(m, i, 4), i += 4;
    else if (f.wire == 2) {
      const uint64_t n = varint();
      f.bytes = m.substr(i, n), i += n;
      if (i > m.size()) throw std::runtime_error("bytes run past the message");
    } else throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    out.push_back(f);
  }
  return out;
}

Scalar decode_value(const std::string& m) {
  Scalar s{};
  for (const Field& f : fields(m)) {
    if (f.number == 1 && f.wire == 2) s.tag = f.bytes;
    else if (f.number == 2 && f.wire == 5) { const uint32_t b = uint32_t(f.num); std::memcpy(&s.value, &b, 4); }
    else ADD_FAILURE() << "unexpected Summary.Value field " << f.number;
  }
  return s;
}

Event decode_event(const std::string& m) {
  Event e;
  for (const Field& f : fields(m)) {
    if (f.number == 1 && f.wire == 1) std::memcpy(&e.wall_time, &f.num, 8);
    else if (f.number == 2 && f.wire == 0) e.step = int64_t(f.num);
    else if (f.number == 3 && f.wire == 2) e.file_version = f.bytes;
    else if (f.number == 5 && f.wire == 2) {
      for (const Field& v : fields(f.bytes)) {
        EXPECT_TRUE(v.number == 1 && v.wire == 2) << "unexpected Summary field " << v.number;
        e.values.push_back(decode_value(v.bytes));
      }
    } else ADD_FAILURE() << "unexpected Event field " << f.number << " wire " << f.wire;
  }
  return e;
}

// Every TFRecord of the file, checked (both CRCs, nothing left over), decoded.
std::vector<Event> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<Event> out;
  for (size_t i = 0; i < s.size();) {
    if (s.size() - i < 12) throw std::runtime_error("truncated record header");
    const uint64_t n = le(s, i, 8);
    EXPECT_EQ(le(s, i + 8, 4), masked(crc32c_bitwise(s.substr(i, 8)))) << "length CRC, record " << out.size();
    if (s.size() - i - 12 < n + 4) throw std::runtime_error("truncated record");
    const std::string data = s.substr(i + 12, n);
    EXPECT_EQ(le(s, i + 12 + n, 4), masked(crc32c_bitwise(data))) << "data CRC, record " << out.size();
    out.push_back(decode_event(data));
    i += 12 + n + 4;
  }
  return out;
}

struct TempDir {
  fs::path p = fs::temp_directory_path() / ("mae_tb_" + std::to_string(getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { fs::remove_all(p), fs::create_directories(p); }
  ~TempDir() { fs::remove_all(p); }
};

template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const mae::Error& e) {
    return e.what();
  }
  return "(no mae::Error)";
}

}  // namespace

TEST(TensorBoard, Crc32cKnownVectors) {
  auto crc = [](const std::string& s) { return mae::crc32c(s.data(), s.size()); };
  EXPECT_EQ(crc("123456789"), 0xE3069283u);
  EXPECT_EQ(crc(""), 0u);
  EXPECT_EQ(crc(std::string(32, '\0')), 0x8A9136AAu);    // RFC 3720 B.4
  EXPECT_EQ(crc(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720 B.4
  std::string up;
  for (int i = 0; i < 32; ++i) up += char(i);
  EXPECT_EQ(crc(up), 0x46DD794Eu);  // RFC 3720 B.4
  // Continuing from a previous CRC equals one pass; the masked form is TFRecord's rotation plus constant.
  EXPECT_EQ(mae::crc32c("6789", 4, mae::crc32c("12345", 5)), 0xE3069283u);
  EXPECT_EQ(mae::masked_crc32c("123456789", 9), masked(0xE3069283u));
  EXPECT_EQ(mae::masked_crc32c("", 0), 0xa282ead8u);
  EXPECT_EQ(crc(up + "tensorboard"), crc32c_bitwise(up + "tensorboard"));
}

TEST(TensorBoard, ScalarsReadBack) {
  TempDir d;
  const std::vector<std::tuple<std::string, double, int64_t>> in = {
      {"train/loss", 0.6931, 0},       {"train/loss", -1.25, 1},        {"lr", 1.5e-4, 9000000000LL},
      {"ünïcødé/损失", -3e38, 42},     {"train/loss", 0.0, -7},         {"big", 1e300, INT64_MAX}};
  std::string path;
  const double t0 = std::time(nullptr) - 1;
  {
    TensorBoardWriter w((d.p / "run1").string());  // dir created on the way
    path = w.path();
    for (const auto& [tag, v, step] : in) w.add_scalar(tag, v, step);
    w.flush();
    w.add_scalar("after_flush", 7, 8);  // written by the destructor's flush
  }
  EXPECT_EQ(fs::path(path).parent_path(), d.p / "run1");
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u) << path;
  const std::vector<Event> ev = read_events(path);
  ASSERT_EQ(ev.size(), in.size() + 2);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_TRUE(ev[0].values.empty());
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_GE(ev[i].wall_time, t0);
    EXPECT_LE(ev[i].wall_time, std::time(nullptr) + 1.0);
  }
  for (size_t i = 0; i < in.size(); ++i) {
    const Event& e = ev[i + 1];
    ASSERT_EQ(e.values.size(), 1u) << i;
    EXPECT_EQ(e.values[0].tag, std::get<0>(in[i]));
    EXPECT_EQ(e.values[0].value, float(std::get<1>(in[i])));  // simple_value is a float, like TensorBoard's
    EXPECT_EQ(e.step, std::get<2>(in[i]));
    EXPECT_TRUE(e.file_version.empty());
  }
  EXPECT_TRUE(std::isinf(ev[6].values[0].value));  // 1e300 overflows float, as in PyTorch
  EXPECT_EQ(ev.back().values[0].tag, "after_flush");
}

TEST(TensorBoard, WritersNeverShareAFile) {
  TempDir d;
  TensorBoardWriter a(d.p.string()), b(d.p.string()), c(d.p.string());  // same second, same host
  EXPECT_NE(a.path(), b.path());
  EXPECT_NE(b.path(), c.path());
  EXPECT_NE(a.path(), c.path());
  a.add_scalar("x", 1, 1), b.add_scalar("x", 2, 1), c.add_scalar("x", 3, 1);
  a.flush(), b.flush(), c.flush();
  EXPECT_EQ(read_events(a.path()).at(1).values.at(0).value, 1.f);
  EXPECT_EQ(read_events(b.path()).at(1).values.at(0).value, 2.f);
  EXPECT_EQ(read_events(c.path()).at(1).values.at(0).value, 3.f);
}

TEST(TensorBoard, UnwritableDirIsAClearError) {
  TempDir d;
  std::ofstream(d.p / "file") << "x";
  const std::string bad = (d.p / "file" / "run").string();  // a dir under a regular file
  const std::string msg = error_of([&] { TensorBoardWriter w(bad); });
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensorboard"), std::string::npos) << msg;
}

// A full disk (here: the file size limit) is an error naming the file, not a silently truncated log.
TEST(TensorBoard, WriteErrorNamesTheFile) {
  TempDir d;
  TensorBoardWriter w(d.p.string());
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  auto* old_handler = signal(SIGXFSZ, SIG_IGN);  // the write then fails with EFBIG instead of killing us
  rlimit small = old;
  small.rlim_cur = 4096;
  setrlimit(RLIMIT_FSIZE, &small);
  const std::string msg = error_of([&] {
    for (int i = 0; i < 1000; ++i) w.add_scalar("a/long/enough/tag/to/fill/the/file", i, i);
    w.flush();
  });
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_NE(msg.find(w.path()), std::string::npos) << msg;
}

TEST(TensorBoard, MoveKeepsTheFile) {  // a run utility can hold the writer in a std::optional or a member
  TempDir d;
  TensorBoardWriter a(d.p.string());
  const std::string path = a.path();
  TensorBoardWriter b = std::move(a);
  b.add_scalar("moved", 5, 3);
  b.flush();
  EXPECT_EQ(b.path(), path);
  EXPECT_THROW(a.add_scalar("x", 1, 1), mae::Error);  // NOLINT(bugprone-use-after-move): refused, not a crash
  EXPECT_EQ(read_events(path).at(1).values.at(0).tag, "moved");
}
