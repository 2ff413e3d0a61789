// safetensors reader/writer and atomic file writes: round trips, a file laid out byte for byte as the official
// Python writer does, every kind of corrupt header (each must throw mae::Error naming the file and the problem, never
// crash or read out of bounds: run this binary under ASan/valgrind), and failed writes leaving the old file intact.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace mae::io {
namespace {

namespace fs = std::filesystem;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}

template <class T> std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// 8-byte length + header (padded with spaces to a multiple of 8 when `pad`) + data.
std::string st_file(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The message of the mae::Error that f throws ("" and a test failure if it throws nothing or something else).
template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-mae::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

class SafeTensorsTest : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = testing::TempDir() + "mae_st_" + info->name() + "_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  // Writes `bytes` to a fresh file, opens it and expects an Error naming the file and containing `keyword`.
  void expect_bad(const std::string& label, const std::string& bytes, const std::string& keyword) {
    const std::string path = file("bad_" + std::to_string(n_bad_++) + ".safetensors");
    write_raw(path, bytes);
    const std::string msg = error_of([&] { SafeTensorsReader r(path); });
    EXPECT_NE(msg.find(path + ": "), std::string::npos) << label << ": " << msg;
    EXPECT_NE(msg.find(keyword), std::string::npos) << label << ": expected '" << keyword << "' in: " << msg;
  }

  std::string dir_;
  int n_bad_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Round trips

TEST_F(SafeTensorsTest, RoundTripAllKinds) {
  const std::vector<float> f32 = {1.5f, -2.25f, 0.f, 3e-38f, -INFINITY, 7.f};
  const std::vector<int64_t> i64 = {0, -1, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), inf.
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00};
  // BF16: 1, -3, 1e-40-ish subnormal (0x0001 = 2^-133), nan.
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x0001, 0x7FC0};
  const float scalar = 0.125f;
  const std::vector<double> f64 = {1.0 / 3.0, -1e300};
  const std::vector<int32_t> i32 = {5, -7, 9};
  const std::vector<uint8_t> u8 = {0, 255, 3};
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"config", R"({"depth": 12})"}, {"é", "ü\n"}};

  const std::string path = file("rt.safetensors");
  write_safetensors(path,
                    {{"w.f32", DType::F32, {2, 3}, f32.data()},
                     {"ids", DType::I64, {4}, i64.data()},
                     {"half", DType::F16, {5}, f16.data()},
                     {"brain", DType::BF16, {2, 2}, bf16.data()},
                     {"loss", DType::F32, {}, &scalar},
                     {"empty", DType::F32, {0, 5}, nullptr},
                     {"f64", DType::F64, {2}, f64.data()},
                     {"i32", DType::I32, {3, 1}, i32.data()},
                     {"u8", DType::U8, {3}, u8.data()}},
                    meta);

  const std::string bytes = read_all(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), 8 + n + 24 + 32 + 10 + 8 + 4 + 0 + 16 + 12 + 3);

  SafeTensorsReader r(path);
  EXPECT_EQ(r.path(), path);
  EXPECT_EQ(r.metadata(), meta);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"w.f32", "ids", "half", "brain", "loss", "empty", "f64", "i32", "u8"}));
  EXPECT_TRUE(r.has("ids"));
  EXPECT_FALSE(r.has("nope"));

  std::vector<int64_t> shape;
  EXPECT_EQ(r.read_f32("w.f32", &shape), f32);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> dst(6);
  r.read_f32("w.f32", dst.data(), {2, 3});
  EXPECT_EQ(dst, f32);
  EXPECT_EQ(r.entry("w.f32").dtype, DType::F32);
  EXPECT_EQ(r.entry("w.f32").numel(), 6);
  EXPECT_EQ(std::memcmp(r.raw("w.f32"), f32.data(), 24), 0);

  EXPECT_EQ(r.read_i64("ids", &shape), i64);
  EXPECT_EQ(shape, std::vector<int64_t>{4});

  std::vector<float> h = r.read_f32("half");
  EXPECT_EQ(h[0], 1.f);
  EXPECT_EQ(h[1], -2.f);
  EXPECT_EQ(h[2], 65504.f);
  EXPECT_EQ(h[3], std::ldexp(1.f, -24));
  EXPECT_EQ(h[4], INFINITY);

  std::vector<float> b = r.read_f32("brain", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(b[0], 1.f);
  EXPECT_EQ(b[1], -3.f);
  EXPECT_EQ(b[2], std::ldexp(1.f, -133));
  EXPECT_TRUE(std::isnan(b[3]));

  float s = 0;
  r.read_f32("loss", &s, {});
  EXPECT_EQ(s, scalar);
  EXPECT_EQ(r.read_f32("loss", &shape), std::vector<float>{scalar});
  EXPECT_TRUE(shape.empty());
  EXPECT_EQ(r.entry("loss").numel(), 1);

  EXPECT_TRUE(r.read_f32("empty", &shape).empty());
  EXPECT_EQ(shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(r.entry("empty").begin, r.entry("empty").end);

  std::vector<float> d = r.read_f32("f64");
  EXPECT_EQ(d[0], static_cast<float>(1.0 / 3.0));
  EXPECT_EQ(d[1], -INFINITY);  // out of float range rounds to inf
  EXPECT_EQ(r.read_i64("i32"), (std::vector<int64_t>{5, -7, 9}));
  EXPECT_EQ(r.read_i64("u8"), (std::vector<int64_t>{0, 255, 3}));

  // The reader shares its mapping: copies stay valid after the original is gone.
  std::unique_ptr<SafeTensorsReader> orig = std::make_unique<SafeTensorsReader>(path);
  SafeTensorsReader copy = *orig;
  orig.reset();
  EXPECT_EQ(copy.read_f32("w.f32"), f32);
}

TEST_F(SafeTensorsTest, NoMetadataAndNoTensors) {
  const std::string path = file("empty.safetensors");
  write_safetensors(path, {}, {});
  EXPECT_EQ(read_all(path), le64(8) + "{}      ");
  SafeTensorsReader r(path);
  EXPECT_TRUE(r.names().empty());
  EXPECT_TRUE(r.metadata().empty());
}

TEST_F(SafeTensorsTest, AccessErrorsNameFileTensorAndShapes) {
  const std::vector<float> f = {1, 2, 3, 4, 5, 6};
  const int64_t i = 3;
  const std::string path = file("acc.safetensors");
  write_safetensors(path, {{"x", DType::F32, {2, 3}, f.data()}, {"s", DType::F32, {}, f.data()}, {"i", DType::I64, {}, &i}},
                    {});
  SafeTensorsReader r(path);
  std::vector<float> dst(6);
  std::string msg = error_of([&] { r.read_f32("x", dst.data(), {3, 2}); });
  for (const char* k : {"acc.safetensors: ", "'x'", "[2, 3]", "[3, 2]"}) EXPECT_NE(msg.find(k), std::string::npos) << msg;
  msg = error_of([&] { r.read_f32("s", dst.data(), {1}); });  // a scalar is not a [1]
  for (const char* k : {"'s'", "[]", "[1]"}) EXPECT_NE(msg.find(k), std::string::npos) << msg;
  msg = error_of([&] { r.entry("nope"); });
  EXPECT_NE(msg.find(path + ": no tensor 'nope'"), std::string::npos) << msg;
  msg = error_of([&] { r.read_f32("i"); });
  EXPECT_NE(msg.find("I64"), std::string::npos) << msg;
  msg = error_of([&] { r.read_i64("x"); });
  EXPECT_NE(msg.find("F32"), std::string::npos) << msg;
  EXPECT_EQ(r.read_i64("i"), std::vector<int64_t>{3});
}

// ---------------------------------------------------------------------------------------------------------------
// Files as other writers make them

// Bytes as huggingface safetensors (Rust core, >= 0.3) writes save_file({"weight": torch.tensor([[1., 2.], [3., 4.]]),
// "ids": torch.tensor([7, -1, 3])}, metadata={"format": "pt"}): compact serde JSON, __metadata__ first, tensors
// ordered by alignment (I64 before F32) then name, header padded with spaces to 8 bytes.
TEST_F(SafeTensorsTest, ReadsOfficialWriterLayout) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},)"
      R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[24,40]}})";
  const std::string data = bytes_of(std::vector<int64_t>{7, -1, 3}) + bytes_of(std::vector<float>{1, 2, 3, 4});
  const std::string bytes = st_file(header, data);
  EXPECT_EQ(bytes.size() % 8, 0u);
  const std::string path = file("official.safetensors");
  write_raw(path, bytes);

  SafeTensorsReader r(path);
  EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(r.names(), (std::vector<std::string>{"ids", "weight"}));
  EXPECT_EQ(r.read_i64("ids"), (std::vector<int64_t>{7, -1, 3}));
  std::vector<float> w(4);
  r.read_f32("weight", w.data(), {2, 2});
  EXPECT_EQ(w, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(r.entry("weight").begin, 24u);
  EXPECT_EQ(r.entry("weight").end, 40u);

  // Our writer, given the same tensors in the same order, makes the same data section and equivalent header.
  const std::vector<int64_t> ids = {7, -1, 3};
  const std::vector<float> wt = {1, 2, 3, 4};
  const std::string ours = file("ours.safetensors");
  write_safetensors(ours, {{"ids", DType::I64, {3}, ids.data()}, {"weight", DType::F32, {2, 2}, wt.data()}},
                    {{"format", "pt"}});
  EXPECT_EQ(read_all(ours), bytes);
}

