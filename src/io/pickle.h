// A restricted unpickler for what torch.save writes into a checkpoint's data.pkl: it builds plain values (dicts,
// OrderedDicts, lists, tuples, ints, floats, strings, bytes, bools, None) and tensor descriptions, and nothing else.
// Nothing is ever imported or called: GLOBAL only names one of a fixed set of known constructors, whose effect is
// reimplemented here as data:
//   collections.OrderedDict                      -> a dict (the state_dict's _metadata, set by BUILD, is dropped)
//   torch._utils._rebuild_tensor_v2              -> a tensor view (storage, offset, size, stride)
//   torch._utils._rebuild_parameter[_with_state] -> the tensor inside an nn.Parameter
//   torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage, in persistent ids
//                                                -> a storage reference ('storage', type, key, location, numel)
//   argparse.Namespace (training checkpoints' 'args') -> an opaque object keeping its BUILD state as a dict
// Any other global ("os.system", "builtins.eval", ...) is refused with "<file>: refusing pickle global 'os.system'",
// and so is any opcode outside the binary protocols 2-5 subset torch emits. Memory is bounded (values, stack, memo),
// and the parser is a loop, never recursive; values refer to each other by index into one arena, so even a
// self-referencing structure frees without recursion.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"  // DType

namespace mae::io::pickle {

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor, Object };

using Id = uint32_t;

struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;          // Int, Bool; Storage/Tensor: index into storages()/tensors()
  double f = 0;           // Float
  std::string s;          // Str/Bytes: the bytes (UTF-8 for Str); Global: "module.name"; Object: its class
  std::vector<Id> items;  // Tuple/List: elements; Dict: key0, value0, key1, value1, ... (insertion order; a key set
                          // twice appears twice, the later wins); Object: {state} once BUILD gave it one
};

struct StorageRef {
  DType dtype;
  std::string type;      // "FloatStorage", ...
  std::string key;       // the archive entry <archive>/data/<key>
  std::string location;  // "cpu", "cuda:0", ...
  int64_t numel = 0;     // elements
};

struct TensorRef {
  Id storage;  // a Kind::Storage value
  int64_t offset = 0;
  std::vector<int64_t> size, stride;  // validated: same rank, non-negative
};

class Unpickler {
 public:
  // Parses the whole pickle (it must end in STOP); `name` prefixes every error message.
  Unpickler(const uint8_t* data, size_t size, std::string name);

  const Value& root() const { return at(root_); }
  const Value& at(Id id) const { return values_[id]; }
  const StorageRef& storage(const Value& v) const { return storages_[static_cast<size_t>(v.i)]; }  // Kind::Storage
  const TensorRef& tensor(const Value& v) const { return tensors_[static_cast<size_t>(v.i)]; }     // Kind::Tensor

  // The value of string key `key` in a Dict (the last one set), or nullptr.
  const Value* get(const Value& dict, const std::string& key) const;
  // "dict", "tensor", "argparse.Namespace", ... for messages.
  static std::string kind_name(const Value& v);

 private:
  std::string name_;
  std::vector<Value> values_;
  std::vector<StorageRef> storages_;
  std::vector<TensorRef> tensors_;
  Id root_ = 0;

  friend struct Machine;
};

}  // namespace mae::io::pickle
