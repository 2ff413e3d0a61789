#include "data/dataset.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <sys/stat.h>
#include <zlib.h>

#include "core/error.h"
#include "core/limits.h"
#include "data/decode.h"
#include "data/shard_dataset.h"
#include "data/shard_paths.h"

namespace fs = std::filesystem;

namespace mae {

Normalization imagenet_normalization() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

Normalization normalization_for_channels(const Normalization& n, int channels) {
  int have = int(n.mean.size());
  if (have == channels) return n;
  if (have == 1) return {std::vector<float>(channels, n.mean[0]), std::vector<float>(channels, n.std[0])};
  if (have == 3 && channels == 1) {
    const double wt[3] = {0.299, 0.587, 0.114};  // PIL's convert('L') weights
    double m = 0, s = 0;
    for (int c = 0; c < 3; c++) m += wt[c] * n.mean[c], s += wt[c] * n.std[c];
    return {{float(m)}, {float(s)}};
  }
  fail("normalisation for ", have, " channels cannot be adapted to ", channels, " channels");
}

const char* default_data_path() { return "/usr/share/datasets/fashion-mnist"; }

// ------------------------------------------------------------------------------------------------------------ IDX

std::vector<uint8_t> read_idx_file(const std::string& path, int ndim, std::vector<int>& dims) {
  // gzread reads plain files unchanged, so one path serves .gz and raw IDX files.
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail("IDX file ", path, ": cannot open: ", std::strerror(errno));
  auto read = [&](void* dst, size_t n) -> size_t {
    size_t got = 0;
    while (got < n) {
      unsigned chunk = unsigned(std::min<size_t>(n - got, 1u << 30));
      int r = gzread(f, static_cast<uint8_t*>(dst) + got, chunk);
      if (r <= 0) break;
      got += size_t(r);
    }
    return got;
  };
  auto bail = [&](const std::string& why) {
    int err = 0;
    const char* zmsg = gzerror(f, &err);
    std::string z = err != Z_OK && err != Z_STREAM_END ? std::string(" (zlib: ") + zmsg + ")" : "";
    gzclose(f);
    fail("IDX file ", path, ": ", why, z);
  };
  uint8_t head[4];
  if (read(head, 4) != 4) bail("too short for an IDX header");
  if (head[0] != 0 || head[1] != 0) bail("not an IDX file (bad magic bytes)");
  if (head[2] != 0x08) bail("element type 0x" + std::to_string(head[2]) + " is not unsigned byte (0x08)");
  if (head[3] != ndim)
    bail("has " + std::to_string(head[3]) + " dimensions, expected " + std::to_string(ndim));
  dims.assign(ndim, 0);
  uint64_t total = 1;  // checked against the budget at every factor: 16 × 2^30 × 2^30 must not wrap to 0
  for (int d = 0; d < ndim; d++) {
    uint8_t b[4];
    if (read(b, 4) != 4) bail("truncated header");
    uint32_t v = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    if (v == 0 || v > (1u << 30)) bail("dimension " + std::to_string(d) + " is " + std::to_string(v));
    dims[d] = int(v);
    if (total > limits::kDatasetBytes / v)
      bail("the header's dimensions ask for more than the limit of " + std::to_string(limits::kDatasetBytes) +
           " bytes");
    total *= v;
  }
  // Grown as the data arrives, not allocated from the header's word: a 16-byte file claiming 64 GiB costs nothing.
  std::vector<uint8_t> data;
  size_t got = 0;
  while (got < total) {
    // 1 MiB, then doubling: a header's word costs at most twice what the file really holds.
    const size_t want = size_t(std::min<uint64_t>(total - got, std::max<uint64_t>(got, uint64_t(1) << 20)));
    data.resize(got + want);
    const size_t r = read(data.data() + got, want);
    got += r;
    if (r < want) break;
  }
  if (got != total)
    bail("truncated: " + std::to_string(got) + " of " + std::to_string(total) + " data bytes present");
  uint8_t extra;
  if (read(&extra, 1) != 0) bail("has bytes after the " + std::to_string(total) + " the header announces");
  int err = 0;
  gzerror(f, &err);
  if (err != Z_OK && err != Z_STREAM_END) bail("read error");
  gzclose(f);
  return data;
}

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path,
                       const std::string& train_images_path)
    : images_path_(images_path), labels_path_(labels_path), train_images_path_(train_images_path) {
  std::vector<int> idims, ldims;
  pixels_ = read_idx_file(images_path, 3, idims);
  labels_ = read_idx_file(labels_path, 1, ldims);
  if (idims[0] != ldims[0])
    fail("IDX files ", images_path, " and ", labels_path, " disagree: ", idims[0], " images but ", ldims[0],
         " labels");
  h_ = idims[1], w_ = idims[2];
  num_classes_ = 1 + *std::max_element(labels_.begin(), labels_.end());
}

