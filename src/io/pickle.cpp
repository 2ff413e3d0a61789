#include "io/pickle.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace mae::io::pickle {

namespace {

// Far above what a checkpoint needs (a ViT-H training checkpoint holds some 2000 tensors, ~30k values), far
// below what would hurt: a hostile data.pkl gets an error, not the machine's memory.
constexpr size_t kMaxValues = size_t(1) << 20;
constexpr size_t kMaxStack = size_t(1) << 22;
constexpr size_t kMaxItems = size_t(1) << 24;  // container elements, all containers together
constexpr size_t kMaxMemo = size_t(1) << 21;
constexpr size_t kMaxRank = 64;

struct StorageType {
  const char* global;
  const char* type;
  DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", "FloatStorage", DType::F32},   {"torch.HalfStorage", "HalfStorage", DType::F16},
    {"torch.BFloat16Storage", "BFloat16Storage", DType::BF16}, {"torch.DoubleStorage", "DoubleStorage", DType::F64},
    {"torch.LongStorage", "LongStorage", DType::I64},     {"torch.IntStorage", "IntStorage", DType::I32},
    {"torch.ShortStorage", "ShortStorage", DType::I16},   {"torch.CharStorage", "CharStorage", DType::I8},
    {"torch.ByteStorage", "ByteStorage", DType::U8},      {"torch.BoolStorage", "BoolStorage", DType::BOOL},
};

const StorageType* storage_type(const std::string& global) {
  for (const auto& t : kStorageTypes)
    if (global == t.global) return &t;
  return nullptr;
}

constexpr const char* kCallables[] = {
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "argparse.Namespace",
};

bool allowed_global(const std::string& g) {
  for (const char* c : kCallables)
    if (g == c) return true;
  return storage_type(g) != nullptr;
}

std::string printable(const std::string& s) {
  std::string r = s.substr(0, 120);
  for (char& c : r)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s.size() > 120 ? r + "..." : r;
}

std::string kind_word(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
    case Kind::Object: return "object";
  }
  return "?";
}
}  // namespace

std::string Unpickler::kind_name(const Value& v) {
  if (v.kind == Kind::Global) return "global " + v.s;
  if (v.kind == Kind::Object) return v.s;
  return kind_word(v.kind);
}

const Value* Unpickler::get(const Value& dict, const std::string& key) const {
  if (dict.kind != Kind::Dict) return nullptr;
  for (size_t k = dict.items.size(); k >= 2; k -= 2) {
    const Value& kv = values_[dict.items[k - 2]];
    if (kv.kind == Kind::Str && kv.s == key) return &values_[dict.items[k - 1]];
  }
  return nullptr;
}

// The pickle virtual machine: a value stack split into frames by MARK, and a memo.
struct Machine {
  Unpickler& u;
  const uint8_t* p;
  size_t n;
  size_t pos = 0, op_pos = 0;
  std::vector<Id> stack;
  std::vector<size_t> marks;  // stack sizes at each MARK
  std::unordered_map<uint32_t, Id> memo;
  size_t items = 0;

  Machine(Unpickler& un, const uint8_t* data, size_t size) : u(un), p(data), n(size) {}

  template <class... A> [[noreturn]] void bad(const A&... what) {
    fail(u.name_, ": pickle: ", what..., " (opcode at byte ", op_pos, ")");
  }

  const uint8_t* need(size_t k) {
    if (n - pos < k) bad("truncated: needs ", k, " more bytes, ", n - pos, " left");
    const uint8_t* r = p + pos;
    pos += k;
    return r;
  }
  template <class T> T read() {
    T v;
    std::memcpy(&v, need(sizeof(T)), sizeof(T));
    return v;
  }

