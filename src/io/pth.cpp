#include "io/pth.h"

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "io/pickle.h"

namespace mae::io {

namespace {

using pickle::Kind;
using pickle::Unpickler;
using pickle::Value;

// data.pkl of a checkpoint is small (about 150 bytes per tensor); this only stops a hostile archive from making the
// unpickler chew through gigabytes.
constexpr uint64_t kMaxPickle = uint64_t(256) << 20;

std::string printable(const std::string& s) {
  std::string r = s.substr(0, 200);
  for (char& c : r)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s.size() > 200 ? r + "..." : r;
}

std::string dims_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
  return r + (s.size() == 1 ? ",)" : ")");
}

std::string scalar_text(const Value& v) {
  char buf[64];
  switch (v.kind) {
    case Kind::None: return "None";
    case Kind::Bool: return v.i ? "True" : "False";
    case Kind::Int: return std::to_string(v.i);
    case Kind::Float: std::snprintf(buf, sizeof buf, "%.17g", v.f); return buf;
    case Kind::Str: return v.s;
    default: return {};
  }
}

// Element k of a storage of `dtype`, as float or as int64.
template <class T> T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
float to_float(DType t, const uint8_t* p) {
  switch (t) {
    case DType::F32: return load<float>(p);
    case DType::F16: return f16_to_f32(load<uint16_t>(p));
    case DType::BF16: return bf16_to_f32(load<uint16_t>(p));
    case DType::F64: return static_cast<float>(load<double>(p));
    default: return 0;
  }
}
int64_t to_int(DType t, const uint8_t* p) {
  switch (t) {
    case DType::I64: return load<int64_t>(p);
    case DType::I32: return load<int32_t>(p);
    case DType::I16: return load<int16_t>(p);
    case DType::I8: return load<int8_t>(p);
    case DType::U8: return load<uint8_t>(p);
    case DType::BOOL: return load<uint8_t>(p) != 0;
    default: return 0;
  }
}

struct Reader {
  const ZipReader& zip;
  const Unpickler& up;
  std::string prefix;  // "<archive>/"
  struct Loaded {
    Bytes bytes;
    DType dtype;
  };
  std::map<std::string, Loaded> storages;
  // Views may repeat a storage's elements (stride 0, overlaps); the total materialised is bounded by the archive's
  // size so that a small hostile file cannot ask for terabytes.
  uint64_t budget;

  template <class... A> [[noreturn]] void bad(const std::string& tensor, const A&... what) {
    fail(zip.path(), ": tensor '", printable(tensor), "': ", what...);
  }

  const Loaded& storage(const std::string& tensor, const pickle::StorageRef& s) {
    auto it = storages.find(s.key);
    if (it != storages.end()) {
      if (it->second.dtype != s.dtype) bad(tensor, "storage '", printable(s.key), "' is used with two dtypes");
      return it->second;
    }
    const ZipEntry* e = zip.find(prefix + "data/" + s.key);
    if (!e) bad(tensor, "its storage '", printable(s.key), "' (", prefix, "data/", printable(s.key), ") is missing from the archive");
    const uint64_t esize = dtype_size(s.dtype);
    if (static_cast<uint64_t>(s.numel) > e->size / esize)
      bad(tensor, "storage '", printable(s.key), "' holds ", e->size, " bytes, shorter than its ", s.numel, " ",
          s.type, " elements need (", static_cast<uint64_t>(s.numel) * esize, " bytes)");
    return storages.emplace(s.key, Loaded{zip.read(*e), s.dtype}).first->second;
  }

