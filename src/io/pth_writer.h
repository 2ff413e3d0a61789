// PyTorch checkpoints written without Python: what `torch.save({'model': state_dict, ...}, path)` writes, in the
// format `torch.load(path, weights_only=True)` opens (PyTorch >= 1.6 ZIP archive, pickle protocol 2) and that our
// own reader (io/pth.h) reads back bit for bit.
//
//   <archive>/data.pkl    {'model': OrderedDict(name -> tensor), 'epoch': int, 'args': {...}, 'config': {...}}
//   <archive>/byteorder   "little"
//   <archive>/data/<k>    tensor k's bytes (one storage per tensor, contiguous, row-major)
//   <archive>/version     "3\n"
//
// The pickle uses only opcodes and globals that PyTorch 1.13's weights_only unpickler accepts (it predates BINFLOAT
// support): tensors via torch._utils._rebuild_tensor_v2 on torch.FloatStorage / torch.LongStorage, the state dict
// as collections.OrderedDict, other values as dicts of None, bool, int and str. A Python float therefore goes in
// as its text (callers format it); ints outside 64 bits never occur.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"  // DType

namespace mae::io {

struct PyValue {
  enum class Kind { None, Bool, Int, Str } kind = Kind::None;
  int64_t i = 0;
  std::string s;

  static PyValue none() { return {}; }
  static PyValue boolean(bool b) { return {Kind::Bool, b, {}}; }
  static PyValue integer(int64_t v) { return {Kind::Int, v, {}}; }
  static PyValue str(std::string v) { return {Kind::Str, 0, std::move(v)}; }
};
using PyDict = std::vector<std::pair<std::string, PyValue>>;  // insertion order kept

struct PthTensor {
  std::string name;
  DType dtype;                 // F32 or I64
  std::vector<int64_t> shape;  // {} = scalar
  const void* data;            // numel × dtype_size bytes, row-major, little-endian
};

struct PthDocument {
  std::vector<PthTensor> model;  // 'model': the state dict, in this order
  std::optional<int64_t> epoch;  // 'epoch' (the official save_model's: the last finished epoch)
  PyDict args;                   // 'args' as a plain dict (empty: left out); the official one is a Namespace
  PyDict config;                 // 'config': the model constructor's keyword arguments (empty: left out)
};

// data.pkl of `doc`: storages numbered 0, 1, ... in tensor order.
std::string pth_pickle(const PthDocument& doc);

// Writes the archive atomically (temp file, fsync, rename: see io/atomic_file.h); any failure leaves no file at
// `path` (nor an old one changed) and throws mae::Error naming `path`.
void write_pth(const std::string& path, const PthDocument& doc);

}  // namespace mae::io