  Id add(Value v) {
    if (u.values_.size() >= kMaxValues) bad("more than ", kMaxValues, " objects: refusing to go on");
    u.values_.push_back(std::move(v));
    return static_cast<Id>(u.values_.size() - 1);
  }
  Value& val(Id id) { return u.values_[id]; }
  void push(Id id) {
    if (stack.size() >= kMaxStack) bad("stack deeper than ", kMaxStack);
    stack.push_back(id);
  }
  size_t frame() const { return marks.empty() ? 0 : marks.back(); }
  Id pop() {
    if (stack.size() <= frame()) bad("stack underflow");
    const Id v = stack.back();
    stack.pop_back();
    return v;
  }
  Id& top() {
    if (stack.size() <= frame()) bad("stack underflow");
    return stack.back();
  }
  // The values above the last MARK, which is removed.
  std::vector<Id> pop_mark() {
    if (marks.empty()) bad("no MARK to pop to");
    const size_t m = marks.back();
    marks.pop_back();
    std::vector<Id> r(stack.begin() + static_cast<std::ptrdiff_t>(m), stack.end());
    stack.resize(m);
    return r;
  }
  void grow(Value& container, const std::vector<Id>& add_items) {
    items += add_items.size();
    if (items > kMaxItems) bad("more than ", kMaxItems, " container elements: refusing to go on");
    container.items.insert(container.items.end(), add_items.begin(), add_items.end());
  }
  Id make(Kind k, std::vector<Id> elems = {}) {
    Value v;
    v.kind = k;
    items += elems.size();
    if (items > kMaxItems) bad("more than ", kMaxItems, " container elements: refusing to go on");
    v.items = std::move(elems);
    return add(std::move(v));
  }
  Id make_int(int64_t i, Kind k = Kind::Int) {
    Value v;
    v.kind = k;
    v.i = i;
    return add(std::move(v));
  }
  Id make_str(Kind k, size_t len) {
    Value v;
    v.kind = k;
    const uint8_t* s = need(len);
    v.s.assign(reinterpret_cast<const char*>(s), len);
    return add(std::move(v));
  }
  size_t len_of(uint64_t len) {
    if (len > n - pos) bad("truncated: a string of ", len, " bytes, ", n - pos, " left");
    return static_cast<size_t>(len);
  }
  Id make_global(const std::string& module, const std::string& name) {
    const std::string g = module + "." + name;
    if (!allowed_global(g)) fail(u.name_, ": refusing pickle global '", printable(g), "'");
    Value v;
    v.kind = Kind::Global;
    v.s = g;
    return add(std::move(v));
  }
  std::string line() {  // GLOBAL's text arguments, each ended by '\n'
    const void* nl = std::memchr(p + pos, '\n', n - pos);
    if (!nl) bad("truncated GLOBAL");
    const size_t len = static_cast<size_t>(static_cast<const uint8_t*>(nl) - (p + pos));
    std::string s(reinterpret_cast<const char*>(p + pos), len);
    pos += len + 1;
    return s;
  }
  int64_t little_long(size_t len) {
    if (len > 8) bad("integer of ", len, " bytes does not fit 64 bits");
    const uint8_t* b = need(len);
    uint64_t v = 0;
    for (size_t k = 0; k < len; ++k) v |= uint64_t(b[k]) << (8 * k);
    if (len > 0 && len < 8 && (b[len - 1] & 0x80)) v |= ~uint64_t(0) << (8 * len);  // sign-extend
    return static_cast<int64_t>(v);
  }