  Tensor tensor(const std::string& name, const Value& v) {
    const pickle::TensorRef& t = up.tensor(v);
    const pickle::StorageRef& s = up.storage(up.at(t.storage));
    Tensor out;
    out.dtype = s.dtype;
    out.shape = t.size;
    uint64_t numel = 1;
    for (int64_t d : t.size)
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) || numel > (uint64_t(1) << 48))
        bad(name, "shape ", dims_str(t.size), " is too large");
    // The view's last element: offset + sum((size - 1) * stride); it must lie within the storage.
    if (numel > 0) {
      uint64_t last = static_cast<uint64_t>(t.offset);
      bool overflow = false;
      for (size_t k = 0; k < t.size.size(); ++k) {
        uint64_t step;
        overflow |= __builtin_mul_overflow(static_cast<uint64_t>(t.size[k] - 1), static_cast<uint64_t>(t.stride[k]), &step);
        overflow |= __builtin_add_overflow(last, step, &last);
      }
      if (overflow || last >= static_cast<uint64_t>(s.numel))
        bad(name, "shape ", dims_str(t.size), ", stride ", dims_str(t.stride), " at offset ", t.offset,
            " reaches past the end of its storage '", printable(s.key), "' of ", s.numel, " elements");
    }
    if (numel > budget)
      bad(name, "its ", numel, " elements exceed what an archive of this size can hold (repeating views?)");
    budget -= numel;
    if (numel == 0) return out;

    const Loaded& st = storage(name, s);
    const size_t es = dtype_size(s.dtype);
    const uint8_t* base = st.bytes.data + static_cast<size_t>(t.offset) * es;
    const bool is_f = out.is_float();
    if (is_f) out.f.resize(numel);
    else out.i.resize(numel);

    // Row-major walk over the view; contiguous runs of the last dimension are converted in one loop.
    const size_t rank = t.size.size();
    const int64_t inner = rank ? t.size[rank - 1] : 1, inner_stride = rank ? t.stride[rank - 1] : 1;
    std::vector<int64_t> idx(rank, 0);
    uint64_t src = 0;  // element offset of the current row's start
    for (uint64_t done = 0; done < numel; done += static_cast<uint64_t>(inner)) {
      const uint8_t* row = base + src * es;
      if (is_f) {
        float* d = out.f.data() + done;
        if (s.dtype == DType::F32 && inner_stride == 1) std::memcpy(d, row, static_cast<size_t>(inner) * 4);
        else
          for (int64_t k = 0; k < inner; ++k) d[k] = to_float(s.dtype, row + static_cast<size_t>(k * inner_stride) * es);
      } else {
        int64_t* d = out.i.data() + done;
        for (int64_t k = 0; k < inner; ++k) d[k] = to_int(s.dtype, row + static_cast<size_t>(k * inner_stride) * es);
      }
      // Advance the odometer over the outer dimensions.
      for (size_t k = rank >= 1 ? rank - 1 : 0; k-- > 0;) {
        if (++idx[k] < t.size[k]) {
          src += static_cast<uint64_t>(t.stride[k]);
          break;
        }
        src -= static_cast<uint64_t>(t.stride[k]) * static_cast<uint64_t>(t.size[k] - 1);
        idx[k] = 0;
      }
    }
    return out;
  }
};

const Value* find_dict(const Unpickler& up, const Value& root, const char* key) {
  const Value* v = up.get(root, key);
  return v && v->kind == Kind::Dict ? v : nullptr;
}

}  // namespace

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool looks_like_legacy_torch(const uint8_t* p, size_t n) {
  // pickle.dump(0x1950a86a20f9469cfc6c, ...) under PROTO: LONG1 of 10 bytes
  static const uint8_t magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (n < 2 || p[0] != 0x80) return false;
  const size_t lim = n < 32 ? n : 32;
  for (size_t k = 0; k + sizeof magic <= lim; ++k)
    if (std::memcmp(p + k, magic, sizeof magic) == 0) return true;
  return false;
}

