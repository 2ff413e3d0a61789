// PIL's arithmetic is reproduced to the byte, including its float/double rounding, so multiply-adds must not be
// fused into FMAs here (PIL is built without them): this file is compiled with contraction off.
#pragma GCC optimize("fp-contract=off")

#include "data/randaugment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace mae {

namespace aug {

namespace {

uint8_t clip8f(float v) { return v <= 0.0f ? 0 : v >= 255.0f ? 255 : uint8_t(v); }

// image.point(lut) with one 256-entry table for every band (_lut with lut + lut + lut for RGB).
void apply_lut(Image& img, const int* lut) {
  for (auto& p : img.px) p = uint8_t(std::clamp(lut[p], 0, 255));  // getlist clips to UINT8
}

// Per band 256-bin histograms: (c, 256), c ≤ 3.
using Hist = std::array<int64_t, 3 * 256>;
Hist histogram(const Image& img) {
  MAE_CHECK(img.c >= 1 && img.c <= 3, "augmentation of a ", img.c, "-channel image");
  Hist h{};
  for (size_t i = 0; i < img.px.size(); ++i) h[(i % img.c) * 256 + img.px[i]]++;
  return h;
}

// Image.blend(degenerate, img, factor): ImagingBlend in float, truncating, clipped only when extrapolating.
// degenerate(i) gives the degenerate image's byte i (a constant for Brightness and Contrast).
template <class Degenerate> void blend(const Degenerate& degenerate, Image& img, float alpha) {
  if (alpha >= 0 && alpha <= 1.0) {
    for (size_t i = 0; i < img.px.size(); ++i) {
      const int d = degenerate(i);
      img.px[i] = uint8_t(d + alpha * (int(img.px[i]) - d));
    }
  } else {
    for (size_t i = 0; i < img.px.size(); ++i) {
      const int d = degenerate(i);
      img.px[i] = clip8f(float(d + alpha * (int(img.px[i]) - d)));
    }
  }
}

// convert("L") of an RGB pixel: ITU-R 601-2 luma in PIL's fixed point.
uint8_t luma(const uint8_t* p) { return uint8_t((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16); }

// Python's round(x, 15): the nearest 15-decimal value, correctly rounded (glibc's printf rounds exactly too).
double round15(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.15f", x);
  return std::strtod(b, nullptr);
}

}  // namespace

void auto_contrast(Image& img) {
  const Hist h = histogram(img);
  std::array<uint8_t, 3 * 256> all;
  for (int b = 0; b < img.c; ++b) {
    const int64_t* hb = &h[size_t(b) * 256];
    int lo = 0, hi = 255;
    while (lo < 255 && !hb[lo]) ++lo;
    while (hi > 0 && !hb[hi]) --hi;
    for (int ix = 0; ix < 256; ++ix) {
      if (hi <= lo) {
        all[size_t(b) * 256 + ix] = uint8_t(ix);
        continue;
      }
      const double scale = 255.0 / (hi - lo), offset = -lo * scale;
      int v = int(ix * scale + offset);  // int() truncates toward zero
      all[size_t(b) * 256 + ix] = uint8_t(std::clamp(v, 0, 255));
    }
  }
  for (size_t i = 0; i < img.px.size(); ++i) img.px[i] = all[(i % img.c) * 256 + img.px[i]];
}

void equalize(Image& img) {
  const Hist h = histogram(img);
  std::array<int64_t, 3 * 256> all;
  for (int b = 0; b < img.c; ++b) {
    const int64_t* hb = &h[size_t(b) * 256];
    int64_t total = 0, last = 0, nonzero = 0;
    for (int i = 0; i < 256; ++i)
      if (hb[i]) total += hb[i], last = hb[i], ++nonzero;
    const int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    int64_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      all[size_t(b) * 256 + i] = step ? std::min<int64_t>(n / step, 255) : i;
      n += hb[i];
    }
  }
  for (size_t i = 0; i < img.px.size(); ++i) img.px[i] = uint8_t(all[(i % img.c) * 256 + img.px[i]]);
}

void invert(Image& img) {
  for (auto& p : img.px) p = uint8_t(255 - p);
}

void posterize(Image& img, int bits) {
  if (bits >= 8) return;
  const int mask = ~((1 << (8 - std::max(bits, 0))) - 1);
  int lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = i & mask;
  apply_lut(img, lut);
}

void solarize(Image& img, int thresh) {
  int lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = i < thresh ? i : 255 - i;
  apply_lut(img, lut);
}

void solarize_add(Image& img, int add, int thresh) {
  int lut[256];
  for (int i = 0; i < 256; ++i) lut[i] = i < thresh ? std::min(255, i + add) : i;
  apply_lut(img, lut);
}

void color(Image& img, float factor, Image& tmp) {
  // degenerate = image.convert("L").convert(image.mode): a grey image is its own degenerate, so nothing changes
  if (img.c != 3) return;
  tmp.resize(img.w, img.h, 1);
  for (size_t i = 0; i < tmp.px.size(); ++i) tmp.px[i] = luma(&img.px[i * 3]);
  blend([&](size_t i) { return int(tmp.px[i / 3]); }, img, factor);
}

void contrast(Image& img, float factor) {
  // mean = int(ImageStat.Stat(image.convert("L")).mean[0] + 0.5): the histogram mean, in double
  const size_t n = size_t(img.w) * img.h;
  std::array<int64_t, 256> hist{};
  for (size_t i = 0; i < n; ++i) hist[img.c == 3 ? luma(&img.px[i * 3]) : img.px[i]]++;
  double sum = 0;
  for (int i = 0; i < 256; ++i) sum += double(i) * double(hist[i]);
  const int mean = int(sum / double(n) + 0.5);
  blend([mean](size_t) { return mean; }, img, factor);  // Image.new("L", size, mean).convert(mode)
}

void brightness(Image& img, float factor) {
  blend([](size_t) { return 0; }, img, factor);  // Image.new(mode, size, 0)
}

void sharpness(Image& img, float factor, Image& tmp) {
  // degenerate = image.filter(ImageFilter.SMOOTH): 3×3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13 in float, + 0.5 for
  // rounding, clip8; the border rows and columns are copied unchanged (ImagingFilter3x3).
  const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
  const float k[9] = {k1, k1, k1, k1, k5, k1, k1, k1, k1};
  tmp = img;
  const int W = img.w, H = img.h, C = img.c;
  for (int y = 1; y < H - 1; ++y)
    for (int x = 1; x < W - 1; ++x)
      for (int ch = 0; ch < C; ++ch) {
        auto px = [&](int yy, int xx) { return float(img.px[(size_t(yy) * W + xx) * C + ch]); };
        float ss = 0.5f;
        ss += px(y + 1, x - 1) * k[0] + px(y + 1, x) * k[1] + px(y + 1, x + 1) * k[2];
        ss += px(y, x - 1) * k[3] + px(y, x) * k[4] + px(y, x + 1) * k[5];
        ss += px(y - 1, x - 1) * k[6] + px(y - 1, x) * k[7] + px(y - 1, x + 1) * k[8];
        tmp.px[(size_t(y) * W + x) * C + ch] = clip8f(ss);
      }
  blend([&](size_t i) { return int(tmp.px[i]); }, img, factor);
}

void affine(Image& img, const double a[6], const uint8_t* fill, Image& out) {
  const int W = img.w, H = img.h, C = img.c;
  out.resize(W, H, C);
  // Geometry.c: BICUBIC (a = −1 cubic), taps clamped in x, rows outside repeated from the previous one.
  auto cubic = [](double v1, double v2, double v3, double v4, double d) {
    const double p1 = v2, p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4;
    return p1 + d * (p2 + d * (p3 + d * p4));
  };
  auto xclip = [&](int x) { return x < 0 ? 0 : x >= W ? W - 1 : x; };
  auto yclip = [&](int y) { return y < 0 ? 0 : y >= H ? H - 1 : y; };
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      uint8_t* o = &out.px[(size_t(y) * W + x) * C];
      // affine_transform: xin = x + 0.5, yin = y + 0.5
      const double xo = a[0] * (x + 0.5) + a[1] * (y + 0.5) + a[2];
      const double yo = a[3] * (x + 0.5) + a[4] * (y + 0.5) + a[5];
      if (xo < 0.0 || xo >= W || yo < 0.0 || yo >= H) {  // BICUBIC_HEAD: outside → the fill colour stays
        for (int ch = 0; ch < C; ++ch) o[ch] = fill ? fill[ch] : 0;
        continue;
      }
      const double xi = xo - 0.5, yi = yo - 0.5;
      int xf = xi < 0.0 ? int(std::floor(xi)) : int(xi), yf = yi < 0.0 ? int(std::floor(yi)) : int(yi);
      const double dx = xi - xf, dy = yi - yf;
      xf--, yf--;
      const int x0 = xclip(xf), x1 = xclip(xf + 1), x2 = xclip(xf + 2), x3 = xclip(xf + 3);
      for (int ch = 0; ch < C; ++ch) {
        auto row = [&](int yy) {
          const uint8_t* r = &img.px[size_t(yy) * W * C + ch];
          return cubic(r[x0 * C], r[x1 * C], r[x2 * C], r[x3 * C], dx);
        };
        const double v1 = row(yclip(yf));
        const double v2 = (yf + 1 >= 0 && yf + 1 < H) ? row(yf + 1) : v1;
        const double v3 = (yf + 2 >= 0 && yf + 2 < H) ? row(yf + 2) : v2;
        const double v4 = (yf + 3 >= 0 && yf + 3 < H) ? row(yf + 3) : v3;
        const double v = cubic(v1, v2, v3, v4, dy);
        o[ch] = v <= 0.0 ? 0 : v >= 255.0 ? 255 : uint8_t(v);
      }
    }
  std::swap(img, out);
}

