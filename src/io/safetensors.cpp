#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/file_bytes.h"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian: add byte swapping");

namespace mae::io {

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeader = 100'000'000;  // the official reader's limit
// A valid header nests 3 deep ({name: {shape: [..]}}); the limit only stops "[[[[..." from eating memory and
// stack, while leaving room for wrongly-typed values to be reported by name.
constexpr int kMaxDepth = 16;

struct DTypeInfo {
  DType type;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// JSON parser messages quote the bytes they read; keep binary garbage out of the terminal.
std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s;
}

// Element count and byte size of a shape, or false if either overflows int64.
bool count(const std::vector<int64_t>& shape, size_t elem_size, int64_t* numel, int64_t* bytes) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return false;
  if (__builtin_mul_overflow(n, static_cast<int64_t>(elem_size), bytes)) return false;
  *numel = n;
  return true;
}

}  // namespace

size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  fail("dtype_size: invalid DType ", static_cast<int>(t));
}

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  fail("dtype_name: invalid DType ", static_cast<int>(t));
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    // Zero or subnormal: man * 2^-24, exact in float (a normal float for man != 0).
    bits = std::bit_cast<uint32_t>(static_cast<float>(man) * 0x1p-24f) | sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);  // inf, or nan with its payload
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow when read or written
  return n;
}

SafeTensorsReader::SafeTensorsReader(const std::string& path) : path_(path) {
  const Bytes file = read_file_bytes(path);
  if (file.size < 8) fail(path, ": file is ", file.size, " bytes, shorter than the 8-byte header length");
  storage_ = file.hold;

  uint64_t n;
  std::memcpy(&n, file.data, 8);
  if (n == 0) fail(path, ": header length is 0");
  if (n > kMaxHeader) fail(path, ": header length ", n, " is too large (limit ", kMaxHeader, " bytes)");
  if (n > file.size - 8)
    fail(path, ": header length ", n, " runs past the end of the file (", file.size, " bytes)");
  data_ = file.data + 8 + n;
  data_size_ = file.size - 8 - n;

  const char* text = reinterpret_cast<const char*>(file.data + 8);
  std::set<std::string> seen;
  auto guard = [&](int depth, json::parse_event_t ev, json& parsed) {
    if ((ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start) && depth >= kMaxDepth)
      fail(path, ": header is not a valid safetensors header: JSON nests deeper than ", kMaxDepth, " levels");
    // nlohmann keeps the last of duplicate keys silently; a file naming a tensor twice is ambiguous.
    if (ev == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
      fail(path, ": header names '", printable(parsed.get<std::string>()), "' twice");
    return true;
  };
  // nlohmann stops at a NUL byte as at the end of input; JSON text never holds a raw NUL, so refuse it here
  // (like the official reader) rather than ignore whatever follows it.
  if (const void* nul = std::memchr(text, '\0', n))
    fail(path, ": header is not valid JSON: it contains a NUL byte at offset ",
         static_cast<const char*>(nul) - text + 8);
  json header;
  try {
    header = json::parse(text, text + n, guard);
  } catch (const json::exception& e) {
    fail(path, ": header is not valid JSON: ", printable(e.what()));
  }
  if (!header.is_object()) fail(path, ": header is not a JSON object (it is ", header.type_name(), ")");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail(path, ": __metadata__ must be an object of strings, not ", v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m->is_string())
          fail(path, ": __metadata__ must be an object of strings; '", m.key(), "' is ", m->type_name());
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }

    auto bad = [&](const auto&... what) { fail(path, ": tensor '", key, "': ", what...); };
    if (!v.is_object()) bad("entry must be a JSON object, not ", v.type_name());
    auto field = [&](const char* f) -> const json& {
      auto at = v.find(f);
      if (at == v.end()) bad("missing '", f, "'");
      return *at;
    };
    TensorEntry e;
    e.name = key;

    const json& jd = field("dtype");
    if (!jd.is_string()) bad("'dtype' must be a string, not ", jd.type_name());
    const DTypeInfo* dt = find_dtype(jd.get<std::string>());
    if (!dt) bad("unknown dtype '", printable(jd.get<std::string>()), "'");
    e.dtype = dt->type;

    const json& js = field("shape");
    if (!js.is_array()) bad("'shape' must be an array of integers, not ", js.type_name());
    for (const json& d : js) {
      if (!d.is_number_integer()) bad("'shape' must be an array of integers; it holds ", d.type_name(), " ", d.dump());
      if (d.is_number_unsigned()) {
        const uint64_t u = d.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          bad("dimension ", u, " in 'shape' overflows int64");
        e.shape.push_back(static_cast<int64_t>(u));
      } else {
        const int64_t s = d.get<int64_t>();
        if (s < 0) bad("negative dimension ", s, " in 'shape' ", js.dump());
        e.shape.push_back(s);
      }
    }
    int64_t numel, bytes;
    if (!count(e.shape, dt->size, &numel, &bytes))
      bad("shape ", shape_str(e.shape), " of ", dt->name, " overflows int64 in element or byte count");

    const json& jo = field("data_offsets");
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      bad("'data_offsets' must be two non-negative integers [begin, end], not ", printable(jo.dump()));
    e.begin = jo[0].get<uint64_t>();
    e.end = jo[1].get<uint64_t>();
    if (e.begin > e.end) bad("data_offsets [", e.begin, ", ", e.end, "]: begin is after end");
    if (e.end > data_size_)
      bad("data_offsets [", e.begin, ", ", e.end, "] run past the end of the data (", data_size_, " bytes)");
    if (e.end - e.begin != static_cast<uint64_t>(bytes))
      bad("data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes, but ", dt->name, " ",
          shape_str(e.shape), " needs ", bytes, " bytes (size mismatch)");
    entries_.emplace(key, std::move(e));
  }

  std::vector<const TensorEntry*> by_offset;
  by_offset.reserve(entries_.size());
  for (const auto& [name, e] : entries_) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorEntry* a, const TensorEntry* b) {
    if (a->begin != b->begin) return a->begin < b->begin;
    if (a->end != b->end) return a->end < b->end;
    return a->name < b->name;
  });
  // Empty tensors occupy no bytes and so overlap nothing. Gaps are allowed (the official writer leaves none).
  uint64_t reach = 0;
  const TensorEntry* last = nullptr;
  for (const TensorEntry* e : by_offset) {
    if (e->begin == e->end) continue;
    if (last && e->begin < reach)
      fail(path, ": tensors '", last->name, "' [", last->begin, ", ", last->end, ") and '", e->name, "' [", e->begin,
           ", ", e->end, ") overlap");
    if (e->end > reach) reach = e->end, last = e;
  }
  order_.reserve(by_offset.size());
  for (const TensorEntry* e : by_offset) order_.push_back(e->name);
}

