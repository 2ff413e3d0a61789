#include "data/shard_writer.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include <sys/stat.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/decode.h"
#include "data/replace_file.h"
#include "data/shard_index.h"
#include "data/tar.h"

namespace fs = std::filesystem;

namespace mae {

namespace {

constexpr size_t kKeyBytes = 90;  // keys fit ustar's 100-byte names with ".jpeg"/".cls" and room to spare

// "<index>_<stem>": the stem with '.' (WebDataset splits the extension at the first dot), '/' and control bytes
// replaced, cut to fit.
std::string sample_key(size_t index, int width, const std::string& path) {
  std::string key = std::to_string(index);
  key.insert(0, size_t(std::max(0, width - int(key.size()))), '0');
  std::string stem = fs::path(path).stem().string();
  for (char& ch : stem)
    if (ch == '.' || ch == '/' || (unsigned char)ch < 0x20 || ch == 0x7f) ch = '_';
  key += "_" + stem;
  if (key.size() > kKeyBytes) {
    key.resize(kKeyBytes);
    while ((unsigned char)key.back() >= 0x80) key.pop_back();  // never leave half a UTF-8 character
  }
  return key;
}

const char* image_ext(const std::vector<uint8_t>& b) {  // by the magic bytes: ImageNet has a PNG named .JPEG
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "jpg";
  static const uint8_t png[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.size() >= 8 && std::equal(png, png + 8, b.begin())) return "png";
  return nullptr;
}

std::string shard_name(const std::string& prefix, size_t k) {
  char num[16];
  std::snprintf(num, sizeof num, "%06zu", k);
  return prefix + "-" + num + ".tar";
}

// Shards (and their indexes) of this prefix already in the folder.
std::vector<fs::path> existing_shards(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix + "-", 0) == 0 && (n.ends_with(".tar") || n.ends_with(".tar.mae-index"))) found.push_back(e.path());
  }
  return found;
}

}  // namespace

ShardWriteResult write_shards(const FolderDataset& ds, const ShardWriteConfig& cfg,
                              const std::function<void(size_t)>& progress) {
  if (cfg.max_count < 1) fail("--max_count must be ≥ 1, got ", cfg.max_count);
  if (cfg.max_size < 4 * kTarBlock) fail("--max_size must be at least ", 4 * kTarBlock, " bytes, got ", cfg.max_size);
  if (cfg.prefix.empty() || cfg.prefix.find('/') != std::string::npos)
    fail("--prefix must be a non-empty file name prefix, got '", cfg.prefix, "'");
  std::error_code ec;
  fs::create_directories(cfg.out_dir, ec);
  if (ec) fail("--output_dir ", cfg.out_dir, ": cannot create: ", ec.message());
  const std::vector<fs::path> old = existing_shards(cfg.out_dir, cfg.prefix);
  if (!old.empty() && !cfg.overwrite)
    fail("--output_dir ", cfg.out_dir, " already holds ", cfg.prefix, "-*.tar shards (", old[0].string(),
         "): choose another folder or --prefix, or replace them with --overwrite");
  for (const auto& p : old) fs::remove(p, ec);  // stale shards would otherwise join the new set

  // The one-time order: Fisher–Yates from the back, as the loader's per-epoch shuffle.
  const size_t n = ds.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  if (cfg.shuffle) {
    Rng rng = Rng::keyed(Rng::derive(cfg.seed, stream::shard), 0, 0);
    for (size_t i = n - 1; i > 0; i--) std::swap(order[i], order[rng.uniform_int(i + 1)]);
  }
  const int width = std::max(6, int(std::to_string(n ? n - 1 : 0).size()));

  ShardWriteResult res;
  std::vector<uint8_t> img;
  size_t next = 0;
  while (next < n) {
    const std::string path = (fs::path(cfg.out_dir) / shard_name(cfg.prefix, res.shards.size())).string();
    ShardIndex idx;
    replace_file(path, [&](FILE* f) {
      TarWriter tw(f);
      for (int64_t count = 0; next < n && count < cfg.max_count; count++, next++) {
        const size_t i = order[next];
        read_image_file(ds.path(i), img);
        const char* ext = image_ext(img);
        if (!ext) fail("image ", ds.path(i), ": not a JPEG or PNG file (unknown magic bytes)");
        const std::string key = sample_key(i, width, ds.path(i)), cls = std::to_string(ds.label(i));
        const uint64_t need = TarWriter::member_bytes(img.size()) + TarWriter::member_bytes(cls.size());
        if (count > 0 && tw.bytes() + need + 2 * kTarBlock > cfg.max_size) break;
        const std::string name = key + "." + ext;
        const uint64_t at = tw.add(name, img.data(), img.size());
        tw.add(key + ".cls", cls.data(), cls.size());
        idx.samples.push_back({at, uint32_t(img.size()), int32_t(ds.label(i))});
        idx.names += name;
        idx.name_end.push_back(idx.names.size());
        idx.key_len.push_back(uint32_t(key.size()));
        if (progress) progress(next + 1);
      }
      tw.finish();
    });
    // The index is known already: saved now, the first training run does not scan the shard.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      idx.shard_size = uint64_t(st.st_size);
      idx.shard_mtime_ns = int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
      save_shard_index(index_path_beside(path), idx);
      res.bytes += idx.shard_size;
    }
    res.samples += idx.samples.size();
    res.shards.push_back(path);
  }
  const std::vector<std::string> classes = ds.class_names();
  replace_file((fs::path(cfg.out_dir) / "classes.txt").string(), [&](FILE* f) {
    for (const auto& c : classes) {
      write_or_fail(f, c.data(), c.size());
      write_or_fail(f, "\n", 1);
    }
  });
  const std::string last = shard_name(cfg.prefix, res.shards.size() - 1);
  res.pattern = (fs::path(cfg.out_dir) / (cfg.prefix + "-{000000.." + last.substr(cfg.prefix.size() + 1, 6) + "}.tar"))
                    .string();
  return res;
}

}  // namespace mae
