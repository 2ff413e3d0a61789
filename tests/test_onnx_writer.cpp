// The hand protobuf encoder of ONNX models (io/onnx_writer.h) against the bytes python-onnx serialises for the same
// tiny model (onnx 1.12, SerializeToString, made with onnx.helper: make_node, make_tensor(raw=True),
// make_tensor_value_info, set_model_props; checked by onnx.checker): every field, nested lengths, negative int64
// varints, fixed32 floats, symbolic dims. The whole-model check (onnx.checker full_check + ONNX Runtime on the ViT
// graphs) is tests/onnx_export.sh, which needs python3-onnx and node.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/onnx_writer.h"

namespace mae::io::onnx {
namespace {

// python3 -c '... print(m.SerializeToString().hex())' for the model built in tiny() below.
constexpr const char* kPythonOnnxBytes =
    "080812036d61651a03302e313201643ad6010a490a01780a01770a017712016822124c617965724e6f726d616c697a6174696f6e2a140a"
    "046178697318ffffffffffffffffff01a001022a110a07657073696c6f6e15bd378635a001010a200a016812017922095472616e73706f"
    "73652a0d0a047065726d40014000a001071201672a11080210014201774a080000003f000000c02a19080210074201734a10ffffffffff"
    "ffffff02000000000000005a1c0a017812130a110801120d0a07120562617463680a0208021a02696e62180a017912130a110801120d0a"
    "0208020a071205626174636842040a00101172060a016b120176";

Model tiny() {
  Model m;
  m.producer_version = "0.1";
  m.doc = "d";
  m.graph_name = "g";
  m.nodes = {{"LayerNormalization", {"x", "w", "w"}, {"h"},
              {Attribute::of_int("axis", -1), Attribute::of_float("epsilon", 1e-6f)}},
             {"Transpose", {"h"}, {"y"}, {Attribute::of_ints("perm", {1, 0})}}};
  m.initializers = {{"w", DataType::Float, {2}, {0.5f, -2.0f}, {}}, {"s", DataType::Int64, {2}, {}, {-1, 2}}};
  m.inputs = {{"x", DataType::Float, {{0, "batch"}, {2, ""}}, "in"}};
  m.outputs = {{"y", DataType::Float, {{2, ""}, {0, "batch"}}, ""}};
  m.metadata = {{"k", "v"}};
  return m;
}

std::string hex(const std::string& b) {
  std::string h;
  char buf[3];
  for (unsigned char c : b) std::snprintf(buf, sizeof buf, "%02x", c), h += buf;
  return h;
}

TEST(OnnxWriter, SameBytesAsPythonOnnx) { EXPECT_EQ(hex(encode(tiny())), kPythonOnnxBytes); }

TEST(OnnxWriter, FileEqualsEncodingAndBadInitializerLeavesNothing) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / ("mae_onnx_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Model m = tiny();
  m.initializers.push_back({"big", DataType::Float, {64, 64}, std::vector<float>(64 * 64, 0.25f), {}});  // borrowed
  const std::string path = (dir / "m.onnx").string();
  write_onnx(path, m);
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  EXPECT_EQ(s.str(), encode(m));

  m.initializers.push_back({"wrong", DataType::Float, {3}, {1.0f}, {}});  // 1 value for 3 elements
  EXPECT_THROW(write_onnx((dir / "bad.onnx").string(), m), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.onnx"));
}

}  // namespace
}  // namespace mae::io::onnx