  // --- the known constructors, as data -------------------------------------------------------------------
  const Value& as(Id id, Kind k, const char* what) {
    const Value& v = val(id);
    if (v.kind != k) bad(what, " must be a ", kind_word(k), ", not ", Unpickler::kind_name(v));
    return v;
  }
  std::vector<int64_t> int_tuple(Id id, const char* what) {
    const Value& t = as(id, Kind::Tuple, what);
    if (t.items.size() > kMaxRank) bad(what, " has more than ", kMaxRank, " dimensions");
    std::vector<int64_t> r;
    for (Id e : t.items) {
      const Value& x = val(e);
      if (x.kind != Kind::Int) bad(what, " must hold ints, not ", Unpickler::kind_name(x));
      if (x.i < 0) bad(what, " holds a negative value ", x.i);
      r.push_back(x.i);
    }
    return r;
  }
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  Id rebuild_tensor(const std::vector<Id>& a) {
    if (a.size() != 6 && a.size() != 7) bad("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", a.size());
    TensorRef t;
    t.storage = a[0];
    as(a[0], Kind::Storage, "_rebuild_tensor_v2's storage");
    const Value& off = as(a[1], Kind::Int, "_rebuild_tensor_v2's storage offset");
    if (off.i < 0) bad("negative storage offset ", off.i);
    t.offset = off.i;
    t.size = int_tuple(a[2], "_rebuild_tensor_v2's size");
    t.stride = int_tuple(a[3], "_rebuild_tensor_v2's stride");
    if (t.size.size() != t.stride.size())
      bad("_rebuild_tensor_v2: size has ", t.size.size(), " dimensions, stride ", t.stride.size());
    as(a[4], Kind::Bool, "_rebuild_tensor_v2's requires_grad");
    if (val(a[5]).kind != Kind::Dict && val(a[5]).kind != Kind::None)
      bad("_rebuild_tensor_v2's backward_hooks must be a dict, not ", Unpickler::kind_name(val(a[5])));
    u.tensors_.push_back(std::move(t));
    return make_int(static_cast<int64_t>(u.tensors_.size() - 1), Kind::Tensor);
  }
  Id call(const Value& fn, const std::vector<Id>& args) {
    const std::string g = fn.s;  // a copy: adding values may move the arena
    if (g == "collections.OrderedDict") {
      if (!args.empty()) bad("OrderedDict with arguments is not supported");
      return make(Kind::Dict);
    }
    if (g == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
      const size_t want = g == "torch._utils._rebuild_parameter" ? 3 : 4;
      if (args.size() != want) bad(g, " takes ", want, " arguments, got ", args.size());
      as(args[0], Kind::Tensor, "a Parameter's data");
      return args[0];  // a Parameter is its tensor, for reading weights
    }
    if (g == "argparse.Namespace") {
      if (!args.empty()) bad("argparse.Namespace with positional arguments");
      Value v;
      v.kind = Kind::Object;
      v.s = g;
      return add(std::move(v));
    }
    bad("'", g, "' cannot be called");  // the storage types only appear in persistent ids
  }

