#include "io/onnx_writer.h"

#include <bit>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

static_assert(std::endian::native == std::endian::little, "raw_data and fixed32 fields are little-endian");

namespace mae::io::onnx {

namespace {

enum Wire : uint32_t { Varint = 0, Len = 2, Fixed32 = 5 };

// One protobuf message being built: its own bytes, with large tensor payloads borrowed by pointer so that the
// weights are streamed out rather than copied into one buffer. A message's size is known once built, which is
// what the length prefix of the message that holds it needs.
class Msg {
 public:
  size_t size() const { return size_; }

  void varint(uint32_t field, uint64_t v) {
    key(field, Varint);
    raw_varint(v);
  }
  void fixed32(uint32_t field, float v) {
    key(field, Fixed32);
    own(&v, 4);
  }
  void bytes(uint32_t field, const std::string& s) { borrowed(field, s.data(), s.size(), true); }
  // A length-delimited field whose payload is referenced, not copied (it must outlive the Msg).
  void borrowed(uint32_t field, const void* p, size_t n, bool copy = false) {
    key(field, Len);
    raw_varint(n);
    if (copy || n < 4096) own(p, n);
    else pieces_.push_back({{}, p, n}), size_ += n;
  }
  void message(uint32_t field, Msg&& m) {
    key(field, Len);
    raw_varint(m.size_);
    for (Piece& p : m.pieces_) {
      if (p.ext) {
        size_ += p.n;
        pieces_.push_back(std::move(p));
      } else {
        own(p.bytes.data(), p.bytes.size());
      }
    }
  }

  template <class F> void each(F&& f) const {
    for (const Piece& p : pieces_) p.ext ? f(p.ext, p.n) : f(p.bytes.data(), p.bytes.size());
  }

 private:
  struct Piece {
    std::string bytes;           // owned, or
    const void* ext = nullptr;   // borrowed
    size_t n = 0;
  };
  void own(const void* p, size_t n) {
    if (pieces_.empty() || pieces_.back().ext) pieces_.push_back({});
    pieces_.back().bytes.append(static_cast<const char*>(p), n);
    size_ += n;
  }
  void raw_varint(uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    do {
      b[n++] = static_cast<uint8_t>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
      v >>= 7;
    } while (v);
    own(b, n);
  }
  void key(uint32_t field, Wire w) { raw_varint((uint64_t(field) << 3) | w); }

  std::vector<Piece> pieces_;
  size_t size_ = 0;
};

// onnx.proto field numbers; every message's fields in ascending number order, as protobuf's own serialiser
// writes them, so that the bytes equal python-onnx's for the same model (tests/test_onnx_writer.cpp).
Msg attribute(const Attribute& a) {
  Msg m;
  m.bytes(1, a.name);
  switch (a.type) {
    case Attribute::Type::Float: m.fixed32(2, a.f); break;
    case Attribute::Type::Int: m.varint(3, uint64_t(a.i)); break;
    case Attribute::Type::String: m.bytes(4, a.s); break;
    case Attribute::Type::Ints:
      for (int64_t v : a.ints) m.varint(8, uint64_t(v));
      break;
  }
  m.varint(20, uint64_t(a.type));
  return m;
}

Msg node(const Node& n) {
  Msg m;
  for (const auto& s : n.inputs) m.bytes(1, s);
  for (const auto& s : n.outputs) m.bytes(2, s);
  m.bytes(4, n.op_type);
  for (const auto& a : n.attributes) m.message(5, attribute(a));
  return m;
}

Msg tensor(const Initializer& t) {
  Msg m;
  for (int64_t d : t.dims) m.varint(1, uint64_t(d));
  m.varint(2, uint64_t(t.type));
  m.bytes(8, t.name);
  int64_t numel = 1;
  for (int64_t d : t.dims) numel *= d;
  const size_t have = t.type == DataType::Float ? t.f.size() : t.i.size();
  if (numel < 0 || size_t(numel) != have)
    fail("ONNX initializer '", t.name, "': ", have, " values for ", numel, " elements");
  if (t.type == DataType::Float) m.borrowed(9, t.f.data(), t.f.size() * 4);
  else m.borrowed(9, t.i.data(), t.i.size() * 8);
  return m;
}

Msg value_info(const ValueInfo& v) {
  Msg shape;
  for (const Dim& d : v.dims) {
    Msg dim;
    if (d.param.empty()) dim.varint(1, uint64_t(d.value));
    else dim.bytes(2, d.param);
    shape.message(1, std::move(dim));
  }
  Msg tt;
  tt.varint(1, uint64_t(v.type));
  tt.message(2, std::move(shape));
  Msg type;
  type.message(1, std::move(tt));
  Msg m;
  m.bytes(1, v.name);
  m.message(2, std::move(type));
  if (!v.doc.empty()) m.bytes(3, v.doc);
  return m;
}

Msg model(const Model& md) {
  Msg g;
  for (const Node& n : md.nodes) g.message(1, node(n));
  g.bytes(2, md.graph_name);
  for (const Initializer& t : md.initializers) g.message(5, tensor(t));
  for (const ValueInfo& v : md.inputs) g.message(11, value_info(v));
  for (const ValueInfo& v : md.outputs) g.message(12, value_info(v));

  Msg m;
  m.varint(1, uint64_t(md.ir_version));
  m.bytes(2, md.producer_name);
  if (!md.producer_version.empty()) m.bytes(3, md.producer_version);
  if (!md.doc.empty()) m.bytes(6, md.doc);
  m.message(7, std::move(g));
  Msg opset;
  opset.bytes(1, "");  // the default domain
  opset.varint(2, uint64_t(md.opset));
  m.message(8, std::move(opset));
  for (const auto& [k, v] : md.metadata) {
    Msg e;
    e.bytes(1, k);
    e.bytes(2, v);
    m.message(14, std::move(e));
  }
  return m;
}

}  // namespace

std::string encode(const Model& md) {
  const Msg m = model(md);
  std::string out;
  out.reserve(m.size());
  m.each([&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

void write_onnx(const std::string& path, const Model& md) {
  const Msg m = model(md);
  // A protobuf message is limited to 2 GiB: larger models need ONNX's external-data layout (not written here).
  if (m.size() >= (size_t(1) << 31))
    fail(path, ": the model is ", m.size() >> 20, " MiB, over protobuf's 2 GiB limit (ONNX external data is not "
               "written here)");
  write_file_atomic(path, [&](std::FILE* f) { m.each([&](const void* p, size_t n) { write_all(f, p, n); }); });
}

}  // namespace mae::io::onnx
