// Tar shards: the tar reader (ustar, pax, GNU long names, truncation), brace patterns, the index cache (built
// once, rebuilt when the shard changes, a read-only folder falls back to the run folder or memory), shards made by
// write_shards equal to their folder (items, labels, bytes, loader batches), and bad input named by shard + member.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "data/loader.h"
#include "data/shard_dataset.h"
#include "data/shard_index.h"
#include "data/shard_paths.h"
#include "data/shard_writer.h"
#include "data/tar.h"
#include "data_files.h"

namespace fs = std::filesystem;
using namespace mae;

namespace {

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

std::vector<uint8_t> jpeg_bytes(int w, int h, int salt, int quality = 90) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) px[(size_t(y) * w + x) * 3 + c] = uint8_t(30 + 2 * x + 3 * y + 40 * c + salt * 7);
  return test::encode_jpeg(px, w, h, 3, quality);
}

// A tar from (name, bytes) members written by TarWriter.
using Members = std::vector<std::pair<std::string, std::vector<uint8_t>>>;
std::vector<uint8_t> tar_of(const Members& members) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  TarWriter tw(f);
  for (const auto& [n, b] : members) tw.add(n, b.data(), b.size());
  tw.finish();
  fclose(f);
  std::vector<uint8_t> out(buf, buf + len);
  free(buf);
  return out;
}
std::vector<uint8_t> text(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// A raw header block of any type (for pax 'x' and GNU 'L' records TarWriter does not write).
std::vector<uint8_t> raw_header(const std::string& name, char type, size_t size) {
  std::vector<uint8_t> h(512, 0);
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(reinterpret_cast<char*>(&h[100]), 8, "%07o", 0644);
  std::snprintf(reinterpret_cast<char*>(&h[124]), 12, "%011zo", size);
  h[156] = uint8_t(type);
  std::memcpy(&h[257], "ustar\0" "00", 8);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (uint8_t b : h) sum += b;
  std::snprintf(reinterpret_cast<char*>(&h[148]), 8, "%06o", sum);
  return h;
}
void append_padded(std::vector<uint8_t>& t, const std::vector<uint8_t>& d) {
  t.insert(t.end(), d.begin(), d.end());
  t.resize((t.size() + 511) / 512 * 512, 0);
}

std::vector<TarMember> scan(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<TarMember> out;
  try {
    scan_tar(fd, uint64_t(st.st_size), path, [&](const TarMember& m) { out.push_back(m); });
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return out;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error (wanted one naming " << parts[0] << ")";
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "'" << p << "' not in: " << e.what();
  }
}

// A class folder: 3 classes × 4 JPEGs of varied sizes (one PNG-named .JPEG would need PNG bytes; sizes vary instead).
void make_folder(const std::string& root) {
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < 4; k++)
      write_bytes(root + "/class" + std::to_string(c) + "/img." + std::to_string(k) + ".JPEG",
                  jpeg_bytes(40 + 7 * k + c, 33 + 5 * c + k, c * 4 + k));
}