void IdxDataset::load(size_t i, Image& out) const {
  out.resize(w_, h_, 1);
  size_t n = size_t(w_) * h_;
  std::copy_n(pixels_.data() + i * n, n, out.px.data());
}

std::string IdxDataset::description() const {
  return detail::cat("IDX ", images_path_, ": ", size(), " images ", w_, "x", h_, " grey, ", num_classes_,
                     " classes");
}

std::string IdxDataset::item_name(size_t i) const { return detail::cat(images_path_, " #", i); }

std::vector<std::string> IdxDataset::class_names() const {
  std::string lower = images_path_;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (num_classes_ == 10 && lower.find("fashion") != std::string::npos)
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  std::vector<std::string> names;
  for (int c = 0; c < num_classes_; c++) names.push_back(std::to_string(c));
  return names;
}

Normalization IdxDataset::normalization() const {
  // Measured once on the train images (the convention: test data is normalised with train statistics).
  std::call_once(norm_once_, [&] {
    std::vector<uint8_t> other;
    const std::vector<uint8_t>* px = &pixels_;
    if (!train_images_path_.empty() && train_images_path_ != images_path_) {
      std::vector<int> dims;
      other = read_idx_file(train_images_path_, 3, dims);
      px = &other;
    }
    uint64_t s = 0, ss = 0;
    for (uint8_t v : *px) s += v, ss += uint64_t(v) * v;
    double n = double(px->size());
    double mean = double(s) / n, var = double(ss) / n - mean * mean;
    norm_.mean = {float(mean / 255.0)};
    norm_.std = {float(std::sqrt(std::max(var, 0.0)) / 255.0)};
  });
  return norm_;
}

// ---------------------------------------------------------------------------------------------------------- CIFAR

CifarDataset::CifarDataset(const std::vector<std::string>& files, const std::string& meta_path) : files_(files) {
  for (const auto& path : files) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) fail("CIFAR file ", path, ": not a regular file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail("CIFAR file ", path, ": cannot open: ", std::strerror(errno));
    std::fseek(f, 0, SEEK_END);
    long len = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    if (len <= 0 || size_t(len) % kRecord != 0) {
      std::fclose(f);
      fail("CIFAR file ", path, ": ", len, " bytes is not a whole number of ", kRecord,
           "-byte records (truncated, or not CIFAR-10 binary)");
    }
    if (uint64_t(records_.size()) + uint64_t(len) > limits::kDatasetBytes) {
      std::fclose(f);
      fail("CIFAR file ", path, ": the batches hold more than the limit of ", limits::kDatasetBytes, " bytes");
    }
    size_t at = records_.size();
    file_start_.push_back(at / kRecord);
    records_.resize(at + size_t(len));
    size_t got = std::fread(records_.data() + at, 1, size_t(len), f);
    std::fclose(f);
    if (got != size_t(len)) fail("CIFAR file ", path, ": read error");
    for (size_t r = at; r < records_.size(); r += kRecord)
      if (records_[r] >= 10)
        fail("CIFAR file ", path, ": record ", (r - at) / kRecord, " has label ", int(records_[r]),
             " (CIFAR-10 labels are 0..9)");
  }
  n_ = records_.size() / kRecord;
  if (!meta_path.empty()) {
    if (std::FILE* f = std::fopen(meta_path.c_str(), "r")) {
      char line[256];
      while (std::fgets(line, sizeof line, f)) {
        std::string s(line);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
        if (!s.empty()) classes_.push_back(s);
      }
      std::fclose(f);
    }
  }
  if (classes_.size() != 10)
    classes_ = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