void rotate(Image& img, double degrees, const uint8_t* fill, Image& tmp) {
  double angle = std::fmod(degrees, 360.0);  // Python's %: the result takes the sign of the divisor
  if (angle < 0) angle += 360.0;
  if (angle == 0) return;
  if (angle == 180) {  // transpose(ROTATE_180)
    tmp = img;
    const std::vector<uint8_t>& px = tmp.px;
    const size_t n = size_t(img.w) * img.h;
    for (size_t i = 0; i < n; ++i)
      for (int ch = 0; ch < img.c; ++ch) img.px[i * img.c + ch] = px[(n - 1 - i) * img.c + ch];
    return;
  }
  if ((angle == 90 || angle == 270) && img.w == img.h) {  // transpose(ROTATE_90 / ROTATE_270), counter-clockwise
    tmp = img;
    const std::vector<uint8_t>& px = tmp.px;
    const int S = img.w;
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        const int sy = angle == 90 ? x : S - 1 - x, sx = angle == 90 ? S - 1 - y : y;
        for (int ch = 0; ch < img.c; ++ch)
          img.px[(size_t(y) * S + x) * img.c + ch] = px[(size_t(sy) * S + sx) * img.c + ch];
      }
    return;
  }
  const double cx = img.w / 2.0, cy = img.h / 2.0;
  const double rad = -(angle * (M_PI / 180.0));  // -math.radians(angle): x · (π / 180)
  double m[6] = {round15(std::cos(rad)), round15(std::sin(rad)), 0.0, round15(-std::sin(rad)), round15(std::cos(rad)),
                 0.0};
  m[2] = m[0] * -cx + m[1] * -cy + m[2];
  m[5] = m[3] * -cx + m[4] * -cy + m[5];
  m[2] += cx;
  m[5] += cy;
  affine(img, m, fill, tmp);
}