// Older writers did not pad the header, so tensors can start at odd addresses; pretty-printed JSON is valid too.
TEST_F(SafeTensorsTest, ReadsUnpaddedUnalignedPrettyHeader) {
  const std::string header =
      "{\n  \"b\": {\"dtype\": \"U8\", \"shape\": [3], \"data_offsets\": [0, 3]},\n"
      "  \"h\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [3, 7]},\n"
      "  \"f\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [7, 11], \"extra\": [1]},\n"
      "  \"q\": {\"dtype\": \"BOOL\", \"shape\": [2], \"data_offsets\": [11, 13]}\n}";
  std::string data = "\x01\x02\x03";
  data += bytes_of(std::vector<uint16_t>{0x3C00, 0x3555}) + bytes_of(std::vector<float>{-0.5f}) + std::string("\x00\x07", 2);
  std::string bytes = st_file(header, data, /*pad=*/false);
  ASSERT_NE((8 + header.size()) % 4, 0u);  // really unaligned
  const std::string path = file("unpadded.safetensors");
  write_raw(path, bytes);
  SafeTensorsReader r(path);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"b", "h", "f", "q"}));
  EXPECT_EQ(r.read_i64("b"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r.read_f32("h"), (std::vector<float>{1.f, 0.333251953125f}));
  EXPECT_EQ(r.read_f32("f"), std::vector<float>{-0.5f});
  EXPECT_EQ(r.read_i64("q"), (std::vector<int64_t>{0, 1}));
}