const TensorEntry& SafeTensorsReader::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, ": no tensor '", name, "'");
  return it->second;
}

const uint8_t* SafeTensorsReader::raw(const std::string& name) const { return data_ + entry(name).begin; }

void SafeTensorsReader::convert_f32(const TensorEntry& e, float* dst) const {
  const uint8_t* src = data_ + e.begin;
  const int64_t n = e.numel();
  // memcpy per element: the data may be unaligned (unpadded headers, odd-sized tensors before this one).
  switch (e.dtype) {
    case DType::F32:
      if (n) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, src + 8 * i, 8);
        dst[i] = static_cast<float>(v);
      }
      return;
    case DType::F16:
    case DType::BF16: {
      float (*cvt)(uint16_t) = e.dtype == DType::F16 ? f16_to_f32 : bf16_to_f32;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = cvt(v);
      }
      return;
    }
    default:
      fail(path_, ": tensor '", e.name, "' has dtype ", dtype_name(e.dtype), ", expected a floating-point dtype");
  }
}

void SafeTensorsReader::read_f32(const std::string& name, float* dst, const std::vector<int64_t>& shape) const {
  const TensorEntry& e = entry(name);
  if (e.shape != shape)
    fail(path_, ": tensor '", name, "' has shape ", shape_str(e.shape), ", expected ", shape_str(shape));
  convert_f32(e, dst);
}

std::vector<float> SafeTensorsReader::read_f32(const std::string& name, std::vector<int64_t>* shape_out) const {
  const TensorEntry& e = entry(name);
  std::vector<float> out(static_cast<size_t>(e.numel()));
  convert_f32(e, out.data());
  if (shape_out) *shape_out = e.shape;
  return out;
}

std::vector<int64_t> SafeTensorsReader::read_i64(const std::string& name, std::vector<int64_t>* shape_out) const {
  const TensorEntry& e = entry(name);
  const int64_t n = e.numel();
  const uint8_t* src = data_ + e.begin;
  auto widen = [&]<class T>(T) {
    std::vector<int64_t> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, src + sizeof(T) * i, sizeof(T));
      out[i] = static_cast<int64_t>(v);
    }
    return out;
  };
  std::vector<int64_t> out;
  switch (e.dtype) {
    case DType::I64: out = widen(int64_t{}); break;
    case DType::I32: out = widen(int32_t{}); break;
    case DType::I16: out = widen(int16_t{}); break;
    case DType::I8: out = widen(int8_t{}); break;
    case DType::U8: out = widen(uint8_t{}); break;
    case DType::BOOL:
      out = widen(uint8_t{});
      for (int64_t& v : out) v = v != 0;
      break;
    default:
      fail(path_, ": tensor '", name, "' has dtype ", dtype_name(e.dtype), ", expected an integer dtype");
  }
  if (shape_out) *shape_out = e.shape;
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // ordered_json: the header lists tensors in file order, like the official writer.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& m = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const TensorOut& t : tensors) {
    if (t.name == "__metadata__") fail(path, ": tensor name '__metadata__' is reserved for metadata");
    if (!names.insert(t.name).second) fail(path, ": tensor name '", t.name, "' given twice");
    int64_t numel, bytes;
    if (!count(t.shape, dtype_size(t.dtype), &numel, &bytes))
      fail(path, ": tensor '", t.name, "': shape ", shape_str(t.shape), " has a negative dimension or overflows");
    if (bytes > 0 && !t.data) fail(path, ": tensor '", t.name, "' has no data");
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + static_cast<uint64_t>(bytes)});
    header[t.name] = std::move(entry);
    sizes.push_back(static_cast<uint64_t>(bytes));
    offset += static_cast<uint64_t>(bytes);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    fail(path, ": cannot encode the header: ", printable(e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeader) fail(path, ": header of ", text.size(), " bytes is too large (limit ", kMaxHeader, ")");

  write_file_atomic(path, [&](FILE* f) {
    const uint64_t n = text.size();
    write_all(f, &n, 8);
    write_all(f, text.data(), text.size());
    for (size_t i = 0; i < tensors.size(); ++i) write_all(f, tensors[i].data, sizes[i]);
  });
}

}  // namespace mae::io