int64_t mtime_of(const std::string& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

// ------------------------------------------------------------------------------------------------------ tar

TEST(Tar, WriterOutputReadsBackWithOffsets) {
  TempDir t;
  const Members m = {{"a.jpg", text("hello")}, {"a.cls", text("3")}, {"dir/b.jpg", std::vector<uint8_t>(1000, 7)}};
  write_bytes(t / "x.tar", tar_of(m));
  const auto got = scan(t / "x.tar");
  ASSERT_EQ(got.size(), 3u);
  const auto bytes = read_bytes(t / "x.tar");
  for (size_t i = 0; i < 3; i++) {
    EXPECT_EQ(got[i].name, m[i].first);
    ASSERT_EQ(got[i].size, m[i].second.size());
    EXPECT_TRUE(std::equal(m[i].second.begin(), m[i].second.end(), bytes.begin() + long(got[i].offset)));
  }
  EXPECT_EQ(bytes.size() % 512, 0u);
}

TEST(Tar, PaxAndGnuLongNamesAndPrefix) {
  TempDir t;
  const std::string long1(150, 'p'), long2(180, 'g');
  std::vector<uint8_t> tar;
  const std::string rec = " path=" + long1 + ".jpg\n";
  std::string pax = std::to_string(rec.size() + 3) + rec;  // the length counts its own digits
  ASSERT_EQ(pax.size(), std::stoul(pax));
  append_padded(tar, raw_header("PaxHeader", 'x', pax.size()));
  append_padded(tar, text(pax));
  append_padded(tar, raw_header("short.jpg", '0', 4));
  append_padded(tar, text("abcd"));
  const std::string gname = long2 + ".cls";
  append_padded(tar, raw_header("././@LongLink", 'L', gname.size() + 1));
  append_padded(tar, text(gname + std::string(1, '\0')));
  append_padded(tar, raw_header("trunc", '0', 1));
  append_padded(tar, text("7"));
  auto h = raw_header("name.jpg", '0', 2);  // ustar prefix field
  std::memcpy(&h[345], "some/dir", 8);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (uint8_t b : h) sum += b;
  std::snprintf(reinterpret_cast<char*>(&h[148]), 8, "%06o", sum);
  append_padded(tar, h);
  append_padded(tar, text("xy"));
  append_padded(tar, raw_header("somedir/", '5', 0));  // a directory: skipped
  tar.resize(tar.size() + 1024, 0);
  write_bytes(t / "p.tar", tar);
  const auto got = scan(t / "p.tar");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].name, long1 + ".jpg");
  EXPECT_EQ(got[0].size, 4u);
  EXPECT_EQ(got[1].name, gname);
  EXPECT_EQ(got[2].name, "some/dir/name.jpg");
  EXPECT_EQ(got[0].header, 0u);  // the pax block belongs to its member
}

TEST(Tar, TruncatedAndCorruptNameShardAndMember) {
  TempDir t;
  const auto full = tar_of({{"k1.jpg", std::vector<uint8_t>(700, 1)}, {"k1.cls", text("1")},
                            {"k2.jpg", std::vector<uint8_t>(900, 2)}, {"k2.cls", text("2")}});
  // cut inside k2.jpg's data
  // layout: k1.jpg header 0, data 512..1212; k1.cls header 1536, data 2048; k2.jpg header 2560, data 3072..3972
  write_bytes(t / "cut.tar", std::vector<uint8_t>(full.begin(), full.begin() + 3072 + 300));
  expect_error([&] { scan(t / "cut.tar"); }, {t / "cut.tar", "truncated", "k2.jpg"});
  // cut on a block boundary after k2.cls: no end-of-archive block
  const size_t end_of_members = full.size() - 1024;
  write_bytes(t / "noend.tar", std::vector<uint8_t>(full.begin(), full.begin() + long(end_of_members)));
  expect_error([&] { scan(t / "noend.tar"); }, {t / "noend.tar", "end-of-archive", "k2.cls"});
  // cut inside a header
  write_bytes(t / "half.tar", std::vector<uint8_t>(full.begin(), full.begin() + 1536 + 100));
  expect_error([&] { scan(t / "half.tar"); }, {t / "half.tar", "inside the header", "k1.jpg"});
  // a flipped byte in a header
  auto bad = full;
  bad[1536 + 10] ^= 0x55;
  write_bytes(t / "sum.tar", bad);
  expect_error([&] { scan(t / "sum.tar"); }, {t / "sum.tar", "checksum", "k1.jpg"});
  // not a tar at all, and an empty file
  write_bytes(t / "jpeg.tar", jpeg_bytes(20, 20, 0));
  expect_error([&] { scan(t / "jpeg.tar"); }, {t / "jpeg.tar"});
  write_bytes(t / "empty.tar", {});
  expect_error([&] { scan(t / "empty.tar"); }, {t / "empty.tar", "truncated"});
}

// ------------------------------------------------------------------------------------------------ patterns

