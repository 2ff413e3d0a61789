// ONNX models written without libprotobuf: a small hand encoder of the protobuf messages an inference graph needs
// (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto and the type/shape messages),
// with the field numbers of onnx/onnx.proto (ONNX 1.12, IR version 8). Debian has no package with onnx.proto's
// generated C++ and libprotobuf would be a build dependency for ~10 messages; tests/onnx_export.sh checks what
// this writes with onnx.checker (full check, shape inference included) and runs it in ONNX Runtime.
//
// Repeated integers are written unpacked (proto2's default for onnx.proto); tensor data goes in raw_data
// (little-endian). The graph is described here as plain data; model/onnx_vit.h builds the ViT graphs.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mae::io::onnx {

enum class DataType : int32_t { Float = 1, Int64 = 7 };  // TensorProto.DataType

struct Attribute {
  enum class Type : int32_t { Float = 1, Int = 2, String = 3, Ints = 7 };  // AttributeProto.AttributeType
  std::string name;
  Type type = Type::Int;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<int64_t> ints;

  static Attribute of_int(std::string n, int64_t v) { return {std::move(n), Type::Int, 0, v, {}, {}}; }
  static Attribute of_float(std::string n, float v) { return {std::move(n), Type::Float, v, 0, {}, {}}; }
  static Attribute of_ints(std::string n, std::vector<int64_t> v) { return {std::move(n), Type::Ints, 0, 0, {}, std::move(v)}; }
};

struct Node {
  std::string op_type;  // of the default domain ("ai.onnx")
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
};

struct Initializer {  // a constant tensor of the graph
  std::string name;
  DataType type = DataType::Float;
  std::vector<int64_t> dims;
  std::vector<float> f;    // Float
  std::vector<int64_t> i;  // Int64
};

struct Dim {  // a fixed size, or a symbolic one (the batch)
  int64_t value = 0;
  std::string param;
};
struct ValueInfo {  // a graph input or output
  std::string name;
  DataType type = DataType::Float;
  std::vector<Dim> dims;
  std::string doc;
};

struct Model {
  int64_t ir_version = 8;  // ONNX 1.12+
  int64_t opset = 17;      // LayerNormalization is opset 17
  std::string producer_name = "mae", producer_version, doc, graph_name = "mae";
  std::vector<Node> nodes;  // in topological order
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs, outputs;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props
};

// The serialised ModelProto (for tests; write_onnx streams the same bytes without gathering the weights).
std::string encode(const Model& m);
// Writes atomically (io/atomic_file.h): on any failure no file is left at `path`; mae::Error names it.
void write_onnx(const std::string& path, const Model& m);

}  // namespace mae::io::onnx