void CifarDataset::load(size_t i, Image& out) const {
  out.resize(32, 32, 3);
  const uint8_t* rec = records_.data() + i * kRecord + 1;  // (3, 32, 32)
  uint8_t* dst = out.px.data();                               // (32, 32, 3)
  for (int p = 0; p < 1024; p++)
    for (int c = 0; c < 3; c++) dst[p * 3 + c] = rec[c * 1024 + p];
}

std::string CifarDataset::description() const {
  std::string names;
  for (const auto& f : files_) names += (names.empty() ? "" : ", ") + fs::path(f).filename().string();
  return detail::cat("CIFAR-10 ", fs::path(files_[0]).parent_path().string(), " (", names, "): ", n_,
                     " images 32x32 RGB, 10 classes");
}

std::string CifarDataset::item_name(size_t i) const {
  size_t f = size_t(std::upper_bound(file_start_.begin(), file_start_.end(), i) - file_start_.begin()) - 1;
  return detail::cat(files_[f], " record ", i - file_start_[f]);
}

// --------------------------------------------------------------------------------------------------------- folder

namespace {

bool hidden(const fs::path& p) {
  std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

bool image_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);  // follows symlinks
}

bool is_regular(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows symlinks: a link to a file is fine, to /dev/zero is not
}

// A folder's identity, links resolved: (device, inode).
std::pair<uint64_t, uint64_t> dir_id(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {0, 0};
  return {uint64_t(st.st_dev), uint64_t(st.st_ino)};
}

}  // namespace

