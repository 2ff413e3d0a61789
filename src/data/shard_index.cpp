#include "data/shard_index.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/limits.h"
#include "data/replace_file.h"
#include "data/tar.h"

namespace fs = std::filesystem;

namespace mae {

namespace {

// A member name split the WebDataset way: key = up to the first '.' of the base name, ext = the rest.
struct KeyExt {
  std::string_view key, ext;
  bool ok = false;
};
KeyExt split_name(std::string_view name) {
  const size_t slash = name.rfind('/');
  const size_t base = slash == std::string_view::npos ? 0 : slash + 1;
  if (base >= name.size() || name[base] == '.') return {};  // a folder, or hidden (macOS "._x.jpg")
  const size_t dot = name.find('.', base);
  if (dot == std::string_view::npos || dot == base) return {};
  return {name.substr(0, dot), name.substr(dot + 1), true};
}

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  return r;
}

int image_rank(const std::string& ext) {  // preference among a sample's image members; 0 = not an image
  return ext == "jpg" ? 3 : ext == "jpeg" ? 2 : ext == "png" ? 1 : 0;
}

// Label text → integer in [0, kClasses). .cls: optional blanks, decimal digits, optional blanks/newline.
int32_t parse_label(const std::string& text, bool json, const std::string& where) {
  int64_t v = 0;
  auto out_of_range = [&](const std::string& shown) {
    fail(where, ": label ", shown, " is out of range [0, ", limits::kClasses, ")");
  };
  if (json) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object()) j = j.contains("label") ? j["label"] : j.contains("cls") ? j["cls"] : nlohmann::json();
    if (!j.is_number_integer())
      fail(where, ": no integer label (want a number, or an object with \"label\" or \"cls\"): '", text.substr(0, 80),
           "'");
    const bool in_range = j.is_number_unsigned() ? j.get<uint64_t>() < uint64_t(limits::kClasses)
                                                 : j.get<int64_t>() >= 0 && j.get<int64_t>() < limits::kClasses;
    if (!in_range) out_of_range(j.dump());
    return int32_t(j.get<int64_t>());
  }
  size_t i = 0, n = text.size();
  auto blank = [&](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; };
  while (i < n && blank(text[i])) i++;
  const bool neg = i < n && text[i] == '-';
  if (neg) i++;
  const size_t digits = i;
  for (; i < n && text[i] >= '0' && text[i] <= '9'; i++) {
    v = v * 10 + (text[i] - '0');
    if (v >= limits::kClasses) {  // stop before it can overflow; say which text it was
      while (i < n && text[i] >= '0' && text[i] <= '9') i++;
      out_of_range(text.substr(digits - neg, i - digits + neg));
    }
  }
  const size_t end_digits = i;
  while (i < n && blank(text[i])) i++;
  if (end_digits == digits || i != n) fail(where, ": label '", text.substr(0, 80), "' is not an integer");
  if (neg && v != 0) out_of_range("-" + std::to_string(v));
  return int32_t(v);
}

}  // namespace

ShardIndex build_shard_index(int fd, uint64_t size, int64_t mtime_ns, const std::string& path) {
  ShardIndex idx;
  idx.shard_size = size, idx.shard_mtime_ns = mtime_ns;
  // The sample being grouped: its key, best image member and label so far.
  std::string key, members;
  TarMember image;
  int rank = 0;
  int32_t label = -1;
  bool open = false;
  auto close = [&] {
    if (!open) return;
    if (rank == 0)
      fail("shard ", path, ": sample ", key, " has no image member (.jpg, .jpeg or .png); its members: ", members);
    idx.samples.push_back({image.offset, uint32_t(image.size), label});
    idx.names += image.name;
    idx.name_end.push_back(idx.names.size());
    idx.key_len.push_back(uint32_t(key.size()));
    if (idx.samples.size() > limits::kDatasetItems)
      fail("shard ", path, ": more than ", limits::kDatasetItems, " samples");
    open = false;
  };
  scan_tar(fd, size, path, [&](const TarMember& m) {
    const KeyExt ke = split_name(m.name);
    if (!ke.ok) return;
    if (!open || ke.key != key) {
      close();
      key = std::string(ke.key), members.clear(), rank = 0, label = -1, open = true;
    }
    members += (members.empty() ? "" : ", ") + m.name;
    const std::string ext = lower(ke.ext);
    const std::string where = "shard " + path + ": member " + m.name;
    if (const int r = image_rank(ext); r > rank) {
      if (m.size > limits::kImageFileBytes)
        fail(where, ": ", m.size, " bytes is more than the limit of ", limits::kImageFileBytes, " for one image file");
      image = m, rank = r;
    } else if (ext == "cls" || ext == "json") {
      if (label >= 0 && ext == "json") return;  // .cls first, when a sample has both
      if (m.size > limits::kShardMetaBytes)
        fail(where, ": ", m.size, " bytes is more than the limit of ", limits::kShardMetaBytes, " for a label");
      std::string text(size_t(m.size), '\0');
      pread_exact(fd, text.data(), text.size(), m.offset, where);
      label = parse_label(text, ext == "json", where);
    }
  });
  close();
  return idx;
}

// ------------------------------------------------------------------------------------------------ cache files