void shear_x(Image& img, double factor, const uint8_t* fill, Image& tmp) {
  const double m[6] = {1, factor, 0, 0, 1, 0};
  affine(img, m, fill, tmp);
}

void shear_y(Image& img, double factor, const uint8_t* fill, Image& tmp) {
  const double m[6] = {1, 0, 0, factor, 1, 0};
  affine(img, m, fill, tmp);
}

void translate_x_rel(Image& img, double pct, const uint8_t* fill, Image& tmp) {
  const double m[6] = {1, 0, pct * img.w, 0, 1, 0};
  affine(img, m, fill, tmp);
}

void translate_y_rel(Image& img, double pct, const uint8_t* fill, Image& tmp) {
  const double m[6] = {1, 0, 0, 0, 1, pct * img.h};
  affine(img, m, fill, tmp);
}

}  // namespace aug

// _RAND_TRANSFORMS / _RAND_INCREASING_TRANSFORMS (same order; Cutout is left to RandomErasing as in timm)
static const AugOp kOps[] = {AugOp::AutoContrast, AugOp::Equalize,   AugOp::Invert,    AugOp::Rotate,
                             AugOp::Posterize,    AugOp::Solarize,   AugOp::SolarizeAdd, AugOp::Color,
                             AugOp::Contrast,     AugOp::Brightness, AugOp::Sharpness, AugOp::ShearX,
                             AugOp::ShearY,       AugOp::TranslateXRel, AugOp::TranslateYRel};