// Gaps between tensors, trailing bytes, empty tensors sharing an offset: harmless, accepted.
TEST_F(SafeTensorsTest, AcceptsGapsTrailingBytesAndEmptyTensors) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},)"
      R"("y":{"dtype":"I8","shape":[0,3],"data_offsets":[8,8]},"__metadata__":{}})";
  const std::string data = std::string(8, 'x') + bytes_of(std::vector<float>{2.f}) + "trailing";
  const std::string path = file("gaps.safetensors");
  write_raw(path, st_file(header, data));
  SafeTensorsReader r(path);
  EXPECT_EQ(r.read_f32("a"), std::vector<float>{2.f});
  EXPECT_TRUE(r.read_i64("y").empty());
  EXPECT_EQ(r.names(), (std::vector<std::string>{"y", "z", "a"}));
}

// Not a regular file (e.g. `--input <(...)`): read through instead of mmapped.
TEST_F(SafeTensorsTest, ReadsFromPipe) {
  const std::string fifo = file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::vector<float> big(100000, 0.5f);  // larger than a pipe buffer
  const std::string header = R"({"x":{"dtype":"F32","shape":[100000],"data_offsets":[0,400000]}})";
  const std::string bytes = st_file(header, bytes_of(big));
  std::thread writer([&] { write_raw(fifo, bytes); });
  SafeTensorsReader r(fifo);
  writer.join();
  EXPECT_EQ(r.read_f32("x"), big);
}

