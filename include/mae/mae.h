// mae as a library: load a model that mae trained (or any checkpoint mae reads), then embed, reconstruct and
// classify images given as pixels or as encoded JPEG/PNG bytes. This is what `mae serve` and `mae classify` run.
//
//   #include <mae/mae.h>
//   auto model = mae::api::Model::load("runs/demo/checkpoint-last.safetensors");
//   mae::api::Pixels img = mae::api::decode_image(bytes.data(), bytes.size());
//   std::vector<float> f = model->embed({img})[0];           // the cls token of the encoder's output
//
// Build against the installed library with `pkg-config --cflags --libs mae` (C++20).
//
// Threads: every method of Model may be called from many threads at once. Calls are queued to one compute thread
// that owns the network; calls waiting at the same time with the same kind of work (embedding, classifying, or
// reconstructing at the same number of kept patches) run together in one forward of up to max_batch images. The
// preprocessing (decoding, resizing) runs on the caller's thread.
//
// Errors: every failure throws mae::api::Error, whose kind() says whether the caller's input was at fault
// (bad_input: a corrupt or oversized image, an argument out of range, a model that cannot do what was asked), the
// model was too busy (busy: the queue was full, or the call waited longer than ModelOptions::timeout_s), or something
// else went wrong (internal).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mae::api {

// An 8-bit picture: rows top to bottom, pixels interleaved; channels 1 (grey) or 3 (RGB).
struct Pixels {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> data;  // height · width · channels bytes
};

class Error : public std::runtime_error {
 public:
  enum class Kind { bad_input, busy, internal };
  Error(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// A JPEG or PNG from memory (the format from its magic bytes) as mae's training reads it: grey stays grey,
// everything else becomes RGB, alpha dropped. max_pixels (0: mae's limit, 178,956,970 as PIL's) is checked from the
// header, before any pixel buffer exists. Throws Error(bad_input) naming `name` for anything else.
Pixels decode_image(const void* bytes, size_t size, uint64_t max_pixels = 0, const std::string& name = "image");
// An 8-bit PNG of the picture.
std::vector<uint8_t> encode_png(const Pixels& img);

struct ModelOptions {
  std::string model;          // preset name, for weights that carry no config (official .pth): as --model
  std::string device = "cpu";  // "cpu", or "cuda" in CUDA builds
  std::string precision = "fp32";
  int threads = 0;            // compute threads (0: OMP_NUM_THREADS or all cores)
  int max_batch = 8;          // images in one forward; concurrent calls are batched up to this
  int max_queue = 256;        // images waiting for the compute thread; beyond it calls fail with busy
  double timeout_s = 0;       // a call that waits longer than this for its turn fails with busy (0: no limit)
};

// What a loaded file is and what it can do.
struct ModelInfo {
  std::string path, format;  // the file, and how it was read ("safetensors", "pth {'model': ...}", ...)
  std::string kind;          // "mae" (encoder + decoder), "encoder" (no decoder), "classifier" (fine-tuned)
  std::string config_json;   // the official constructor's arguments (img_size, patch_size, embed_dim, ...)
  int img_size = 0, patch_size = 0, in_chans = 0, embed_dim = 0;
  bool can_embed = false, can_reconstruct = false, can_classify = false;
  bool norm_pix_loss = false;
  std::vector<float> mean, std;          // the input normalisation the model was trained with, pixels in [0, 1]
  std::vector<std::string> class_names;  // classifier: one per output ("0" … "N-1" for files without names)
};

enum class Pool { cls, mean };  // feature: the cls token, or the mean of the patch tokens (--global_pool)

struct Reconstruction {
  // The model's input (the image resized, shorter side to img_size, and centre-cropped), the input with removed
  // patches grey (the normalisation mean), the decoder's prediction of every patch, and the input with the
  // prediction pasted into removed patches: as the official visualisation and `mae reconstruct`.
  Pixels original, masked, reconstruction, paste;
  int grid = 0;                   // patches per side: the masks below are grid × grid, row-major
  std::vector<uint8_t> mask;      // 1 = removed
  std::vector<float> patch_loss;  // per patch, mean squared error against the training target (norm-pix if so)
  double loss = 0;                // mean of patch_loss over removed patches: the training loss of this image
};
// One row of the four panels side by side, each scaled ×scale (0: about 224 px wide) with `gap` white pixels
// between them.
Pixels four_panels(const Reconstruction& r, int scale = 0, int gap = 2);

struct ClassScore {
  int index = 0;
  std::string name;
  float prob = 0;  // softmax probability
};

class Model {
 public:
  // Loads weights from any file or folder mae reads (safetensors, official/HF .pth, HF folder): an MAE checkpoint
  // (embed; reconstruct when it has a decoder) or a fine-tuned classifier (classify). Throws Error.
  static std::unique_ptr<Model> load(const std::string& path, const ModelOptions& options = {});
  virtual ~Model() = default;

  virtual const ModelInfo& info() const = 0;
  virtual std::string info_json() const = 0;  // info() as a JSON object

  // Encoder features (one vector of embed_dim floats per image) with every patch kept, read after the encoder's
  // final norm: `mae embed`'s features. Images are resized (shorter side, bicubic) and centre-cropped to the model's
  // size: to size / 0.875 first unless the image already has the model's size, as `mae embed`'s automatic crop.
  virtual std::vector<std::vector<float>> embed(const std::vector<Pixels>& images, Pool pool = Pool::cls) = 0;

  // The official demo's reconstruction: `mask_ratio` of the patches removed by a mask drawn from `seed` (the mask
  // of image k depends on the seed and k only, as `mae reconstruct --seed`).
  virtual std::vector<Reconstruction> reconstruct(const std::vector<Pixels>& images, double mask_ratio = 0.75,
                                                  uint64_t seed = 0) = 0;

  // The top_k classes with their probabilities, best first, with `mae finetune --eval`'s preprocessing.
  virtual std::vector<std::vector<ClassScore>> classify(const std::vector<Pixels>& images, int top_k = 5) = 0;
};

}  // namespace mae::api