constexpr int kNumOps = 15;

const char* aug_op_name(AugOp op, bool inc) {
  switch (op) {
    case AugOp::AutoContrast: return "AutoContrast";
    case AugOp::Equalize: return "Equalize";
    case AugOp::Invert: return "Invert";
    case AugOp::Rotate: return "Rotate";
    case AugOp::Posterize: return inc ? "PosterizeIncreasing" : "Posterize";
    case AugOp::Solarize: return inc ? "SolarizeIncreasing" : "Solarize";
    case AugOp::SolarizeAdd: return "SolarizeAdd";
    case AugOp::Color: return inc ? "ColorIncreasing" : "Color";
    case AugOp::Contrast: return inc ? "ContrastIncreasing" : "Contrast";
    case AugOp::Brightness: return inc ? "BrightnessIncreasing" : "Brightness";
    case AugOp::Sharpness: return inc ? "SharpnessIncreasing" : "Sharpness";
    case AugOp::ShearX: return "ShearX";
    case AugOp::ShearY: return "ShearY";
    case AugOp::TranslateXRel: return "TranslateXRel";
    case AugOp::TranslateYRel: return "TranslateYRel";
  }
  return "?";
}

RandAugmentConfig RandAugmentConfig::parse(const std::string& s) {
  RandAugmentConfig c;
  auto bad = [&](const std::string& why) { fail("--aa '", s, "': ", why, " (expected e.g. rand-m9-mstd0.5-inc1)"); };
  if (s.rfind("rand", 0) != 0) bad("only RandAugment ('rand-...') policies are supported");
  size_t pos = 4;
  while (pos < s.size()) {
    if (s[pos] != '-') bad("sections are separated by '-'");
    const size_t end = std::min(s.find('-', pos + 1), s.size());
    const std::string sec = s.substr(pos + 1, end - pos - 1);
    pos = end;
    // re.split(r'(\d.*)', c): the key is what comes before the first digit
    const size_t d = sec.find_first_of("0123456789");
    if (d == std::string::npos) continue;  // timm skips sections without a value
    const std::string key = sec.substr(0, d), val = sec.substr(d);
    char* e = nullptr;
    const double v = std::strtod(val.c_str(), &e);
    if (*e) bad("section '" + sec + "' has a malformed number");
    // Ranges checked on the double, before any cast to int (99999999999 used to overflow it). timm clips the sampled
    // magnitude to [0, 10] anyway: 100 leaves room for an mmax-style recipe.
    if (key == "m") {
      if (!(v >= 0 && v <= 100)) bad("m must be in 0..100");
      c.magnitude = int(v);
    } else if (key == "n") {
      if (!(v >= 0 && v <= 16)) bad("n must be in 0..16");
      c.num_ops = int(v);
    } else if (key == "mstd") {
      if (!(v >= 0 && v <= 100)) bad("mstd must be in 0..100");
      c.magnitude_std = v;
    } else if (key == "inc") {
      if (v != 0 && v != 1) bad("inc must be 0 or 1");
      c.increasing = v == 1;
    }
    else if (key == "w") bad("weighted op choice ('w') is not supported");
    else bad("unknown section '" + sec + "'");
  }
  return c;
}

