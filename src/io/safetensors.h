// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
// JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
// tensor bytes (row-major, little-endian); offsets are relative to the start of the data, i.e. byte 8 + N.
//
// The reader validates the whole header up front, so every later access is in bounds; any defect in a file throws
// mae::Error "<path>: <problem>". Accepted beyond what the official writer produces: gaps between tensors, trailing
// bytes, unpadded headers (tensors may then be unaligned; all reads go through memcpy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mae::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType);
const char* dtype_name(DType);  // "F32" etc., as in the safetensors spec

// IEEE binary16 / bfloat16 bits -> float (exact: every such value is a float; inf and nan kept, subnormals scaled).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);

struct TensorEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // {} = scalar
  uint64_t begin, end;         // byte range within the data section
  int64_t numel() const;
};

class SafeTensorsReader {
 public:
  // mmaps the file (reads it, if not a regular file) and validates the whole header.
  explicit SafeTensorsReader(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const TensorEntry& entry(const std::string& name) const;  // throws "<path>: no tensor 'x'"
  std::vector<std::string> names() const { return order_; }  // in data-offset order

  // Reads into dst, converting F32/F16/BF16/F64 to float; throws (naming file, tensor, both shapes) unless the
  // tensor's shape equals `shape` exactly.
  void read_f32(const std::string& name, float* dst, const std::vector<int64_t>& shape) const;
  std::vector<float> read_f32(const std::string& name, std::vector<int64_t>* shape_out = nullptr) const;  // any shape
  // I64/I32/I16/I8/U8/BOOL -> int64.
  std::vector<int64_t> read_i64(const std::string& name, std::vector<int64_t>* shape_out = nullptr) const;
  // The tensor's raw bytes (little-endian, possibly unaligned; entry(name).end - begin of them).
  const uint8_t* raw(const std::string& name) const;

 private:
  void convert_f32(const TensorEntry& e, float* dst) const;

  std::string path_;
  std::shared_ptr<const void> storage_;  // the mapping or buffer; shared so that readers copy cheaply
  const uint8_t* data_ = nullptr;        // start of the data section
  uint64_t data_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorEntry> entries_;
  std::vector<std::string> order_;
};

struct TensorOut {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes, little-endian
};

// Writes atomically (see write_file_atomic): on any error the old file at `path` is untouched and mae::Error names
// the path and the errno text. Tensors are written in the given order; header padded with spaces to a multiple of 8
// bytes, so the data section starts 8-byte aligned. Names must be unique and not "__metadata__".
void write_safetensors(const std::string& path, const std::vector<TensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mae::io