namespace {

constexpr char kMagic[8] = {'M', 'A', 'E', 'S', 'I', 'D', 'X', '1'};
constexpr size_t kHead = 8 + 4 * 8, kEntry = 8 + 4 + 4 + 4 + 4, kTail = 8;

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

template <class T> void put(std::string& b, T v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); }
template <class T> T get(const uint8_t*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

}  // namespace

std::string index_path_beside(const std::string& shard) { return shard + ".mae-index"; }

std::string index_path_fallback(const std::string& shard, const std::string& fallback_dir) {
  std::error_code ec;
  const std::string abs = fs::absolute(shard, ec).lexically_normal().string();
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx",
                (unsigned long long)fnv1a(reinterpret_cast<const uint8_t*>(abs.data()), abs.size()));
  return (fs::path(fallback_dir) / "shard-index" / (fs::path(shard).filename().string() + "." + hash + ".mae-index"))
      .string();
}

bool save_shard_index(const std::string& file, const ShardIndex& idx) {
  // Layout (little endian): magic, shard size, mtime ns, sample count, name bytes; per sample offset u64, size u32,
  // label i32, name length u32, key length u32; the names; FNV-1a of everything before.
  std::string b(kMagic, sizeof kMagic);
  put<uint64_t>(b, idx.shard_size);
  put<int64_t>(b, idx.shard_mtime_ns);
  put<uint64_t>(b, idx.samples.size());
  put<uint64_t>(b, idx.names.size());
  for (size_t i = 0; i < idx.samples.size(); i++) {
    put<uint64_t>(b, idx.samples[i].offset);
    put<uint32_t>(b, idx.samples[i].size);
    put<int32_t>(b, idx.samples[i].label);
    put<uint32_t>(b, uint32_t(idx.member(i).size()));
    put<uint32_t>(b, idx.key_len[i]);
  }
  b += idx.names;
  put<uint64_t>(b, fnv1a(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);
  try {
    replace_file(file, [&](FILE* f) { write_or_fail(f, b.data(), b.size()); });
  } catch (const Error&) {
    return false;  // a read-only folder: the caller tries the next place
  }
  return true;
}

bool load_shard_index(const std::string& file, uint64_t size, int64_t mtime_ns, ShardIndex& out) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  // An index never holds more than its shard: every sample costs the shard at least two 512-byte blocks.
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) < kHead + kTail ||
      uint64_t(st.st_size) > kHead + kTail + size) {
    ::close(fd);
    return false;
  }
  std::vector<uint8_t> b(size_t(st.st_size));
  try {
    pread_exact(fd, b.data(), b.size(), 0, file);
  } catch (const Error&) {
    ::close(fd);
    return false;
  }
  ::close(fd);
  const uint8_t* p = b.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return false;
  p += sizeof kMagic;
  const uint64_t shard_size = get<uint64_t>(p);
  const int64_t mtime = get<int64_t>(p);
  const uint64_t count = get<uint64_t>(p), name_bytes = get<uint64_t>(p);
  if (shard_size != size || mtime != mtime_ns) return false;  // the shard changed: rebuild
  const uint64_t body = b.size() - kHead - kTail;
  if (count > body / kEntry || name_bytes != body - count * kEntry) return false;
  if (fnv1a(b.data(), b.size() - kTail) != [&] {
        const uint8_t* t = b.data() + b.size() - kTail;
        return get<uint64_t>(t);
      }())
    return false;
  ShardIndex idx;
  idx.shard_size = shard_size, idx.shard_mtime_ns = mtime;
  idx.samples.resize(size_t(count));
  idx.name_end.resize(size_t(count));
  idx.key_len.resize(size_t(count));
  uint64_t end = 0;
  for (size_t i = 0; i < count; i++) {
    ShardSample& s = idx.samples[i];
    s.offset = get<uint64_t>(p);
    s.size = get<uint32_t>(p);
    s.label = get<int32_t>(p);
    const uint32_t name_len = get<uint32_t>(p), key_len = get<uint32_t>(p);
    if (s.offset > size || s.size > size - s.offset || s.size > limits::kImageFileBytes || s.label < -1 ||
        s.label >= limits::kClasses || name_len > limits::kTarNameBytes || key_len == 0 || key_len >= name_len)
      return false;
    end += name_len;
    if (end > name_bytes) return false;
    idx.name_end[i] = end, idx.key_len[i] = key_len;
  }
  if (end != name_bytes) return false;
  idx.names.assign(reinterpret_cast<const char*>(p), size_t(name_bytes));
  out = std::move(idx);
  return true;
}

ShardIndex open_shard_index(const std::string& shard, int fd, uint64_t size, int64_t mtime_ns,
                            const std::string& fallback_dir, IndexStats& stats) {
  const std::string beside = index_path_beside(shard);
  const std::string fallback = fallback_dir.empty() ? std::string() : index_path_fallback(shard, fallback_dir);
  ShardIndex idx;
  if (load_shard_index(beside, size, mtime_ns, idx) || (!fallback.empty() && load_shard_index(fallback, size, mtime_ns, idx))) {
    stats.reused++;
    return idx;
  }
  idx = build_shard_index(fd, size, mtime_ns, shard);
  stats.built++;
  if (save_shard_index(beside, idx))
    stats.saved_beside++;
  else if (!fallback.empty() && save_shard_index(fallback, idx))
    stats.saved_fallback++;
  else
    stats.memory_only++;
  return idx;
}

}  // namespace mae