RandAugment::RandAugment(const RandAugmentConfig& cfg) : cfg_(cfg) {}

void RandAugment::apply_op(AugOp op, double mag, int sign, Image& img, Image& tmp) const {
  const double lvl = mag / 10.0;  // level / _LEVEL_DENOM
  const bool inc = cfg_.increasing;
  uint8_t fill[3] = {128, 128, 128};  // timm's _FILL when no img_mean is given
  for (int ch = 0; ch < img.c && ch < 3; ++ch)
    if (!cfg_.fill.empty()) fill[ch] = cfg_.fill[std::min(size_t(ch), cfg_.fill.size() - 1)];
  switch (op) {
    case AugOp::AutoContrast: aug::auto_contrast(img); break;
    case AugOp::Equalize: aug::equalize(img); break;
    case AugOp::Invert: aug::invert(img); break;
    case AugOp::Rotate: aug::rotate(img, sign * lvl * 30.0, fill, tmp); break;
    case AugOp::Posterize: {
      const int b = int(lvl * 4);  // _posterize_level_to_arg; increasing: 4 − that
      aug::posterize(img, inc ? 4 - b : b);
      break;
    }
    case AugOp::Solarize: {
      const int t = int(lvl * 256);  // increasing: 256 − that
      aug::solarize(img, inc ? 256 - t : t);
      break;
    }
    case AugOp::SolarizeAdd: aug::solarize_add(img, int(lvl * 110), 128); break;
    case AugOp::Color:
    case AugOp::Contrast:
    case AugOp::Brightness:
    case AugOp::Sharpness: {
      // _enhance_level_to_arg: lvl·1.8 + 0.1;  increasing: 1 + (±lvl·0.9)
      const double f = inc ? 1.0 + sign * (lvl * 0.9) : lvl * 1.8 + 0.1;
      if (op == AugOp::Color) aug::color(img, float(f), tmp);
      else if (op == AugOp::Contrast) aug::contrast(img, float(f));
      else if (op == AugOp::Brightness) aug::brightness(img, float(f));
      else aug::sharpness(img, float(f), tmp);
      break;
    }
    case AugOp::ShearX: aug::shear_x(img, sign * lvl * 0.3, fill, tmp); break;
    case AugOp::ShearY: aug::shear_y(img, sign * lvl * 0.3, fill, tmp); break;
    case AugOp::TranslateXRel: aug::translate_x_rel(img, sign * lvl * cfg_.translate_pct, fill, tmp); break;
    case AugOp::TranslateYRel: aug::translate_y_rel(img, sign * lvl * cfg_.translate_pct, fill, tmp); break;
  }
}

static bool negates(AugOp op, bool inc) {
  switch (op) {
    case AugOp::Rotate:
    case AugOp::ShearX:
    case AugOp::ShearY:
    case AugOp::TranslateXRel:
    case AugOp::TranslateYRel: return true;
    case AugOp::Color:
    case AugOp::Contrast:
    case AugOp::Brightness:
    case AugOp::Sharpness: return inc;
    default: return false;
  }
}

void RandAugment::apply(Image& img, Rng& rng, Image& tmp) const {
  // ops = np.random.choice(self.ops, self.num_layers, replace=True)
  AugOp chosen[16];
  const int n = cfg_.num_ops;  // ≤ 16 (parse)
  for (int i = 0; i < n; ++i) chosen[i] = kOps[rng.uniform_int(kNumOps)];
  for (int i = 0; i < n; ++i) {
    // AugOp.__call__: if self.prob < 1.0 and random.random() > self.prob: return img
    if (cfg_.prob < 1.0 && rng.uniform() > cfg_.prob) continue;
    double mag = cfg_.magnitude;
    if (cfg_.magnitude_std > 0) mag = rng.normal(mag, cfg_.magnitude_std);  // random.gauss(magnitude, std)
    mag = std::min(10.0, std::max(0.0, mag));
    int sign = 1;
    if (negates(chosen[i], cfg_.increasing)) sign = rng.uniform() > 0.5 ? -1 : 1;  // _randomly_negate
    apply_op(chosen[i], mag, sign, img, tmp);
  }
}

}  // namespace mae
