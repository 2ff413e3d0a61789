// Image transforms of the official recipes, reproduced to the byte where the official pipeline is deterministic:
//   train (main_pretrain.py): RandomResizedCrop(S, scale=(0.2, 1.0), interpolation=BICUBIC) → RandomHorizontalFlip
//                             → ToTensor → Normalize(mean, std)
//   eval  (main_linprobe/finetune.py): Resize(int(S / crop_pct), BICUBIC) on the shorter side → CenterCrop(S)
//                             → ToTensor → Normalize
// The resampling is PIL's (Pillow's Resample.c, 8-bit path): the same fixed-point coefficients, the same
// horizontal-then-vertical passes with an 8-bit intermediate, so a crop box resized here equals PIL's result
// exactly. Random draws differ from torch's generator by design: they come from Rng keyed per sample.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/randaugment.h"
#include "data/random_erasing.h"

namespace mae {

struct CropBox {  // torchvision's (i, j, h, w)
  int top = 0, left = 0, height = 0, width = 0;
};

// torchvision RandomResizedCrop.get_params: 10 tries of (area fraction ~ U(scale), log aspect ~ U(log ratio)),
// w = round(sqrt(area·ar)), h = round(sqrt(area/ar)) (round half to even, as Python), accepted if it fits; then
// the centre-crop fallback clamped to the ratio range. Draws: 2 per try, then 2 for the position.
CropBox random_resized_crop_params(int height, int width, double scale_min, double scale_max, double ratio_min,
                                   double ratio_max, Rng& rng);

// torchvision CenterCrop's box; it may reach outside the image (then the outside is padding of zeros).
CropBox center_crop_box(int height, int width, int crop_h, int crop_w);

// torchvision Resize(size) with an int: the shorter side becomes `size`, the longer int(size·long/short).
// Returns (new_h, new_w).
std::pair<int, int> shorter_side_size(int height, int width, int size);

// Buffers reused between calls (one per worker thread): coefficients and the intermediate row band.
struct ResampleScratch {
  std::vector<double> dk;
  std::vector<int32_t> kx, ky;
  std::vector<int> bx, by;
  std::vector<uint8_t> tmp;            // the horizontal pass's output (rows, out_w, c)
  std::vector<uint8_t> cols, tmp_t;    // the window and tmp transposed (columns contiguous)
  std::vector<int32_t> acc;            // one output column / row of sums
};

// PIL's Image.crop(box).resize((out_w, out_h), Image.BICUBIC) for 8-bit src with any channel count: Keys' cubic
// (a = -0.5), whose support widens by the scale factor when downscaling (antialiasing). box must lie inside src.
void resize_bicubic(const Image& src, const CropBox& box, int out_w, int out_h, Image& out, ResampleScratch& s);
Image resize_bicubic(const Image& src, int out_w, int out_h);
// PIL's Image.resize((out_w, out_h), Image.BICUBIC, box=(x0, y0, x1, y1)): a fractional box, with the taps free to
// read the whole of src around it (clamped at src's edges), unlike crop-then-resize above.
void resize_bicubic_box(const Image& src, double x0, double y0, double x1, double y1, int out_w, int out_h,
                        Image& out, ResampleScratch& s);

// Channel conversion as PIL's convert(): grey → RGB repeats, RGB → grey by ITU-R 601-2 luma in PIL's fixed point
// ((19595 R + 38470 G + 7471 B + 2^15) >> 16). c must be 1 or 3 on both sides.
void convert_channels(const Image& in, int c, Image& out);

struct TransformConfig {
  int size = 224;      // S: output is (channels, S, S)
  int channels = 3;    // the model's in_chans
  bool train = true;   // RandomResizedCrop + flip; else shorter-side resize + centre crop
  double scale_min = 0.2, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  double hflip = 0.5;               // probability
  double crop_pct = 224.0 / 256.0;  // eval: resize the shorter side to int(S / crop_pct) first
  Normalization norm;               // per output channel; empty = mean 0, std 1 (plain ToTensor)
  // Fine-tuning extras of timm's create_transform (main_finetune.py), train mode only, in this order after the flip:
  std::string auto_augment;         // --aa, a RandAugment policy such as "rand-m9-mstd0.5-inc1" ("" = none)
  RandomErasingConfig erasing{0.0}; // --reprob/--remode/--recount, on the normalised tensor (prob 0 = off)
};

struct TransformScratch {
  Image grey, resized, augmented, aug_tmp, region;
  ResampleScratch resample;
};

class Transform {
 public:
  explicit Transform(const TransformConfig& cfg);
  const TransformConfig& config() const { return cfg_; }
  // img (any size, 1 or 3 channels) → out (C, S, S) float. rng is drawn from only in train mode.
  void apply(const Image& img, Rng& rng, float* out, TransformScratch& s) const;
  // The 8-bit picture before ToTensor/Normalize ((S, S, C) HWC, flip applied): for previews and tests.
  void apply_u8(const Image& img, Rng& rng, Image& out, TransformScratch& s) const;
  // --decode fast (data/crop_decode.h): the same as apply() on the decoded file — the same draws, the same crop
  // box — with only the box decoded, at a reduced DCT scale where it is large. false, with nothing drawn from rng,
  // where that does not apply (eval transforms, PNG, CMYK JPEG): then decode in full and call apply().
  bool apply_encoded(const uint8_t* data, size_t size, const std::string& name, Rng& rng, float* out,
                     TransformScratch& s) const;
  bool apply_encoded_u8(const uint8_t* data, size_t size, const std::string& name, Rng& rng, Image& out,
                        TransformScratch& s) const;

  // Where the S×S output lies in a resized picture (eval can pad), and whether it is flipped.
  struct Placed {
    const Image* r;
    int top, left;
    bool flip;
  };

 private:
  void emit(const Placed& p, Rng& rng, float* out, TransformScratch& s) const;  // → (C, S, S) float
  TransformConfig cfg_;
  std::vector<float> lut_;  // (C, 256): (v / 255 - mean) / std, in float like ToTensor + Normalize
  std::shared_ptr<const RandAugment> randaug_;  // when cfg.auto_augment is set
};

}  // namespace mae
