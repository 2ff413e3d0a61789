// RandAugment as timm builds it for main_finetune.py (--aa rand-m9-mstd0.5-inc1): per image, `n` ops drawn with
// replacement from the list, each applied with probability 0.5 at a magnitude drawn from N(m, mstd) clipped to
// [0, 10]. The ops are PIL's, reproduced to the byte on 8-bit images (grey or RGB, HWC): ImageOps autocontrast /
// equalize / invert / posterize / solarize, timm's solarize_add, ImageEnhance Color / Contrast / Brightness /
// Sharpness, and Image.transform(AFFINE, BICUBIC, fillcolor) for Rotate / ShearX / ShearY / TranslateX/YRel.
// Random draws come from our Rng (not Python's), in the order timm makes them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/image.h"

namespace mae {

namespace aug {
// Each op rewrites `img` in place (tmp: a scratch image reused between calls). Factors and angles as PIL takes them.
void auto_contrast(Image& img);                    // ImageOps.autocontrast(img)
void equalize(Image& img);                         // ImageOps.equalize(img)
void invert(Image& img);                           // ImageOps.invert(img)
void posterize(Image& img, int bits);              // ImageOps.posterize(img, bits) (bits ≥ 8: unchanged)
void solarize(Image& img, int thresh);             // ImageOps.solarize(img, thresh)
void solarize_add(Image& img, int add, int thresh = 128);  // timm solarize_add
void color(Image& img, float factor, Image& tmp);  // ImageEnhance.Color(img).enhance(factor)
void contrast(Image& img, float factor);           // ImageEnhance.Contrast
void brightness(Image& img, float factor);         // ImageEnhance.Brightness
void sharpness(Image& img, float factor, Image& tmp);  // ImageEnhance.Sharpness (SMOOTH-filtered degenerate)
// img.transform(img.size, Image.AFFINE, m, Image.BICUBIC, fillcolor=fill): output pixel (x, y) samples the input
// at (m0·(x+½) + m1·(y+½) + m2, m3·(x+½) + m4·(y+½) + m5); outside the image it is `fill` (a value a channel).
void affine(Image& img, const double m[6], const uint8_t* fill, Image& tmp);
void rotate(Image& img, double degrees, const uint8_t* fill, Image& tmp);  // img.rotate(degrees, BICUBIC, fill)
void shear_x(Image& img, double factor, const uint8_t* fill, Image& tmp);
void shear_y(Image& img, double factor, const uint8_t* fill, Image& tmp);
void translate_x_rel(Image& img, double pct, const uint8_t* fill, Image& tmp);  // pixels = pct · width
void translate_y_rel(Image& img, double pct, const uint8_t* fill, Image& tmp);  // pixels = pct · height
}  // namespace aug

enum class AugOp {
  AutoContrast, Equalize, Invert, Rotate, Posterize, Solarize, SolarizeAdd, Color, Contrast, Brightness, Sharpness,
  ShearX, ShearY, TranslateXRel, TranslateYRel
};
const char* aug_op_name(AugOp op, bool increasing);  // timm's name: "PosterizeIncreasing", ...

struct RandAugmentConfig {
  int num_ops = 2;             // n
  double magnitude = 9;        // m (timm's _LEVEL_DENOM = 10 is the top)
  double magnitude_std = 0;    // mstd: magnitude ~ N(m, mstd) per op application
  bool increasing = false;     // inc1: the "...Increasing" variants (stronger with magnitude)
  double prob = 0.5;           // per op
  double translate_pct = 0.45;
  std::vector<uint8_t> fill;   // per channel (timm: img_mean = round(255 · mean)); empty → 128

  // timm config strings: "rand-m9-mstd0.5-inc1", sections m, n, mstd, inc (w is not supported). Throws on others.
  static RandAugmentConfig parse(const std::string& s);
};

class RandAugment {
 public:
  explicit RandAugment(const RandAugmentConfig& cfg);
  const RandAugmentConfig& config() const { return cfg_; }
  // Draws (in order): the n op indices (np.random.choice with replacement), then for each op: the apply-probability
  // draw, the magnitude noise (if mstd > 0), the sign (ops whose level is randomly negated).
  void apply(Image& img, Rng& rng, Image& tmp) const;
  // One op at a given magnitude (sign ±1 for the ops that negate): what apply() runs once it has drawn them.
  void apply_op(AugOp op, double magnitude, int sign, Image& img, Image& tmp) const;

 private:
  RandAugmentConfig cfg_;
};

}  // namespace mae
