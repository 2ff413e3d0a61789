#include "io/pth_writer.h"

#include <bit>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/zip_writer.h"

static_assert(std::endian::native == std::endian::little, "pickle and tensor bytes are little-endian");

namespace mae::io {

namespace {

// The pickle opcodes written here (the protocol-2 subset torch.save emits for a state dict).
enum Op : uint8_t {
  PROTO = 0x80, STOP = '.', MARK = '(', EMPTY_DICT = '}', EMPTY_TUPLE = ')', TUPLE = 't', SETITEMS = 'u',
  REDUCE = 'R', BINPERSID = 'Q', GLOBAL = 'c', NONE = 'N', NEWTRUE = 0x88, NEWFALSE = 0x89, BININT = 'J',
  BININT1 = 'K', BININT2 = 'M', LONG1 = 0x8a, BINUNICODE = 'X',
};

class Pickler {
 public:
  Pickler() { op(PROTO), op(2); }
  std::string finish() {
    op(STOP);
    return std::move(b_);
  }

  void op(uint8_t o) { b_.push_back(static_cast<char>(o)); }
  void global(const char* module, const char* name) {
    op(GLOBAL);
    b_ += module, b_ += '\n', b_ += name, b_ += '\n';
  }
  void str(const std::string& s) {
    op(BINUNICODE);
    const uint32_t n = static_cast<uint32_t>(s.size());
    raw(&n, 4);
    b_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op(BININT1), op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      const uint16_t x = static_cast<uint16_t>(v);
      op(BININT2), raw(&x, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      const int32_t x = static_cast<int32_t>(v);
      op(BININT), raw(&x, 4);
    } else {  // LONG1: 8 bytes two's complement, little-endian (Python trims it; any length decodes the same)
      op(LONG1), op(8), raw(&v, 8);
    }
  }
  void value(const PyValue& v) {
    switch (v.kind) {
      case PyValue::Kind::None: op(NONE); break;
      case PyValue::Kind::Bool: op(v.i ? NEWTRUE : NEWFALSE); break;
      case PyValue::Kind::Int: integer(v.i); break;
      case PyValue::Kind::Str: str(v.s); break;
    }
  }
  void int_tuple(const std::vector<int64_t>& xs) {
    op(MARK);
    for (int64_t x : xs) integer(x);
    op(TUPLE);
  }
  void ordered_dict() {  // collections.OrderedDict()
    global("collections", "OrderedDict");
    op(EMPTY_TUPLE), op(REDUCE);
  }
  // _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()) on storage `key`
  void tensor(const PthTensor& t, const std::string& key) {
    std::vector<int64_t> stride(t.shape.size());
    int64_t numel = 1;
    for (size_t k = t.shape.size(); k-- > 0;) stride[k] = numel, numel *= t.shape[k];
    global("torch._utils", "_rebuild_tensor_v2");
    op(MARK);
    op(MARK);  // the persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
    str("storage");
    if (t.dtype == DType::F32) global("torch", "FloatStorage");
    else global("torch", "LongStorage");
    str(key), str("cpu"), integer(numel);
    op(TUPLE), op(BINPERSID);
    integer(0);
    int_tuple(t.shape), int_tuple(stride);
    op(NEWFALSE);
    ordered_dict();
    op(TUPLE), op(REDUCE);
  }
  void dict(const PyDict& d) {
    op(EMPTY_DICT);
    if (d.empty()) return;
    op(MARK);
    for (const auto& [k, v] : d) str(k), value(v);
    op(SETITEMS);
  }

 private:
  void raw(const void* p, size_t n) { b_.append(static_cast<const char*>(p), n); }
  std::string b_;
};

int64_t numel_of(const PthTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

}  // namespace

std::string pth_pickle(const PthDocument& doc) {
  Pickler p;
  p.op(EMPTY_DICT);
  p.op(MARK);
  p.str("model");
  p.ordered_dict();
  if (!doc.model.empty()) {
    p.op(MARK);
    for (size_t k = 0; k < doc.model.size(); ++k) {
      p.str(doc.model[k].name);
      p.tensor(doc.model[k], std::to_string(k));
    }
    p.op(SETITEMS);
  }
  if (doc.epoch) p.str("epoch"), p.integer(*doc.epoch);
  if (!doc.args.empty()) p.str("args"), p.dict(doc.args);
  if (!doc.config.empty()) p.str("config"), p.dict(doc.config);
  p.op(SETITEMS);
  return p.finish();
}

void write_pth(const std::string& path, const PthDocument& doc) {
  for (const PthTensor& t : doc.model) {
    if (t.dtype != DType::F32 && t.dtype != DType::I64)
      fail(path, ": tensor '", t.name, "' is ", dtype_name(t.dtype), ": only F32 and I64 tensors are written");
    for (int64_t d : t.shape)
      if (d < 0) fail(path, ": tensor '", t.name, "' has a negative dimension");
  }
  const std::string pkl = pth_pickle(doc);
  // The folder name inside the archive: torch.load takes whatever the first entry's folder is; torch >= 2 writes
  // "archive".
  const std::string root = "archive/";
  write_file_atomic(path, [&](std::FILE* f) {
    ZipWriter z(f, path);
    z.add(root + "data.pkl", pkl);
    z.add(root + "byteorder", std::string("little"));
    for (size_t k = 0; k < doc.model.size(); ++k) {
      const PthTensor& t = doc.model[k];
      z.add(root + "data/" + std::to_string(k), {{t.data, size_t(numel_of(t)) * dtype_size(t.dtype)}});
    }
    z.add(root + "version", std::string("3\n"));
    z.finish();
  });
}

}  // namespace mae::io