PthContents read_pth(const ZipReader& zip) {
  const std::string& path = zip.path();
  // The records live under one folder named after the file at save time ("archive" since torch 2.x).
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && slash > 0 && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pkl) fail(path, ": two pickles ('", printable(pkl->name), "' and '", printable(e.name), "'): not a single torch.save archive");
      pkl = &e;
    }
  }
  if (!pkl) fail(path, ": a ZIP archive, but not a PyTorch checkpoint (no <archive>/data.pkl in it)");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // keeps the '/'
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    const Bytes b = zip.read(*bo);
    if (std::string(reinterpret_cast<const char*>(b.data), b.size) != "little")
      fail(path, ": tensors are stored big-endian (", prefix, "byteorder); only little-endian is supported");
  }
  if (pkl->size > kMaxPickle) fail(path, ": ", pkl->name, " is ", pkl->size, " bytes, larger than any checkpoint's (", kMaxPickle, ")");
  const Bytes pb = zip.read(*pkl);
  const Unpickler up(pb.data, pb.size, path);

  const Value& root = up.root();
  if (root.kind != Kind::Dict)
    fail(path, ": the checkpoint holds a ", Unpickler::kind_name(root), ", expected a dict (a state dict or {'model': state_dict})");
  PthContents out;
  for (size_t k = 0; k < root.items.size(); k += 2) {
    const Value& key = up.at(root.items[k]);
    if (key.kind == Kind::Str) out.top_keys.push_back(key.s);
  }
  const Value* sd = find_dict(up, root, "model");
  out.layout = "{'model': ...}";
  if (!sd && (sd = find_dict(up, root, "state_dict"))) out.layout = "{'state_dict': ...}";
  if (!sd) sd = &root, out.layout = "bare state dict";

  // The scalar fields of a dict (or of a Namespace's state dict), as text.
  auto scalars = [&](const Value* d, std::map<std::string, std::string>& to) {
    if (d && d->kind == Kind::Object && !d->items.empty()) d = &up.at(d->items[0]);
    if (!d || d->kind != Kind::Dict) return;
    for (size_t k = 0; k < d->items.size(); k += 2) {
      const Value &key = up.at(d->items[k]), &v = up.at(d->items[k + 1]);
      if (key.kind != Kind::Str) continue;
      const std::string text = scalar_text(v);
      if (v.kind == Kind::Str || !text.empty()) to[key.s] = text;
    }
  };
  scalars(up.get(root, "args"), out.args);
  if (sd != &root) scalars(up.get(root, "config"), out.config);

  Reader r{zip, up, prefix, {}, uint64_t(1) << 22};
  for (const ZipEntry& e : zip.entries()) r.budget += 4 * e.size;  // sizes are bounded by the file (or deflate's ratio)
  for (size_t k = 0; k < sd->items.size(); k += 2) {
    const Value &key = up.at(sd->items[k]), &v = up.at(sd->items[k + 1]);
    if (v.kind != Kind::Tensor) continue;  // e.g. _extra_state; a state dict is otherwise all tensors
    if (key.kind != Kind::Str) fail(path, ": a tensor under a ", Unpickler::kind_name(key), " key, expected a string name");
    out.tensors[key.s] = r.tensor(key.s, v);
  }
  if (out.tensors.empty()) {
    std::string keys;
    for (const auto& k : out.top_keys) keys += (keys.empty() ? "" : ", ") + printable(k);
    fail(path, ": no tensors found in the ", out.layout, " (top-level keys: ", keys.empty() ? "none" : keys, ")");
  }
  return out;
}

PthContents read_pth(const std::string& path) {
  Bytes file = read_file_bytes(path);
  if (looks_like_legacy_torch(file.data, file.size))
    fail(path, ": old torch.save format (before PyTorch 1.6), which is not supported: re-save it with torch>=1.6, "
               "e.g. torch.save(torch.load(f), f)");
  if (!looks_like_zip(file.data, file.size)) fail(path, ": not a PyTorch checkpoint (not a ZIP archive)");
  const ZipReader zip(std::move(file), path);
  return read_pth(zip);
}

TensorMap load_pth(const std::string& path) { return read_pth(path).tensors; }

}  // namespace mae::io