// ---------------------------------------------------------------------------------------------------------------
// Half-precision conversion

TEST(HalfConversion, F16SpecialValues) {
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(0x0000)), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.f, -24));                // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.f, -24));
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.f, -24));              // largest subnormal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.f, -14));                 // smallest normal
  EXPECT_EQ(f16_to_f32(0x3C00), 1.f);
  EXPECT_EQ(f16_to_f32(0x3C01), 1.f + std::ldexp(1.f, -10));
  EXPECT_EQ(f16_to_f32(0xC000), -2.f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.f);
  EXPECT_EQ(f16_to_f32(0x7C00), INFINITY);
  EXPECT_EQ(f16_to_f32(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));  // signalling nan stays nan
  EXPECT_TRUE(std::isnan(f16_to_f32(0xFE00)));
}

#ifdef __FLT16_MAX__
// Every one of the 65536 bit patterns against the compiler's own _Float16 -> float conversion.
TEST(HalfConversion, F16ExhaustiveAgainstCompiler) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t bits = static_cast<uint16_t>(i);
    const float want = static_cast<float>(std::bit_cast<_Float16>(bits));
    const float got = f16_to_f32(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << i;
      ASSERT_EQ(std::signbit(got), std::signbit(want)) << std::hex << i;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << std::hex << i;
    }
  }
}
#endif

TEST(HalfConversion, BF16) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.f);
  EXPECT_EQ(bf16_to_f32(0xBFC0), -1.5f);
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.f, -133));  // subnormal
  EXPECT_EQ(std::bit_cast<uint32_t>(bf16_to_f32(0x8000)), 0x80000000u);
  EXPECT_EQ(bf16_to_f32(0x7F80), INFINITY);
  EXPECT_EQ(bf16_to_f32(0xFF80), -INFINITY);
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC0)));
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7F81)));
  EXPECT_EQ(bf16_to_f32(0x7F7F), std::bit_cast<float>(0x7F7F0000u));  // max finite
  for (uint32_t i = 0; i < 65536; ++i) {
    const float f = bf16_to_f32(static_cast<uint16_t>(i));
    if (!std::isnan(f)) {
      ASSERT_EQ(std::bit_cast<uint32_t>(f), i << 16);
    }
  }
}

TEST(DTypes, NamesAndSizes) {
  EXPECT_STREQ(dtype_name(DType::BF16), "BF16");
  EXPECT_STREQ(dtype_name(DType::BOOL), "BOOL");
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::U8), 1u);
}

// ---------------------------------------------------------------------------------------------------------------
// Corrupt files: each must throw mae::Error "<path>: ..." naming the problem.

