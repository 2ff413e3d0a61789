// Datasets: an indexable, read-only collection of labelled 8-bit images. The kinds users bring (docs/architecture.md
// §5): MNIST-style IDX files (plain or gzipped), CIFAR-10 binary batches, image folders (ImageNet-style class
// subfolders, or a flat folder = one class), and tar shards in the WebDataset layout (data/shard_dataset.h).
// open_dataset() picks the kind from what is at the path.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/image.h"

namespace mae {

// Per-channel normalisation constants, in [0, 1] pixel units (torchvision's Normalize after ToTensor).
struct Normalization {
  std::vector<float> mean, std;
};
Normalization imagenet_normalization();  // mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
// A dataset's constants adapted to a model with `channels` channels: grey stats repeated for RGB, RGB stats folded
// to one channel with PIL's luma weights (an approximation for the std) for a grey model.
Normalization normalization_for_channels(const Normalization& n, int channels);

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual int num_classes() const = 0;
  virtual int label(size_t i) const = 0;
  // Channels of the data: 1 for IDX, 3 for CIFAR and folders (the official ImageFolder reads with convert('RGB')).
  // load() of a folder may still return a grey picture (c = 1): the transform converts to the model's channels,
  // which is exact for grey → RGB and back.
  virtual int channels() const = 0;
  // Fixed image size, or 0 when images vary (folders).
  virtual int height() const { return 0; }
  virtual int width() const { return 0; }
  // Decodes image i into out (reusing its buffer). Thread-safe; throws mae::Error naming the file on failure.
  virtual void load(size_t i, Image& out) const = 0;
  // The encoded file of image i (JPEG/PNG bytes as stored), for decoders that read only part of a picture
  // (--decode fast). false where the dataset holds no encoded files (IDX, CIFAR): then use load().
  virtual bool load_encoded(size_t i, std::vector<uint8_t>& bytes) const { return false; }
  Image load(size_t i) const {
    Image img;
    load(i, img);
    return img;
  }
  virtual std::string name() const = 0;         // kind: "idx", "cifar10", "folder", "shards"
  virtual std::string description() const = 0;  // one line for logs: where, how many, what size, classes
  virtual std::string item_name(size_t i) const = 0;  // file (and record) of item i, for messages
  virtual std::vector<std::string> class_names() const = 0;
  // Normalisation for this data: measured on the train split for IDX (grey), ImageNet's otherwise.
  virtual Normalization normalization() const { return imagenet_normalization(); }
};

// Fashion-MNIST from the Debian package dataset-fashion-mnist: the default when no data path is given.
const char* default_data_path();

// How a dataset is opened beyond its path.
struct DataOptions {
  // Where tar shard indexes are cached when the shards' folder is not writable (the run's output folder); "" =
  // keep them in memory (data/shard_index.h).
  std::string index_dir;
};

// split: "train", or "val"/"test" (synonyms: whichever exists). Detection, in order:
//   ""                                   → default_data_path()
//   a pattern (braces or * ? [) or a .tar file → tar shards (data/shard_paths.h), the same for every split
//   a directory with *-ubyte[.gz] files   → IDX: train-images/labels for "train", t10k-* otherwise
//   a directory with data_batch_*.bin / test_batch.bin (or its cifar-10-batches-bin/ subfolder) → CIFAR-10
//   a directory with *.tar files         → tar shards: train*.tar for "train", val*.tar (else test*.tar) otherwise;
//                                          all of them for every split when no name starts with train/val/test
//   a directory with train/ or val/ (test/) subfolders → the same detection (shards, else a folder) on <path>/<split>
//   any other directory                   → a folder dataset: class subfolders, or a flat folder of images
// A missing, non-directory or empty path throws mae::Error naming it.
std::unique_ptr<Dataset> open_dataset(const std::string& path, const std::string& split, const DataOptions& opt = {});

// ------------------------------------------------------------------------------------------------- implementations