  void run() {
    bool stopped = false;
    while (!stopped) {
      op_pos = pos;
      const uint8_t op = *need(1);
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = *need(1);
          if (v > 5) bad("pickle protocol ", int(v), " is newer than 5");
          break;
        }
        case 0x95: need(8); break;  // FRAME: framing is transparent to the reader
        case '.': stopped = true; break;  // STOP
        case '(':  // MARK; bounded like the stack (a zip bomb of MARKs once reached 1.9 GB)
          if (marks.size() >= kMaxStack) bad("more than ", kMaxStack, " MARKs open");
          marks.push_back(stack.size());
          break;
        case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
        case ']': push(make(Kind::List)); break;  // EMPTY_LIST
        case ')': push(make(Kind::Tuple)); break;  // EMPTY_TUPLE
        case 'N': push(add(Value{})); break;       // NONE
        case 0x88: push(make_int(1, Kind::Bool)); break;  // NEWTRUE
        case 0x89: push(make_int(0, Kind::Bool)); break;  // NEWFALSE
        case 'J': push(make_int(read<int32_t>())); break;  // BININT
        case 'K': push(make_int(read<uint8_t>())); break;  // BININT1
        case 'M': push(make_int(read<uint16_t>())); break;  // BININT2
        case 0x8a: push(make_int(little_long(read<uint8_t>()))); break;  // LONG1
        case 0x8b: {  // LONG4
          const int32_t len = read<int32_t>();
          if (len < 0) bad("negative LONG4 length");
          push(make_int(little_long(static_cast<size_t>(len))));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          const uint64_t bits = __builtin_bswap64(read<uint64_t>());
          Value v;
          v.kind = Kind::Float;
          v.f = std::bit_cast<double>(bits);
          push(add(std::move(v)));
          break;
        }
        case 'X': push(make_str(Kind::Str, len_of(read<uint32_t>()))); break;    // BINUNICODE
        case 0x8c: push(make_str(Kind::Str, len_of(read<uint8_t>()))); break;    // SHORT_BINUNICODE
        case 0x8d: push(make_str(Kind::Str, len_of(read<uint64_t>()))); break;   // BINUNICODE8
        case 'B': push(make_str(Kind::Bytes, len_of(read<uint32_t>()))); break;  // BINBYTES
        case 'C': push(make_str(Kind::Bytes, len_of(read<uint8_t>()))); break;   // SHORT_BINBYTES
        case 0x8e: push(make_str(Kind::Bytes, len_of(read<uint64_t>()))); break; // BINBYTES8
        case 't': push(make(Kind::Tuple, pop_mark())); break;  // TUPLE
        case 0x85: {                                           // TUPLE1
          const Id a = pop();
          push(make(Kind::Tuple, {a}));
          break;
        }
        case 0x86: {  // TUPLE2
          const Id b = pop(), a = pop();
          push(make(Kind::Tuple, {a, b}));
          break;
        }
        case 0x87: {  // TUPLE3
          const Id c = pop(), b = pop(), a = pop();
          push(make(Kind::Tuple, {a, b, c}));
          break;
        }
        case 'l': push(make(Kind::List, pop_mark())); break;  // LIST
        case 'd': {                                           // DICT
          std::vector<Id> kv = pop_mark();
          if (kv.size() % 2) bad("DICT with an odd number of items");
          push(make(Kind::Dict, std::move(kv)));
          break;
        }
        case 's': {  // SETITEM
          const Id v = pop(), k = pop();
          Value& d = val(top());
          if (d.kind != Kind::Dict) bad("SETITEM on a ", Unpickler::kind_name(d));
          grow(d, {k, v});
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Id> kv = pop_mark();
          if (kv.size() % 2) bad("SETITEMS with an odd number of items");
          Value& d = val(top());
          if (d.kind != Kind::Dict) bad("SETITEMS on a ", Unpickler::kind_name(d));
          grow(d, kv);
          break;
        }
        case 'a': {  // APPEND
          const Id v = pop();
          Value& l = val(top());
          if (l.kind != Kind::List) bad("APPEND on a ", Unpickler::kind_name(l));
          grow(l, {v});
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Id> vs = pop_mark();
          Value& l = val(top());
          if (l.kind != Kind::List) bad("APPENDS on a ", Unpickler::kind_name(l));
          grow(l, vs);
          break;
        }
        case 'q': memo_put(read<uint8_t>()); break;   // BINPUT
        case 'r': memo_put(read<uint32_t>()); break;  // LONG_BINPUT
        case 0x94: memo_put(static_cast<uint32_t>(memo.size())); break;  // MEMOIZE
        case 'h': push(memo_get(read<uint8_t>())); break;   // BINGET
        case 'j': push(memo_get(read<uint32_t>())); break;  // LONG_BINGET
        case '0':  // POP (of an empty frame: its MARK)
          if (stack.size() > frame()) stack.pop_back();
          else pop_mark();
          break;
        case '1': pop_mark(); break;  // POP_MARK
        case '2': push(top()); break;  // DUP
        case 'c': {                    // GLOBAL "module\nname\n"
          const std::string module = line();
          const std::string name = line();
          push(make_global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Id name = pop(), module = pop();
          if (val(name).kind != Kind::Str || val(module).kind != Kind::Str) bad("STACK_GLOBAL needs two strings");
          push(make_global(val(module).s, val(name).s));
          break;
        }
        case 'R': {  // REDUCE
          const Id args = pop(), fn = pop();
          const Value& a = as(args, Kind::Tuple, "REDUCE's arguments");
          const Value& f = as(fn, Kind::Global, "REDUCE's callable");
          std::vector<Id> av = a.items;
          push(call(f, av));
          break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
          const Id args = pop(), cls = pop();
          as(args, Kind::Tuple, "NEWOBJ's arguments");
          const Value& c = as(cls, Kind::Global, "NEWOBJ's class");
          if (c.s != "argparse.Namespace" && c.s != "collections.OrderedDict") bad("NEWOBJ of '", c.s, "'");
          Value v;
          v.kind = c.s == "collections.OrderedDict" ? Kind::Dict : Kind::Object;
          if (v.kind == Kind::Object) v.s = c.s;
          push(add(std::move(v)));
          break;
        }
        case 0x92: {  // NEWOBJ_EX: cls.__new__(cls, *args, **kwargs)
          const Id kwargs = pop(), args = pop(), cls = pop();
          as(kwargs, Kind::Dict, "NEWOBJ_EX's keyword arguments");
          as(args, Kind::Tuple, "NEWOBJ_EX's arguments");
          const Value& c = as(cls, Kind::Global, "NEWOBJ_EX's class");
          if (c.s != "argparse.Namespace") bad("NEWOBJ_EX of '", c.s, "'");
          Value v;
          v.kind = Kind::Object;
          v.s = c.s;
          push(add(std::move(v)));
          break;
        }
        case 'b': {  // BUILD: obj.__setstate__(state) or obj.__dict__.update(state)
          const Id state = pop();
          Value& obj = val(top());
          if (obj.kind == Kind::Object) {
            if (!obj.items.empty()) bad("BUILD twice on one ", obj.s);
            grow(obj, {state});
          } else if (obj.kind != Kind::Dict) {  // an OrderedDict's attributes (state_dict's _metadata): dropped
            bad("BUILD on a ", Unpickler::kind_name(obj));
          }
          break;
        }
        case 'Q': {  // BINPERSID: ('storage', storage type, key, location, numel)
          const Id pid = pop();
          push(persistent(pid));
          break;
        }
        default:
          bad("unsupported opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15],
              op >= 0x20 && op < 0x7f ? std::string(" '") + char(op) + "'" : std::string(),
              " (only the binary opcodes torch.save writes are understood)");
      }
    }
    if (stack.size() != frame() + 1 || !marks.empty()) {
      if (stack.empty()) bad("STOP with an empty stack");
      // Python tolerates leftovers; a torch pickle never has them, so they mean corruption.
      bad("STOP leaves ", stack.size(), " values and ", marks.size(), " marks on the stack");
    }
    u.root_ = stack.back();
  }

  void memo_put(uint32_t key) {
    if (memo.size() >= kMaxMemo && !memo.count(key)) bad("memo larger than ", kMaxMemo);
    memo[key] = top();
  }
  Id memo_get(uint32_t key) {
    auto it = memo.find(key);
    if (it == memo.end()) bad("memo key ", key, " was never stored");
    return it->second;
  }

  Id persistent(Id pid) {
    const Value& t = val(pid);
    if (t.kind != Kind::Tuple || t.items.size() != 5) bad("persistent id must be a 5-tuple, not ", Unpickler::kind_name(t));
    const Value &tag = val(t.items[0]), &type = val(t.items[1]), &key = val(t.items[2]), &loc = val(t.items[3]),
                &numel = val(t.items[4]);
    if (tag.kind != Kind::Str || tag.s != "storage") bad("persistent id of an unknown kind (not 'storage')");
    if (type.kind != Kind::Global || !storage_type(type.s)) bad("persistent id: not a storage type");
    if (key.kind != Kind::Str || key.s.empty()) bad("persistent id: the storage key must be a non-empty string");
    if (loc.kind != Kind::Str) bad("persistent id: the location must be a string");
    if (numel.kind != Kind::Int || numel.i < 0) bad("persistent id: the element count must be a non-negative int");
    const StorageType* st = storage_type(type.s);
    StorageRef s;
    s.dtype = st->dtype;
    s.type = st->type;
    s.key = key.s;
    s.location = loc.s;
    s.numel = numel.i;
    u.storages_.push_back(std::move(s));
    return make_int(static_cast<int64_t>(u.storages_.size() - 1), Kind::Storage);
  }
};

Unpickler::Unpickler(const uint8_t* data, size_t size, std::string name) : name_(std::move(name)) {
  Machine m(*this, data, size);
  m.run();
}

}  // namespace mae::io::pickle
