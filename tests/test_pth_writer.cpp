// The .pth writer (io/pth_writer.h, io/zip_writer.h) against our reader (io/pth.h): every tensor comes back bit for
// bit (NaN payloads, -0, subnormals, int64 extremes), in order, with the archive laid out as torch.save lays it out.
// That PyTorch itself opens the files (weights_only=True) is tests/pth_export_torch.sh.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "io/pickle.h"
#include "io/pth.h"
#include "io/pth_writer.h"
#include "io/zip_reader.h"

namespace mae::io {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) / ("mae_pthw_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// Floats whose bits a conversion would disturb: NaN with a payload, -0, the smallest subnormal, infinities.
std::vector<float> awkward_floats(size_t n) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = std::sin(float(k)) * std::pow(10.0f, float(int(k % 9) - 4));
  const uint32_t bits[] = {0x7fc01234u, 0x80000000u, 0x00000001u, 0x7f800000u, 0xff800000u, 0xffffffffu};
  for (size_t k = 0; k < std::size(bits) && k < n; ++k) v[k] = std::bit_cast<float>(bits[k]);
  return v;
}

TEST(PthWriter, RoundTripBitForBit) {
  const std::vector<float> a = awkward_floats(2 * 3 * 4 * 5), b = awkward_floats(7), s = {3.5f};
  const std::vector<int64_t> ids = {0, -1, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                    1 << 20, 255, 256, 65536};
  PthDocument doc;
  doc.model = {{"blocks.0.attn.qkv.weight", DType::F32, {2, 3, 4, 5}, a.data()},
               {"cls_token", DType::F32, {7}, b.data()},
               {"scalar", DType::F32, {}, s.data()},
               {"empty", DType::F32, {0, 4}, nullptr},
               {"ids", DType::I64, {2, 4}, ids.data()}};
  doc.epoch = 41;
  doc.args = {{"model", PyValue::str("mae_vit_fmnist_small")}, {"norm_pix_loss", PyValue::boolean(true)},
              {"batch_size", PyValue::integer(256)}, {"seed", PyValue::integer(-5'000'000'000)},
              {"blr", PyValue::str("0.001")}, {"resume", PyValue::none()}};
  doc.config = {{"embed_dim", PyValue::integer(128)}, {"mlp_ratio", PyValue::integer(4)}};
  const std::string path = tmp_path("rt.pth");
  write_pth(path, doc);

  const PthContents pc = read_pth(path);
  EXPECT_EQ(pc.layout, "{'model': ...}");
  EXPECT_EQ(pc.top_keys, (std::vector<std::string>{"model", "epoch", "args", "config"}));
  ASSERT_EQ(pc.tensors.size(), doc.model.size());
  for (const PthTensor& t : doc.model) {
    SCOPED_TRACE(t.name);
    const Tensor& r = pc.tensors.at(t.name);
    EXPECT_EQ(r.dtype, t.dtype);
    EXPECT_EQ(r.shape, t.shape);
    const size_t n = size_t(r.numel());
    if (t.dtype == DType::F32) {
      ASSERT_EQ(r.f.size(), n);
      EXPECT_EQ(n == 0 ? 0 : std::memcmp(r.f.data(), t.data, n * 4), 0);
    } else {
      ASSERT_EQ(r.i.size(), n);
      EXPECT_EQ(std::memcmp(r.i.data(), t.data, n * 8), 0);
    }
  }
  EXPECT_EQ(pc.args.at("model"), "mae_vit_fmnist_small");
  EXPECT_EQ(pc.args.at("norm_pix_loss"), "True");
  EXPECT_EQ(pc.args.at("batch_size"), "256");
  EXPECT_EQ(pc.args.at("seed"), "-5000000000");
  EXPECT_EQ(pc.args.at("blr"), "0.001");
  EXPECT_EQ(pc.args.at("resume"), "None");
  EXPECT_EQ(pc.config.at("embed_dim"), "128");
  EXPECT_EQ(pc.config.at("mlp_ratio"), "4");

  // 'epoch' and the state dict's order, straight from the pickle.
  const ZipReader zip(path);
  const Bytes pkl = zip.read(*zip.find("archive/data.pkl"));
  const pickle::Unpickler up(pkl.data, pkl.size, path);
  const pickle::Value* epoch = up.get(up.root(), "epoch");
  ASSERT_TRUE(epoch && epoch->kind == pickle::Kind::Int);
  EXPECT_EQ(epoch->i, 41);
  const pickle::Value* sd = up.get(up.root(), "model");
  ASSERT_TRUE(sd && sd->kind == pickle::Kind::Dict);
  for (size_t k = 0; k < doc.model.size(); ++k) EXPECT_EQ(up.at(sd->items[2 * k]).s, doc.model[k].name);
}

TEST(PthWriter, ArchiveLayoutAsTorchSave) {
  const std::vector<float> w = awkward_floats(13);
  PthDocument doc;
  doc.model = {{"a", DType::F32, {13}, w.data()}, {"b", DType::F32, {1, 13}, w.data()}};
  const std::string path = tmp_path("layout.pth");
  write_pth(path, doc);
  const ZipReader zip(path);
  std::vector<std::string> names;
  for (const ZipEntry& e : zip.entries()) {
    names.push_back(e.name);
    EXPECT_EQ(e.method, 0) << e.name;                  // stored
    EXPECT_EQ(e.data_offset % 64, 0u) << e.name;       // torch's 64-byte alignment
  }
  EXPECT_EQ(names, (std::vector<std::string>{"archive/data.pkl", "archive/byteorder", "archive/data/0",
                                             "archive/data/1", "archive/version"}));
  const Bytes v = zip.read(*zip.find("archive/version"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.data), v.size), "3\n");
  // No 'epoch'/'args'/'config' when not given: {'model': ...} alone, like a released checkpoint.
  EXPECT_EQ(read_pth(path).top_keys, std::vector<std::string>{"model"});
}

TEST(PthWriter, FailedWriteLeavesNothing) {
  const std::vector<float> w(4, 1.0f);
  PthDocument doc;
  doc.model = {{"a", DType::F32, {4}, w.data()}};
  const std::string path = tmp_path("no_such_folder/x.pth");
  try {
    write_pth(path, doc);
    FAIL() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
  const std::vector<int32_t> i32(4);
  doc.model = {{"a", DType::I32, {4}, i32.data()}};
  EXPECT_THROW(write_pth(tmp_path("i32.pth"), doc), Error);
  EXPECT_FALSE(fs::exists(tmp_path("i32.pth")));
}

}  // namespace
}  // namespace mae::io