FolderDataset::FolderDataset(const std::string& root) : root_(root) {
  std::error_code ec;
  std::vector<std::string> top_files;
  for (const auto& e : fs::directory_iterator(root, fs::directory_options::skip_permission_denied, ec)) {
    if (hidden(e.path())) continue;
    if (is_dir(e.path()))
      classes_.push_back(e.path().filename().string());
    else
      top_files.push_back(e.path().filename().string());
  }
  if (ec) fail("data folder ", root, ": cannot list: ", ec.message());
  std::sort(classes_.begin(), classes_.end());
  std::sort(top_files.begin(), top_files.end());

  auto add = [&](const std::string& rel, int label) {
    names_ += rel;
    name_end_.push_back(names_.size());
    labels_.push_back(label);
  };
  if (classes_.empty()) {  // flat: one class named after the folder
    flat_ = true;
    fs::path r = fs::path(root).lexically_normal();
    classes_.push_back(r.filename().empty() ? r.parent_path().filename().string() : r.filename().string());
    for (const auto& f : top_files) {
      if (!image_extension(f))
        skipped_++;
      else if (!is_regular(fs::path(root) / f))
        special_++;
      else
        add(f, 0);
    }
  } else {
    skipped_ += top_files.size();  // ImageFolder ignores files beside the class folders too
    for (int label = 0; label < int(classes_.size()); label++) {
      // torchvision: for root, _, fnames in sorted(os.walk(class_dir, followlinks=True)): for f in sorted(fnames)
      std::vector<std::pair<std::string, std::string>> found;  // (dir relative to root, file name)
      fs::path cdir = fs::path(root) / classes_[label];
      auto opts = fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
      std::vector<std::pair<uint64_t, uint64_t>> chain{dir_id(cdir)};  // the current folder's ancestors
      for (auto it = fs::recursive_directory_iterator(cdir, opts, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        const fs::path& p = it->path();
        if (hidden(p)) {
          if (is_dir(p)) it.disable_recursion_pending();
          continue;
        }
        if (is_dir(p)) {  // a link back to an ancestor would repeat the images until the path is too long
          chain.resize(size_t(it.depth()) + 1);
          const auto id = dir_id(p);
          if (std::find(chain.begin(), chain.end(), id) != chain.end()) {
            it.disable_recursion_pending();
            cycles_++;
          } else {
            chain.push_back(id);
          }
          continue;
        }
        if (!image_extension(p)) {
          skipped_++;
          continue;
        }
        if (!is_regular(p)) {
          special_++;
          continue;
        }
        found.emplace_back(p.parent_path().lexically_relative(root).string(), p.filename().string());
      }
      if (ec) fail("data folder ", cdir.string(), ": cannot list: ", ec.message());
      std::sort(found.begin(), found.end());
      for (const auto& [dir, file] : found) add(dir + "/" + file, label);
    }
  }
  if (special_ || cycles_)
    std::fprintf(stderr, "warning: data folder %s: %zu image names that are not regular files skipped, %zu folder "
                 "links back to their own ancestors not followed\n", root.c_str(), special_, cycles_);
  if (labels_.empty())
    fail("data folder ", root, ": no JPEG or PNG images found (", skipped_, " other files skipped)");
}

std::string FolderDataset::path(size_t i) const {
  size_t begin = i == 0 ? 0 : name_end_[i - 1];
  return (fs::path(root_) / names_.substr(begin, name_end_[i] - begin)).string();
}

void FolderDataset::load(size_t i, Image& out) const { decode_image(path(i), out); }

bool FolderDataset::load_encoded(size_t i, std::vector<uint8_t>& bytes) const {
  read_image_file(path(i), bytes);
  return true;
}

std::string FolderDataset::description() const {
  std::string s = detail::cat("image folder ", root_, ": ", size(), " images, ");
  if (flat_)
    s += "flat (one class, label 0)";
  else
    s += detail::cat(classes_.size(), " classes (subfolders)");
  if (skipped_) s += detail::cat(", ", skipped_, " files without a .jpg/.jpeg/.png extension skipped");
  return s;
}

// ---------------------------------------------------------------------------------------------------- detection

namespace {

bool contains(const std::string& s, const char* t) { return s.find(t) != std::string::npos; }
bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

std::unique_ptr<Dataset> open_idx(const fs::path& dir, const std::vector<std::string>& files, bool train) {
  // Names as published: train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte, ... (also "-train-"/"-test-" forms).
  auto is_split = [](const std::string& f, bool tr) {
    return tr ? contains(f, "train") : (contains(f, "t10k") || contains(f, "test"));
  };
  auto pick = [&](bool tr, const char* kind) -> std::string {
    std::vector<std::string> hits;
    for (const auto& f : files)
      if (is_split(f, tr) && contains(f, kind)) hits.push_back(f);
    if (hits.size() > 1) {
      // Same data plain and gzipped: prefer the plain file (faster to read).
      std::sort(hits.begin(), hits.end());
      if (hits.size() == 2 && hits[1] == hits[0] + ".gz") return (dir / hits[0]).string();
      std::string list;
      for (const auto& h : hits) list += " " + h;
      fail("data folder ", dir.string(), ": several IDX ", tr ? "train" : "test", " ", kind, " files:", list);
    }
    return hits.empty() ? std::string() : (dir / hits[0]).string();
  };
  std::string images = pick(train, "idx3"), labels = pick(train, "idx1");
  if (images.empty() || labels.empty())
    fail("data folder ", dir.string(), ": IDX files found but no ", train ? "train" : "test (t10k)", " ",
         images.empty() ? "images (*idx3-ubyte)" : "labels (*idx1-ubyte)", " file");
  std::string train_images = train ? images : pick(true, "idx3");
  return std::make_unique<IdxDataset>(images, labels, train_images);
}

std::unique_ptr<Dataset> open_cifar(const fs::path& dir, bool train) {
  std::vector<std::string> files;
  if (train) {
    for (int b = 1; b <= 5; b++) {
      fs::path p = dir / ("data_batch_" + std::to_string(b) + ".bin");
      if (fs::exists(p)) files.push_back(p.string());
    }
  } else if (fs::exists(dir / "test_batch.bin")) {
    files.push_back((dir / "test_batch.bin").string());
  }
  if (files.empty())
    fail("data folder ", dir.string(), ": CIFAR-10 files found but no ",
         train ? "data_batch_{1..5}.bin" : "test_batch.bin");
  fs::path meta = dir / "batches.meta.txt";
  return std::make_unique<CifarDataset>(files, fs::exists(meta) ? meta.string() : "");
}

// The tar shards of a folder for this split; nullptr when it holds no .tar file.
std::unique_ptr<Dataset> open_shards(const fs::path& dir, bool train, const DataOptions& opt) {
  auto shards = shards_in_folder(dir.string(), train);
  if (shards.empty()) return nullptr;
  return std::make_unique<ShardDataset>(shards, dir.string(), opt.index_dir);
}

}  // namespace

std::unique_ptr<Dataset> open_dataset(const std::string& path_in, const std::string& split, const DataOptions& opt) {
  bool train;
  if (split == "train")
    train = true;
  else if (split == "val" || split == "test")
    train = false;
  else
    fail("unknown data split '", split, "' (use train, val or test)");
  std::string path = path_in.empty() ? default_data_path() : path_in;
  std::error_code ec;
  if (is_shard_pattern(path) && !fs::exists(path, ec))
    return std::make_unique<ShardDataset>(resolve_shard_pattern(path), path, opt.index_dir);
  if (!fs::exists(path, ec)) {
    if (path_in.empty())
      fail("data path ", path, " (the Fashion-MNIST default) does not exist: install the Debian package "
           "dataset-fashion-mnist or give a data path");
    fail("data path ", path, " does not exist");
  }
  if (!is_dir(path) && fs::path(path).extension() == ".tar" && is_regular(path))
    return std::make_unique<ShardDataset>(std::vector<std::string>{path}, path, opt.index_dir);
  if (!is_dir(path))
    fail("data path ", path, " is not a directory (give the folder that holds the data, a .tar shard or a shard "
         "pattern)");

  fs::path dir(path);
  if (is_dir(dir / "cifar-10-batches-bin")) dir /= "cifar-10-batches-bin";  // the CIFAR tarball's own folder
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec))
    if (!is_dir(e.path())) files.push_back(e.path().filename().string());
  if (ec) fail("data path ", dir.string(), ": cannot list: ", ec.message());
  std::sort(files.begin(), files.end());

  for (const auto& f : files)
    if (ends_with(f, "-ubyte") || ends_with(f, "-ubyte.gz")) return open_idx(dir, files, train);
  for (const auto& f : files)
    if ((f.rfind("data_batch_", 0) == 0 && ends_with(f, ".bin")) || f == "test_batch.bin")
      return open_cifar(dir, train);

  if (auto shards = open_shards(dir, train, opt)) return shards;
  bool has_train = is_dir(dir / "train"), has_val = is_dir(dir / "val"), has_test = is_dir(dir / "test");
  if (has_train || has_val || has_test) {
    fs::path sub;
    if (train)
      sub = has_train ? dir / "train" : fs::path();
    else
      sub = has_val ? dir / "val" : has_test ? dir / "test" : fs::path();
    if (sub.empty())
      fail("data path ", dir.string(), " has ", has_train ? "train/" : "val/ or test/", " but no ",
           train ? "train/" : "val/ or test/", " folder for split '", split, "'");
    if (auto shards = open_shards(sub, train, opt)) return shards;
    return std::make_unique<FolderDataset>(sub.string());
  }
  // A class or flat folder without splits serves every split (the same images).
  return std::make_unique<FolderDataset>(dir.string());
}

}  // namespace mae