TEST_F(SafeTensorsTest, MissingOrUnreadableFile) {
  const std::string missing = file("missing.safetensors");
  std::string msg = error_of([&] { SafeTensorsReader r(missing); });
  EXPECT_NE(msg.find(missing + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  msg = error_of([&] { SafeTensorsReader r(dir_); });
  EXPECT_NE(msg.find(dir_ + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
  if (::geteuid() != 0) {  // root reads anything
    const std::string locked = file("locked.safetensors");
    write_raw(locked, st_file("{}", ""));
    ::chmod(locked.c_str(), 0);
    msg = error_of([&] { SafeTensorsReader r(locked); });
    EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
  }
}

TEST_F(SafeTensorsTest, BadSizesAndHeaderLength) {
  expect_bad("empty file", "", "shorter than the 8-byte");
  expect_bad("7 bytes", std::string(7, '\0'), "shorter than the 8-byte");
  expect_bad("length 0", le64(0) + "{}", "header length is 0");
  expect_bad("length past end", le64(100) + "{}", "runs past the end of the file");
  expect_bad("length 1 past end", le64(3) + "{}", "runs past the end of the file");
  expect_bad("length > 100MB", le64(100'000'001) + std::string(64, ' '), "too large");
  expect_bad("length 2^63", le64(uint64_t{1} << 63) + "{}", "too large");
  expect_bad("length 2^64-1", le64(~uint64_t{0}) + "{}", "too large");
}

TEST_F(SafeTensorsTest, BadJson) {
  expect_bad("open brace", st_file("{", ""), "not valid JSON");
  expect_bad("truncated entry", st_file(R"({"a":{"dtype":"F32")", ""), "not valid JSON");
  expect_bad("garbage", st_file("\xff\xfe\x01garbage", ""), "not valid JSON");
  expect_bad("bad utf8", st_file("{\"\xc3\x28\":1}", ""), "not valid JSON");
  expect_bad("nul padding", le64(8) + std::string("{}\0\0\0\0\0\0", 8), "NUL byte");
  expect_bad("nul then more", st_file(std::string("{}\0{\"a\":1}", 10), ""), "NUL byte");
  expect_bad("two values", st_file("{} {}", ""), "not valid JSON");
  expect_bad("array", st_file("[1,2]", ""), "not a JSON object");
  expect_bad("number", st_file("12345", ""), "not a JSON object");
  expect_bad("string", st_file("\"abc\"", ""), "not a JSON object");
  expect_bad("null", st_file("null", ""), "not a JSON object");
  // Deep nesting must not exhaust memory or stack.
  expect_bad("deep", st_file("{\"a\":" + std::string(200000, '[') + std::string(200000, ']') + "}", ""),
             "nests deeper");
  expect_bad("duplicate", st_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                  R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                  "xy"),
             "'a' twice");
}

TEST_F(SafeTensorsTest, BadEntries) {
  auto one = [](const std::string& entry, const std::string& data = std::string(16, '\0')) {
    return st_file("{\"t\":" + entry + "}", data);
  };
  expect_bad("entry is number", one("5"), "must be a JSON object");
  expect_bad("entry is array", one("[]"), "must be a JSON object");
  expect_bad("no dtype", one(R"({"shape":[1],"data_offsets":[0,4]})"), "missing 'dtype'");
  expect_bad("no shape", one(R"({"dtype":"F32","data_offsets":[0,4]})"), "missing 'shape'");
  expect_bad("no offsets", one(R"({"dtype":"F32","shape":[1]})"), "missing 'data_offsets'");
  expect_bad("dtype number", one(R"({"dtype":1,"shape":[1],"data_offsets":[0,4]})"), "'dtype' must be a string");
  expect_bad("unknown dtype", one(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})"), "unknown dtype");
  expect_bad("lowercase dtype", one(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})"), "unknown dtype");
  expect_bad("empty dtype", one(R"({"dtype":"","shape":[1],"data_offsets":[0,4]})"), "unknown dtype");
  expect_bad("shape string", one(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})"), "'shape' must be an array");
  expect_bad("shape object", one(R"({"dtype":"F32","shape":{},"data_offsets":[0,4]})"), "'shape' must be an array");
  expect_bad("shape float", one(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,4]})"), "array of integers");
  expect_bad("shape 1.0", one(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})"), "array of integers");
  expect_bad("shape nested", one(R"({"dtype":"F32","shape":[[1]],"data_offsets":[0,4]})"), "array of integers");
  expect_bad("shape null", one(R"({"dtype":"F32","shape":[null],"data_offsets":[0,4]})"), "array of integers");
  expect_bad("negative dim", one(R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,4]})"), "negative dimension");
  expect_bad("dim > int64", one(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]})"),
             "overflows");
  expect_bad("dim > uint64", one(R"({"dtype":"F32","shape":[184467440737095516150],"data_offsets":[0,4]})"),
             "array of integers");
  expect_bad("numel overflow", one(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]})"),
             "overflows");
  expect_bad("bytes overflow", one(R"({"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]})"),
             "overflows");
  expect_bad("overflow with 0", one(R"({"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})"),
             "overflows");
  expect_bad("offsets string", one(R"({"dtype":"F32","shape":[1],"data_offsets":"0,4"})"), "'data_offsets' must be");
  expect_bad("offsets one", one(R"({"dtype":"F32","shape":[1],"data_offsets":[4]})"), "'data_offsets' must be");
  expect_bad("offsets three", one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})"), "'data_offsets' must be");
  expect_bad("offsets negative", one(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})"), "'data_offsets' must be");
  expect_bad("offsets float", one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})"), "'data_offsets' must be");
  expect_bad("begin > end", one(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})"), "begin is after end");
  expect_bad("end past data", one(R"({"dtype":"F32","shape":[1],"data_offsets":[16,20]})"),
             "past the end of the data");
  expect_bad("end huge", one(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]})"),
             "past the end of the data");
  expect_bad("no data at all", one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})", ""),
             "past the end of the data");
  expect_bad("size short", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"), "size mismatch");
  expect_bad("size long", one(R"({"dtype":"F16","shape":[2],"data_offsets":[0,8]})"), "size mismatch");
  expect_bad("scalar size", one(R"({"dtype":"F32","shape":[],"data_offsets":[0,0]})"), "size mismatch");
}