TEST(ShardPaths, BraceExpansion) {
  EXPECT_EQ(expand_braces("s/train-{000..002}.tar"),
            (std::vector<std::string>{"s/train-000.tar", "s/train-001.tar", "s/train-002.tar"}));
  EXPECT_EQ(expand_braces("{a,b}-{1..2}"), (std::vector<std::string>{"a-1", "a-2", "b-1", "b-2"}));
  EXPECT_EQ(expand_braces("x{9..11}"), (std::vector<std::string>{"x9", "x10", "x11"}));
  EXPECT_EQ(expand_braces("{a,{b,c}}"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(expand_braces("lit{eral}.tar"), (std::vector<std::string>{"lit{eral}.tar"}));
  expect_error([] { expand_braces("x{0..99999999}.tar"); }, {"x{0..99999999}.tar", "more than"});
  expect_error([] { expand_braces("{0..999}{0..9999}"); }, {"more than"});
}

TEST(ShardPaths, PatternsAndFolders) {
  TempDir t;
  const auto tar = tar_of({{"a.jpg", jpeg_bytes(16, 16, 0)}});
  for (const char* n : {"train-000.tar", "train-001.tar", "val-000.tar"}) write_bytes(t / n, tar);
  EXPECT_EQ(resolve_shard_pattern(t / "train-{000..001}.tar").size(), 2u);
  EXPECT_EQ(resolve_shard_pattern(t / "*.tar").size(), 3u);
  expect_error([&] { resolve_shard_pattern(t / "nope-{000..003}.tar"); }, {t / "nope-{000..003}.tar", "matches no file"});
  expect_error([&] { resolve_shard_pattern(t / "train-{000..002}.tar"); }, {t / "train-002.tar", "does not exist"});
  expect_error([&] { open_dataset(t / "zzz-*.tar", "train"); }, {"matches no file"});
  EXPECT_EQ(shards_in_folder(t.path.string(), true).size(), 2u);
  EXPECT_EQ(shards_in_folder(t.path.string(), false), std::vector<std::string>{t / "val-000.tar"});
  fs::remove(t / "val-000.tar");
  expect_error([&] { shards_in_folder(t.path.string(), false); }, {t.path.string(), "val/test"});
}

// ---------------------------------------------------------------------------------------------- index cache

TEST(ShardIndex, BuiltOnceRebuiltWhenTheShardChanges) {
  TempDir t;
  write_bytes(t / "s/train-0.tar", tar_of({{"b.jpg", jpeg_bytes(16, 16, 1)}, {"b.cls", text("1")},
                                           {"a.jpg", jpeg_bytes(17, 16, 2)}, {"a.cls", text(" 0\n")}}));
  {
    ShardDataset ds({t / "s/train-0.tar"}, t / "s", "");
    EXPECT_EQ(ds.index_stats().built, 1u);
    EXPECT_EQ(ds.index_stats().saved_beside, 1u);
    ASSERT_EQ(ds.size(), 2u);
    EXPECT_EQ(ds.item_name(0), t / "s/train-0.tar" + ":a.jpg");  // numbered by key
    EXPECT_EQ(ds.label(0), 0);
    EXPECT_EQ(ds.label(1), 1);
    EXPECT_EQ(ds.load(0).w, 17);
  }
  EXPECT_TRUE(fs::exists(index_path_beside(t / "s/train-0.tar")));
  {
    ShardDataset ds({t / "s/train-0.tar"}, t / "s", "");
    EXPECT_EQ(ds.index_stats().reused, 1u);
    EXPECT_EQ(ds.index_stats().built, 0u);
  }
  // rewritten with other content (size and mtime change): the stale index is noticed and rebuilt
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write_bytes(t / "s/train-0.tar", tar_of({{"c.jpg", jpeg_bytes(18, 16, 3)}, {"c.cls", text("2")}}));
  {
    ShardDataset ds({t / "s/train-0.tar"}, t / "s", "");
    EXPECT_EQ(ds.index_stats().built, 1u);
    ASSERT_EQ(ds.size(), 1u);
    EXPECT_EQ(ds.label(0), 2);
  }
  // same size, new mtime only: rebuilt too
  const auto idx_mtime = mtime_of(index_path_beside(t / "s/train-0.tar"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write_bytes(t / "s/train-0.tar", read_bytes(t / "s/train-0.tar"));
  {
    ShardDataset ds({t / "s/train-0.tar"}, t / "s", "");
    EXPECT_EQ(ds.index_stats().built, 1u);
  }
  EXPECT_NE(mtime_of(index_path_beside(t / "s/train-0.tar")), idx_mtime);
  // a damaged cache file is never trusted: rebuilt
  auto idx = read_bytes(index_path_beside(t / "s/train-0.tar"));
  idx[idx.size() / 2] ^= 1;
  write_bytes(index_path_beside(t / "s/train-0.tar"), idx);
  {
    ShardDataset ds({t / "s/train-0.tar"}, t / "s", "");
    EXPECT_EQ(ds.index_stats().built, 1u);
    EXPECT_EQ(ds.label(0), 2);
  }
}

// A folder nobody may write into: without write permission, or (for root, whom permissions do not stop) marked
// immutable with chattr; the flag is cleared again when the guard goes.
struct ReadOnlyDir {
  std::string dir;
  bool immutable = false;
  explicit ReadOnlyDir(const std::string& d) : dir(d) {
    if (geteuid() == 0) {
      immutable = std::system(("chattr +i '" + dir + "' 2>/dev/null").c_str()) == 0;
    } else {
      fs::permissions(dir, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                      fs::perm_options::remove);
    }
  }
  bool ok() const { return geteuid() != 0 || immutable; }
  ~ReadOnlyDir() {
    if (immutable) (void)std::system(("chattr -i '" + dir + "'").c_str());
  }
};

TEST(ShardIndex, ReadOnlyFolderFallsBackToTheRunFolderThenMemory) {
  TempDir t;
  write_bytes(t / "ro/train-0.tar", tar_of({{"a.jpg", jpeg_bytes(16, 16, 1)}, {"a.cls", text("0")}}));
  ReadOnlyDir ro(t / "ro");
  if (!ro.ok()) GTEST_SKIP() << "running as root and chattr +i is not available: no read-only folder";
  {
    ShardDataset ds({t / "ro/train-0.tar"}, t / "ro", t / "run");
    EXPECT_EQ(ds.index_stats().saved_fallback, 1u);
    EXPECT_NE(ds.description().find("saved under"), std::string::npos) << ds.description();
  }
  EXPECT_TRUE(fs::exists(index_path_fallback(t / "ro/train-0.tar", t / "run")));
  EXPECT_FALSE(fs::exists(index_path_beside(t / "ro/train-0.tar")));
  {
    ShardDataset ds({t / "ro/train-0.tar"}, t / "ro", t / "run");
    EXPECT_EQ(ds.index_stats().reused, 1u);
  }
  {
    ShardDataset ds({t / "ro/train-0.tar"}, t / "ro", "");  // nowhere to write: in memory, still works
    EXPECT_EQ(ds.index_stats().memory_only, 1u);
    EXPECT_EQ(ds.load(0).w, 16);
  }
}

// --------------------------------------------------------------------------------- shards from a folder

TEST(ShardWriter, ShardsReadBackAsTheFolder) {
  TempDir t;
  make_folder(t / "img/train");
  auto folder = open_dataset(t / "img", "train");
  ShardWriteConfig cfg;
  cfg.out_dir = t / "shards";
  cfg.max_count = 5;  // 12 images → 3 shards
  cfg.seed = 7;
  const ShardWriteResult r = write_shards(dynamic_cast<const FolderDataset&>(*folder), cfg);
  ASSERT_EQ(r.shards.size(), 3u);
  EXPECT_EQ(r.samples, 12u);
  EXPECT_EQ(r.pattern, t / "shards/train-{000000..000002}.tar");
  for (const auto& s : r.shards) EXPECT_TRUE(fs::exists(index_path_beside(s))) << s;
  // shuffled: the first shard does not hold folder items 0..4 in order
  const auto first = scan(r.shards[0]);
  EXPECT_NE(first[0].name.substr(0, 6), "000000");

  for (const std::string& path : {t / "shards", r.pattern, t / "shards/train-*.tar"}) {
    auto sh = open_dataset(path, "train");
    ASSERT_EQ(sh->name(), "shards") << path;
    const auto* sd = dynamic_cast<const ShardDataset*>(sh.get());
    EXPECT_EQ(sd->index_stats().built, 0u) << "write_shards saved every index";
    ASSERT_EQ(sh->size(), folder->size());
    EXPECT_EQ(sh->num_classes(), 3);
    EXPECT_EQ(sh->class_names(), folder->class_names());
    std::vector<uint8_t> a, b;
    for (size_t i = 0; i < sh->size(); i++) {
      EXPECT_EQ(sh->label(int(i)), folder->label(i));
      ASSERT_TRUE(sh->load_encoded(i, a) && folder->load_encoded(i, b));
      EXPECT_EQ(a, b) << "item " << i << ": " << sh->item_name(i) << " vs " << folder->item_name(i);
    }
  }
  // equal loader batches (exact decode, 2 workers): what makes pretraining bit-identical
  auto sh = open_dataset(t / "shards", "train");
  LoaderConfig lc;
  lc.batch_size = 4, lc.num_workers = 2, lc.seed = 3;
  lc.transform.size = 24;
  lc.transform.norm = imagenet_normalization();
  for (DecodeMode mode : {DecodeMode::exact, DecodeMode::fast}) {
    lc.decode = mode;
    Loader lf(*folder, lc), ls(*sh, lc);
    for (int epoch = 0; epoch < 2; epoch++) {
      lf.start_epoch(epoch), ls.start_epoch(epoch);
      while (const Batch* bf = lf.next()) {
        const Batch* bs = ls.next();
        ASSERT_TRUE(bs);
        EXPECT_EQ(bf->indices, bs->indices);
        EXPECT_EQ(bf->labels, bs->labels);
        EXPECT_EQ(bf->images, bs->images);
      }
      EXPECT_EQ(ls.next(), nullptr);
    }
  }
  // a second write into the same folder is refused; --overwrite replaces (and drops the stale 3rd shard)
  expect_error([&] { write_shards(dynamic_cast<const FolderDataset&>(*folder), cfg); }, {"already holds", "--overwrite"});
  cfg.overwrite = true, cfg.max_count = 6;
  EXPECT_EQ(write_shards(dynamic_cast<const FolderDataset&>(*folder), cfg).shards.size(), 2u);
  EXPECT_FALSE(fs::exists(t / "shards/train-000002.tar"));
  EXPECT_EQ(open_dataset(t / "shards", "train")->size(), 12u);
}

TEST(ShardWriter, MaxSizeSplitsAndTrainValFolders) {
  TempDir t;
  make_folder(t / "img/train");
  make_folder(t / "img/val");
  for (const char* split : {"train", "val"}) {
    auto folder = open_dataset(t / "img", split);
    ShardWriteConfig cfg;
    cfg.out_dir = t / "out";
    cfg.prefix = split;
    cfg.max_size = 4096;  // about two samples of ~1 KB JPEG each
    const auto r = write_shards(dynamic_cast<const FolderDataset&>(*folder), cfg);
    EXPECT_GT(r.shards.size(), 3u);
    for (const auto& s : r.shards) {
      const auto m = scan(s);
      EXPECT_TRUE(fs::file_size(s) <= 4096 || m.size() == 2) << s;  // a lone large sample may exceed it
    }
  }
  EXPECT_EQ(open_dataset(t / "out", "train")->size(), 12u);
  EXPECT_EQ(open_dataset(t / "out", "val")->item_name(0).find(t / "out/val-"), 0u);
}

// ---------------------------------------------------------------------------------------------- bad input

TEST(ShardDataset, BadInputNamesShardAndMember) {
  TempDir t;
  const auto jpg = jpeg_bytes(16, 16, 0);
  auto open1 = [&](const std::string& name, const Members& m) {
    write_bytes(t / name, tar_of(m));
    return [&, name] { ShardDataset ds({t / name}, t.path.string(), ""); };
  };
  expect_error(open1("noimg.tar", {{"a.jpg", jpg}, {"a.cls", text("0")}, {"b.cls", text("1")}, {"b.txt", text("x")}}),
               {t / "noimg.tar", "sample b has no image member", "b.cls"});
  expect_error(open1("nan.tar", {{"a.jpg", jpg}, {"a.cls", text("cat")}}), {t / "nan.tar", "a.cls", "'cat' is not an integer"});
  expect_error(open1("float.tar", {{"a.jpg", jpg}, {"a.cls", text("1.5")}}), {t / "float.tar", "a.cls", "not an integer"});
  expect_error(open1("neg.tar", {{"a.jpg", jpg}, {"a.cls", text("-3")}}), {t / "neg.tar", "a.cls", "-3 is out of range"});
  expect_error(open1("big.tar", {{"a.jpg", jpg}, {"a.cls", text("99999999999999999999")}}),
               {t / "big.tar", "a.cls", "out of range"});
  expect_error(open1("json.tar", {{"a.jpg", jpg}, {"a.json", text("{\"label\": \"x\"}")}}), {t / "json.tar", "a.json", "integer"});
  expect_error(open1("mixed.tar", {{"a.jpg", jpg}, {"a.cls", text("0")}, {"b.jpg", jpg}}),
               {t / "mixed.tar", "sample b has no label"});
  // json labels, and shards without any label member: one class
  write_bytes(t / "ok/j.tar", tar_of({{"a.jpg", jpg}, {"a.json", text("{\"label\": 4}")}, {"b.jpg", jpg}, {"b.json", text("2")}}));
  ShardDataset js({t / "ok/j.tar"}, t / "ok", "");
  EXPECT_EQ(js.label(0), 4);
  EXPECT_EQ(js.label(1), 2);
  write_bytes(t / "ok2/u.tar", tar_of({{"a.jpg", jpg}, {"b.png", jpg}}));
  ShardDataset un({t / "ok2/u.tar"}, t / "ok2", "");
  EXPECT_EQ(un.num_classes(), 1);
  EXPECT_NE(un.description().find("unlabelled"), std::string::npos);
  // a truncated shard through open_dataset
  auto full = tar_of({{"a.jpg", jpg}, {"a.cls", text("0")}});
  write_bytes(t / "tr/train-0.tar", std::vector<uint8_t>(full.begin(), full.begin() + 600));
  expect_error([&] { open_dataset(t / "tr", "train"); }, {t / "tr/train-0.tar", "truncated", "a.jpg"});
}

TEST(ShardDataset, JpegWhoseHeaderLiesIsRefusedNamingTheMember) {
  TempDir t;
  auto jpg = jpeg_bytes(48, 32, 0);
  for (size_t i = 0; i + 8 < jpg.size(); i++)  // SOF0: FF C0 len(2) precision(1) height(2) width(2)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = 0x01, jpg[i + 6] = 0x00;  // height 32 → 256
      break;
    }
  write_bytes(t / "s/train-0.tar", tar_of({{"liar.jpg", jpg}, {"liar.cls", text("0")}}));
  ShardDataset ds({t / "s/train-0.tar"}, t / "s", "");
  expect_error([&] { ds.load(0); }, {t / "s/train-0.tar:liar.jpg", "ends before the 48×256 pixels its header announces"});
  LoaderConfig lc;
  lc.batch_size = 1, lc.num_workers = 0, lc.transform.size = 8, lc.decode = DecodeMode::fast;
  Loader L(ds, lc);
  for (int epoch = 0; epoch < 4; epoch++) {  // whatever the crop, the fast path refuses it too
    L.start_epoch(epoch);
    expect_error([&] { L.next(); }, {"liar.jpg", "header announces"});
  }
}