// IDX (LeCun's format): images u8 (n, h, w), labels u8 (n). Both files are read into memory (Fashion-MNIST train:
// 47 MB); gzip is recognised by its magic bytes. normalization() measures the train images of the same folder
// once (population mean/std of pixel/255), falling back to this split's images when there is no train file.
class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path, const std::string& train_images_path);
  size_t size() const override { return labels_.size(); }
  int num_classes() const override { return num_classes_; }
  int label(size_t i) const override { return labels_[i]; }
  int channels() const override { return 1; }
  int height() const override { return h_; }
  int width() const override { return w_; }
  void load(size_t i, Image& out) const override;
  using Dataset::load;
  std::string name() const override { return "idx"; }
  std::string description() const override;
  std::string item_name(size_t i) const override;
  std::vector<std::string> class_names() const override;
  Normalization normalization() const override;

 private:
  std::string images_path_, labels_path_, train_images_path_;
  int h_ = 0, w_ = 0, num_classes_ = 0;
  std::vector<uint8_t> pixels_;  // (n, h, w)
  std::vector<uint8_t> labels_;
  mutable std::once_flag norm_once_;
  mutable Normalization norm_;
};

// Reads a whole IDX file (plain or gzip) and checks its header: magic 0x0800 | ndim with unsigned bytes, the
// expected rank, and a length that matches the dims exactly. dims receives the sizes.
std::vector<uint8_t> read_idx_file(const std::string& path, int ndim, std::vector<int>& dims);

// CIFAR-10 binary: records of 1 label byte + 3072 pixel bytes (3, 32, 32). Train = data_batch_1..5.bin (the ones
// present, in order), test = test_batch.bin. Held in memory (the train split: 154 MB).
class CifarDataset : public Dataset {
 public:
  CifarDataset(const std::vector<std::string>& files, const std::string& meta_path);
  size_t size() const override { return n_; }
  int num_classes() const override { return 10; }
  int label(size_t i) const override { return records_[i * kRecord]; }
  int channels() const override { return 3; }
  int height() const override { return 32; }
  int width() const override { return 32; }
  void load(size_t i, Image& out) const override;
  using Dataset::load;
  std::string name() const override { return "cifar10"; }
  std::string description() const override;
  std::string item_name(size_t i) const override;
  std::vector<std::string> class_names() const override { return classes_; }

  static constexpr size_t kRecord = 1 + 3 * 32 * 32;

 private:
  std::vector<std::string> files_;
  std::vector<size_t> file_start_;  // first record of each file
  std::vector<uint8_t> records_;
  std::vector<std::string> classes_;
  size_t n_ = 0;
};

// Image folder. Class mode (root has subfolders): class = subfolder name, sorted by bytes; files are found
// recursively inside each class and ordered as torchvision's ImageFolder does (by directory path, then file name),
// so index i names the same picture as there. Flat mode (no subfolders): every image, one class, label 0.
// Only .jpg/.jpeg/.png (any case) are read; other files are skipped and counted in the description. Hidden
// entries (".name") are skipped (torchvision would make a class of .ipynb_checkpoints).
class FolderDataset : public Dataset {
 public:
  explicit FolderDataset(const std::string& root);
  size_t size() const override { return labels_.size(); }
  int num_classes() const override { return int(classes_.size()); }
  int label(size_t i) const override { return labels_[i]; }
  int channels() const override { return 3; }
  void load(size_t i, Image& out) const override;
  using Dataset::load;
  bool load_encoded(size_t i, std::vector<uint8_t>& bytes) const override;
  std::string name() const override { return "folder"; }
  std::string description() const override;
  std::string item_name(size_t i) const override { return path(i); }
  std::vector<std::string> class_names() const override { return classes_; }
  std::string path(size_t i) const;

 private:
  std::string root_;
  bool flat_ = false;
  std::vector<std::string> classes_;
  // Relative paths packed in one buffer: 1.28M ImageNet names cost ~45 MB this way instead of ~130 MB as strings.
  std::string names_;
  std::vector<size_t> name_end_;
  std::vector<int> labels_;
  size_t skipped_ = 0;   // files without an image extension
  size_t special_ = 0;   // image names that are not regular files (pipes, devices, sockets, dangling links)
  size_t cycles_ = 0;    // folder links back to one of their own ancestors, not followed
};

}  // namespace mae