TEST_F(SafeTensorsTest, OverlapsAndMetadata) {
  const std::string data(32, '\0');
  auto two = [&](const std::string& a, const std::string& b) {
    return st_file(R"({"a":{"dtype":"U8","shape":[)" + a + R"(},"b":{"dtype":"U8","shape":[)" + b + "}}", data);
  };
  expect_bad("partial", two(R"(8],"data_offsets":[0,8])", R"(8],"data_offsets":[4,12])"), "overlap");
  expect_bad("same", two(R"(8],"data_offsets":[0,8])", R"(8],"data_offsets":[0,8])"), "overlap");
  expect_bad("inside", two(R"(16],"data_offsets":[0,16])", R"(4],"data_offsets":[4,8])"), "overlap");
  expect_bad("inside, sorted after an empty one",
             st_file(R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                     R"("e":{"dtype":"U8","shape":[0],"data_offsets":[5,5]},)"
                     R"("c":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                     data),
             "overlap");

  expect_bad("meta string", st_file(R"({"__metadata__":"x"})", ""), "__metadata__");
  expect_bad("meta array", st_file(R"({"__metadata__":["a","b"]})", ""), "__metadata__");
  expect_bad("meta number value", st_file(R"({"__metadata__":{"epoch":3}})", ""), "__metadata__");
  expect_bad("meta null value", st_file(R"({"__metadata__":{"a":null}})", ""), "__metadata__");
  expect_bad("meta object value", st_file(R"({"__metadata__":{"config":{"depth":12}}})", ""), "__metadata__");
}

// Every truncation and many random byte corruptions of a valid file: the reader either accepts the file (and then
// every tensor reads within bounds) or throws mae::Error. Under ASan this shows there are no out-of-bounds reads.
TEST_F(SafeTensorsTest, FuzzTruncationsAndCorruptions) {
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> ids = {1, 2};
  const std::vector<uint16_t> h = {0x3C00, 0x0001, 0x7C00};
  const std::string good = file("good.safetensors");
  write_safetensors(good,
                    {{"w", DType::F32, {2, 3}, w.data()}, {"ids", DType::I64, {2}, ids.data()},
                     {"h", DType::F16, {3}, h.data()}, {"b", DType::BF16, {3}, h.data()}},
                    {{"format", "pt"}});
  const std::string bytes = read_all(good);
  int accepted = 0, rejected = 0, n = 0;
  auto attempt = [&](const std::string& b) {
    // A fresh name each time: rewriting one file in place makes ext4 flush it to disk on every close.
    const std::string path = file("fuzz" + std::to_string(n++) + ".safetensors");
    write_raw(path, b);
    struct Unlink {
      const std::string& p;
      ~Unlink() { std::remove(p.c_str()); }
    } unlink_later{path};
    try {
      SafeTensorsReader r(path);
      for (const std::string& name : r.names()) {
        const TensorEntry& e = r.entry(name);
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < e.end - e.begin; ++i) sink = sink ^ r.raw(name)[i];
        if (e.dtype == DType::F32 || e.dtype == DType::F16 || e.dtype == DType::BF16 || e.dtype == DType::F64)
          r.read_f32(name);
        else
          r.read_i64(name);
      }
      ++accepted;
    } catch (const Error& e) {
      ASSERT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      ++rejected;
    }
  };
  for (size_t len = 0; len < bytes.size(); ++len) attempt(bytes.substr(0, len));
  std::mt19937 rng(1234);
  const std::string chars = "{}[]\":,0123456789-.e ";
  for (int it = 0; it < 2000; ++it) {
    std::string b = bytes;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      const size_t at = rng() % std::min<size_t>(b.size(), 8 + 160);  // mostly the length and header
      b[at] = rng() % 2 ? static_cast<char>(rng()) : chars[rng() % chars.size()];
    }
    attempt(b);
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(accepted, 0);  // some corruptions land in the data or padding
}

