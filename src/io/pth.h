// PyTorch checkpoints (.pth / .bin written by torch.save >= 1.6, the ZIP format) read without Python:
// <archive>/data.pkl through the restricted unpickler (io/pickle.h), tensors from <archive>/data/<key>.
//
// Accepted layouts: {'model': state_dict} (the released MAE checkpoints), training checkpoints
// {'model': ..., 'optimizer': ..., 'epoch': ..., 'scaler': ..., 'args': Namespace} (only 'model' is read; the
// scalar fields of 'args' are kept as text, and so are those of a 'config' dict: what `mae convert --to pth`
// writes), {'state_dict': state_dict}, and a bare state dict. Tensors may be any
// strided view that lies within its storage; float16/bfloat16/float64 become float, integer and bool tensors
// int64. The legacy pre-1.6 format is refused with advice to re-save.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/host_alloc.h"
#include "io/safetensors.h"  // DType
#include "io/zip_reader.h"

namespace mae::io {

// Weights read from files: big (ViT-B/16: 447 MB), so in huge-page memory (core/host_alloc.h).
using Floats = std::vector<float, HostAllocator<float>>;

struct Tensor {
  DType dtype = DType::F32;    // as stored in the file
  std::vector<int64_t> shape;  // {} = scalar
  Floats f;                    // floating dtypes, converted to float (row-major)
  std::vector<int64_t> i;      // integer and bool dtypes, widened (row-major)

  bool is_float() const { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F64; }
  int64_t numel() const;
};

using TensorMap = std::map<std::string, Tensor>;

struct PthContents {
  TensorMap tensors;                        // the state dict
  std::string layout;                       // "{'model': ...}", "{'state_dict': ...}" or "bare state dict"
  std::vector<std::string> top_keys;        // of the top-level dict, in file order
  std::map<std::string, std::string> args;  // 'args' fields (a Namespace, or a dict as io/pth_writer.h writes)
                                            // that are str/int/float/bool/None, as text
  std::map<std::string, std::string> config;  // 'config' (a dict written by io/pth_writer.h), values as text
};

PthContents read_pth(const std::string& path);
PthContents read_pth(const ZipReader& zip);  // an archive already open (in memory, for tests and fuzzing)
TensorMap load_pth(const std::string& path);

// The first bytes of a pre-1.6 torch.save file (a pickled magic number).
bool looks_like_legacy_torch(const uint8_t* p, size_t n);

}  // namespace mae::io