// ---------------------------------------------------------------------------------------------------------------
// Writer errors and atomic replacement

TEST_F(SafeTensorsTest, WriterRejectsBadInput) {
  const float x = 1;
  const std::string path = file("w.safetensors");
  std::string msg = error_of([&] {
    write_safetensors(path, {{"a", DType::F32, {}, &x}, {"a", DType::F32, {}, &x}}, {});
  });
  EXPECT_NE(msg.find(path + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a' given twice"), std::string::npos) << msg;
  msg = error_of([&] { write_safetensors(path, {{"__metadata__", DType::F32, {}, &x}}, {}); });
  EXPECT_NE(msg.find("reserved"), std::string::npos) << msg;
  msg = error_of([&] { write_safetensors(path, {{"n", DType::F32, {-1}, &x}}, {}); });
  EXPECT_NE(msg.find("negative"), std::string::npos) << msg;
  msg = error_of([&] { write_safetensors(path, {{"n", DType::F32, {2}, nullptr}}, {}); });
  EXPECT_NE(msg.find("no data"), std::string::npos) << msg;
  msg = error_of([&] { write_safetensors(path, {{"bad\xff", DType::F32, {}, &x}}, {}); });
  EXPECT_NE(msg.find("cannot encode"), std::string::npos) << msg;
  EXPECT_TRUE(list_dir(dir_).empty());
}

TEST_F(SafeTensorsTest, WriteIntoMissingOrBadFolderThrowsNamingPath) {
  const float x = 1;
  const std::string p1 = file("no/such/folder/x.safetensors");
  std::string msg = error_of([&] { write_safetensors(p1, {{"x", DType::F32, {}, &x}}, {}); });
  EXPECT_NE(msg.find(p1 + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;

  write_raw(file("plain"), "not a folder");
  const std::string p2 = file("plain/x.safetensors");
  msg = error_of([&] { write_safetensors(p2, {{"x", DType::F32, {}, &x}}, {}); });
  EXPECT_NE(msg.find(p2 + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;

  // Target is an existing folder: the rename fails, the temp file goes away.
  fs::create_directory(file("sub"));
  msg = error_of([&] { write_safetensors(file("sub"), {{"x", DType::F32, {}, &x}}, {}); });
  EXPECT_NE(msg.find(file("sub") + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("rename"), std::string::npos) << msg;
  EXPECT_EQ(list_dir(dir_), (std::vector<std::string>{"plain", "sub"}));
}

TEST_F(SafeTensorsTest, WriteIntoUnwritableFolder) {
  std::string ro = file("ro");
  fs::create_directory(ro);
  ::chmod(ro.c_str(), 0555);
  if (::access(ro.c_str(), W_OK) == 0) {
    // Root writes anywhere permissions allow; sysfs refuses new files even to root (EACCES, or EROFS in containers).
    ro = "/sys";
    if (!fs::is_directory(ro)) GTEST_SKIP() << "running as root and no /sys: no folder root cannot write to";
  }
  const float x = 1;
  const std::string p = ro + "/mae_test_" + std::to_string(::getpid()) + ".safetensors";
  const std::string msg = error_of([&] { write_safetensors(p, {{"x", DType::F32, {}, &x}}, {}); });
  EXPECT_NE(msg.find(p + ": "), std::string::npos) << msg;
  EXPECT_TRUE(msg.find("Permission denied") != std::string::npos ||
              msg.find("Read-only file system") != std::string::npos)
      << msg;
  EXPECT_FALSE(fs::exists(p));
}

TEST_F(SafeTensorsTest, AtomicWriteReplacesAndCleansUp) {
  const std::string p = file("a.txt");
  write_file_atomic(p, std::string("first"));
  EXPECT_EQ(read_all(p), "first");
  write_file_atomic(p, [](FILE* f) { std::fputs("second, longer", f); });
  EXPECT_EQ(read_all(p), "second, longer");
  write_file_atomic(p, std::string(""));
  EXPECT_EQ(read_all(p), "");
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"a.txt"});
}

TEST_F(SafeTensorsTest, FailingBodyLeavesOldFileAndNoTemp) {
  const std::string p = file("keep.safetensors");
  const std::vector<float> w = {1, 2};
  write_safetensors(p, {{"w", DType::F32, {2}, w.data()}}, {});
  const std::string before = read_all(p);

  struct Boom : std::runtime_error {
    Boom() : std::runtime_error("boom") {}
  };
  EXPECT_THROW(write_file_atomic(p,
                                 [](FILE* f) {
                                   std::fputs("partial garbage", f);
                                   throw Boom();
                                 }),
               Boom);
  EXPECT_EQ(read_all(p), before);
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"keep.safetensors"});

  // A body whose fwrite fails without throwing (ferror set): caught after the body.
  const std::string msg = error_of([&] {
    write_file_atomic(p, [](FILE* f) {
      std::fputs("x", f);
      std::fgetc(f);  // reading a write-only stream sets the error flag
    });
  });
  EXPECT_NE(msg.find(p + ": write failed"), std::string::npos) << msg;
  EXPECT_EQ(read_all(p), before);
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"keep.safetensors"});
  EXPECT_EQ(SafeTensorsReader(p).read_f32("w"), w);
}

// A real I/O failure: the file-size limit makes the kernel refuse the write (EFBIG) part-way through.
TEST_F(SafeTensorsTest, FailedWriteLeavesOldFileAndNoTemp) {
  const std::string p = file("keep.safetensors");
  const std::vector<float> small = {1, 2};
  write_safetensors(p, {{"w", DType::F32, {2}, small.data()}}, {});
  const std::string before = read_all(p);

  const std::vector<float> big(64 * 1024, 3.f);  // 256 KiB > the 64 KiB limit below
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit lim = old;
  lim.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  const std::string msg = error_of([&] { write_safetensors(p, {{"w", DType::F32, {64 * 1024}, big.data()}}, {}); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(msg.find(p + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::strerror(EFBIG)), std::string::npos) << msg;
  EXPECT_EQ(read_all(p), before);
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"keep.safetensors"});
}

// write_all reports the errno text of a failed write (here ENOSPC from /dev/full).
TEST(AtomicFile, WriteAllReportsErrno) {
  FILE* f = std::fopen("/dev/full", "wb");
  if (!f) GTEST_SKIP() << "no /dev/full";
  std::setvbuf(f, nullptr, _IONBF, 0);
  const char buf[16] = {};
  try {
    write_all(f, buf, sizeof buf);
    ADD_FAILURE() << "write to /dev/full succeeded";
  } catch (const WriteError& e) {
    EXPECT_EQ(e.err, ENOSPC);
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  std::fclose(f);
}

}  // namespace
}  // namespace mae::io
