#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/crop_decode.h"
#include "data/decode.h"

namespace mae {

namespace {

// Python's round(): half to even; std::nearbyint does that in the default rounding mode.
inline int round_even(double x) { return int(std::nearbyint(x)); }

}  // namespace

CropBox random_resized_crop_params(int height, int width, double scale_min, double scale_max, double ratio_min,
                                   double ratio_max, Rng& rng) {
  double area = double(height) * width;
  double log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; attempt++) {
    double target_area = area * rng.uniform(scale_min, scale_max);
    double aspect = std::exp(rng.uniform(log_lo, log_hi));
    int w = round_even(std::sqrt(target_area * aspect));
    int h = round_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      int i = int(rng.uniform_int(uint64_t(height - h + 1)));
      int j = int(rng.uniform_int(uint64_t(width - w + 1)));
      return {i, j, h, w};
    }
  }
  // Fallback: the largest centred crop whose aspect lies in the ratio range.
  double in_ratio = double(width) / double(height);
  int w, h;
  if (in_ratio < ratio_min) {
    w = width;
    h = round_even(w / ratio_min);
  } else if (in_ratio > ratio_max) {
    h = height;
    w = round_even(h * ratio_max);
  } else {
    w = width;
    h = height;
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

CropBox center_crop_box(int height, int width, int crop_h, int crop_w) {
  // torchvision pads (crop - size) // 2 on the top/left when the crop is larger, else rounds the margin / 2.
  auto offset = [](int size, int crop) { return crop > size ? -((crop - size) / 2) : round_even((size - crop) / 2.0); };
  return {offset(height, crop_h), offset(width, crop_w), crop_h, crop_w};
}

std::pair<int, int> shorter_side_size(int height, int width, int size) {
  if (width <= height) return {int(double(int64_t(size) * height) / width), size};
  return {size, int(double(int64_t(size) * width) / height)};
}

// ------------------------------------------------------------------------------------------- PIL bicubic resample

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for the 8-bit path

inline double bicubic_filter(double x) {  // Pillow: Keys' cubic with a = -0.5, support 2
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: out_size samples of the box [in0, in1) of an input of
// in_size samples (taps are clamped to [0, in_size)). Returns ksize; bounds holds (first tap, tap count) per output
// sample, kk the fixed-point weights (out_size, ksize).
int precompute_coeffs(int in_size, double in0, double in1, int out_size, std::vector<double>& dk,
                      std::vector<int>& bounds, std::vector<int32_t>& kk) {
  double scale = (in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  int ksize = int(std::ceil(support)) * 2 + 1;
  dk.assign(size_t(out_size) * ksize, 0.0);
  bounds.resize(size_t(out_size) * 2);
  for (int xx = 0; xx < out_size; xx++) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);  // truncation, as the C cast
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &dk[size_t(xx) * ksize];
    for (int x = 0; x < xmax; x++) {
      double w = bicubic_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    bounds[size_t(xx) * 2] = xmin;
    bounds[size_t(xx) * 2 + 1] = xmax;
  }
  kk.resize(dk.size());
  for (size_t x = 0; x < dk.size(); x++)
    kk[x] = dk[x] < 0 ? int32_t(-0.5 + dk[x] * (1 << kPrecisionBits)) : int32_t(0.5 + dk[x] * (1 << kPrecisionBits));
  return ksize;
}

inline uint8_t clip8(int v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return uint8_t(v >> kPrecisionBits);
}

// A rectangle of the source picture the resampling reads (its taps never leave it).
struct Window {
  int left, top, width, height;
};

// dst (cols, rows, E) = src (rows, cols, E) transposed, elements of E bytes; src rows src_stride bytes apart.
template <int E> void transpose(const uint8_t* src, size_t src_stride, uint8_t* dst, int rows, int cols) {
  constexpr int kBlock = 32;  // a 32×32 tile of pixels stays in L1 both ways
  for (int y0 = 0; y0 < rows; y0 += kBlock)
    for (int x0 = 0; x0 < cols; x0 += kBlock) {
      const int y1 = std::min(rows, y0 + kBlock), x1 = std::min(cols, x0 + kBlock);
      for (int y = y0; y < y1; y++) {
        const uint8_t* in = src + y * src_stride;
        for (int x = x0; x < x1; x++)
          for (int ch = 0; ch < E; ch++) dst[(size_t(x) * rows + y) * E + ch] = in[size_t(x) * E + ch];
      }
    }
}

void transpose(const uint8_t* src, size_t src_stride, uint8_t* dst, int rows, int cols, int e) {
  switch (e) {
    case 1: return transpose<1>(src, src_stride, dst, rows, cols);
    case 3: return transpose<3>(src, src_stride, dst, rows, cols);
    case 2: return transpose<2>(src, src_stride, dst, rows, cols);
    default: return transpose<4>(src, src_stride, dst, rows, cols);
  }
}

// Pillow's horizontal pass over window rows [first, first + rows) into s.tmp (rows, out_w, c). Every row shares the
// same taps, so the window is transposed and each output column becomes a sum of whole input columns (int32, in
// tap order: the same integers as Pillow's per-sample loop, vectorised), then transposed back.
void horizontal_pass(const Image& src, const Window& w, int first, int rows, int out_w, int ksize, ResampleScratch& s) {
  const int c = src.c, n = rows * c;
  s.cols.resize(size_t(w.width) * n);
  transpose(&src.px[(size_t(w.top + first) * src.w + w.left) * c], size_t(src.w) * c, s.cols.data(), rows, w.width, c);
  s.acc.resize(size_t(n));
  s.tmp_t.resize(size_t(out_w) * n);  // (out_w, rows, c)
  int32_t* acc = s.acc.data();
  for (int xx = 0; xx < out_w; xx++) {
    const int xmin = s.bx[size_t(xx) * 2], xmax = s.bx[size_t(xx) * 2 + 1];
    const int32_t* k = &s.kx[size_t(xx) * ksize];
    std::fill_n(acc, n, int32_t(1) << (kPrecisionBits - 1));
    for (int x = 0; x < xmax; x++) {
      const uint8_t* col = &s.cols[size_t(xmin + x) * n];
      const int32_t kv = k[x];
      for (int i = 0; i < n; i++) acc[i] += int32_t(col[i]) * kv;
    }
    uint8_t* o = &s.tmp_t[size_t(xx) * n];
    for (int i = 0; i < n; i++) o[i] = clip8(acc[i]);
  }
  s.tmp.resize(size_t(rows) * out_w * c);
  transpose(s.tmp_t.data(), size_t(n), s.tmp.data(), out_w, rows, c);
}

// Pillow's ImagingResample (horizontal pass into an 8-bit band, then vertical) on the window w of src: the taps
// never leave the window, and the box (x0, y0, x1, y1) is in window coordinates.
void resample(const Image& src, const Window& w, double x0, double y0, double x1, double y1, int out_w, int out_h,
              Image& out, ResampleScratch& s) {
  MAE_CHECK(w.top >= 0 && w.left >= 0 && w.height > 0 && w.width > 0 && w.top + w.height <= src.h &&
                w.left + w.width <= src.w,
            "resample window outside the image");
  MAE_CHECK(out_w > 0 && out_h > 0);
  const int c = src.c;
  out.resize(out_w, out_h, c);
  const bool need_h = out_w != w.width || x0 != 0 || x1 != w.width;
  const bool need_v = out_h != w.height || y0 != 0 || y1 != w.height;
  if (!need_h && !need_v) {  // PIL returns the crop itself
    for (int y = 0; y < out_h; y++)
      std::copy_n(&src.px[(size_t(w.top + y) * src.w + w.left) * c], size_t(out_w) * c, &out.px[size_t(y) * out_w * c]);
    return;
  }
  const int kx = precompute_coeffs(w.width, x0, x1, out_w, s.dk, s.bx, s.kx);
  const int ky = precompute_coeffs(w.height, y0, y1, out_h, s.dk, s.by, s.ky);

  // Horizontal pass over the rows the vertical pass will read (PIL's ybox_first..ybox_last), into an 8-bit band.
  const uint8_t* band;  // rows of width band_w, row 0 = window row `first`
  int band_w, first;
  if (need_h) {
    first = s.by[0];
    int last = s.by[size_t(out_h - 1) * 2] + s.by[size_t(out_h - 1) * 2 + 1];
    if (!need_v) first = 0, last = out_h;
    int rows = last - first;
    horizontal_pass(src, w, first, rows, out_w, kx, s);
    band = s.tmp.data(), band_w = out_w;
    if (!need_v) {
      std::copy_n(s.tmp.data(), out.px.size(), out.px.data());
      return;
    }
  } else {
    band = nullptr, band_w = w.width, first = 0;
  }

  // Vertical pass: whole rows at a time, int32 sums in the order of the taps (the same integers as Pillow's
  // per-sample loop; rows of sums let the compiler vectorise).
  const int n = out_w * c;
  s.acc.resize(size_t(n));
  int32_t* acc = s.acc.data();
  for (int yy = 0; yy < out_h; yy++) {
    const int ymin = s.by[size_t(yy) * 2] - first, ymax = s.by[size_t(yy) * 2 + 1];
    const int32_t* k = &s.ky[size_t(yy) * ky];
    std::fill_n(acc, n, int32_t(1) << (kPrecisionBits - 1));
    for (int y = 0; y < ymax; y++) {
      const uint8_t* row = band ? band + size_t(ymin + y) * band_w * c
                                : &src.px[(size_t(w.top + ymin + y) * src.w + w.left) * c];
      const int32_t ky_ = k[y];
      for (int i = 0; i < n; i++) acc[i] += int32_t(row[i]) * ky_;
    }
    uint8_t* o = &out.px[size_t(yy) * n];
    for (int i = 0; i < n; i++) o[i] = clip8(acc[i]);
  }
}

}  // namespace

void resize_bicubic(const Image& src, const CropBox& box, int out_w, int out_h, Image& out, ResampleScratch& s) {
  MAE_CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 && box.top + box.height <= src.h &&
                box.left + box.width <= src.w,
            "crop box outside the image");
  // Image.crop(box) first: the crop is the whole input, so taps stop at its edges.
  resample(src, {box.left, box.top, box.width, box.height}, 0, 0, box.width, box.height, out_w, out_h, out, s);
}

void resize_bicubic_box(const Image& src, double x0, double y0, double x1, double y1, int out_w, int out_h,
                        Image& out, ResampleScratch& s) {
  MAE_CHECK(x0 >= 0 && y0 >= 0 && x1 <= src.w && y1 <= src.h && x0 < x1 && y0 < y1, "resize box outside the image");
  resample(src, {0, 0, src.w, src.h}, x0, y0, x1, y1, out_w, out_h, out, s);
}

Image resize_bicubic(const Image& src, int out_w, int out_h) {
  Image out;
  ResampleScratch s;
  resize_bicubic(src, {0, 0, src.h, src.w}, out_w, out_h, out, s);
  return out;
}

void convert_channels(const Image& in, int c, Image& out) {
  MAE_CHECK((in.c == 1 || in.c == 3) && (c == 1 || c == 3), "channels ", in.c, " -> ", c);
  out.resize(in.w, in.h, c);
  size_t n = size_t(in.w) * in.h;
  const uint8_t* p = in.px.data();
  uint8_t* o = out.px.data();
  if (in.c == c) {
    std::copy_n(p, n * c, o);
  } else if (c == 3) {
    for (size_t i = 0; i < n; i++) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = p[i];
  } else {
    for (size_t i = 0; i < n; i++)
      o[i] = uint8_t((p[3 * i] * 19595 + p[3 * i + 1] * 38470 + p[3 * i + 2] * 7471 + 0x8000) >> 16);
  }
}

// -------------------------------------------------------------------------------------------------- Transform

Transform::Transform(const TransformConfig& cfg) : cfg_(cfg) {
  const int C = cfg.channels;
  if (C != 1 && C != 3) fail("transform: ", C, " channels (supported: 1 or 3)");
  if (cfg.size <= 0) fail("transform: image size ", cfg.size);
  if (!(cfg.scale_min > 0 && cfg.scale_min <= cfg.scale_max))
    fail("transform: crop scale range (", cfg.scale_min, ", ", cfg.scale_max, ")");
  if (!(cfg.ratio_min > 0 && cfg.ratio_min <= cfg.ratio_max))
    fail("transform: crop ratio range (", cfg.ratio_min, ", ", cfg.ratio_max, ")");
  if (!(cfg.crop_pct > 0)) fail("transform: crop_pct ", cfg.crop_pct);
  Normalization n = cfg.norm;
  if (n.mean.empty()) n = {std::vector<float>(C, 0.f), std::vector<float>(C, 1.f)};
  if (int(n.mean.size()) != C || int(n.std.size()) != C)
    fail("transform: normalisation has ", n.mean.size(), " means and ", n.std.size(), " stds for ", C, " channels");
  lut_.resize(size_t(C) * 256);
  for (int ch = 0; ch < C; ch++) {
    if (!(n.std[ch] > 0)) fail("transform: std ", n.std[ch], " for channel ", ch);
    for (int v = 0; v < 256; v++) {
      volatile float x = float(v) / 255.0f;  // ToTensor: byte.float().div(255), rounded to float before Normalize
      lut_[size_t(ch) * 256 + v] = (x - n.mean[ch]) / n.std[ch];
    }
  }
  if (!cfg.auto_augment.empty()) {
    // timm create_transform: aa_params img_mean = tuple(min(255, round(255 * x)) for x in mean)
    RandAugmentConfig ra = RandAugmentConfig::parse(cfg.auto_augment);
    for (int ch = 0; ch < C; ch++) ra.fill.push_back(uint8_t(std::min(255.0, std::nearbyint(255.0 * n.mean[ch]))));
    randaug_ = std::make_shared<const RandAugment>(ra);
  }
  validate(cfg.erasing);
}

namespace {

using Placed = Transform::Placed;

Placed place(const TransformConfig& cfg, const Image& img, Rng& rng, TransformScratch& s) {
  if (img.c != 1 && img.c != 3) fail("transform: image with ", img.c, " channels");
  if (img.w <= 0 || img.h <= 0) fail("transform: empty image");
  const Image* src = &img;
  if (img.c == 3 && cfg.channels == 1) {  // luma before resampling, as PIL's convert('L') at load time
    convert_channels(img, 1, s.grey);
    src = &s.grey;
  }  // grey → RGB is replicated at the end: resampling each copy would give the same bytes
  const int S = cfg.size;
  if (cfg.train) {
    CropBox b = random_resized_crop_params(src->h, src->w, cfg.scale_min, cfg.scale_max, cfg.ratio_min,
                                           cfg.ratio_max, rng);
    resize_bicubic(*src, b, S, S, s.resized, s.resample);
    bool flip = rng.uniform() < cfg.hflip;
    return {&s.resized, 0, 0, flip};
  }
  auto [rh, rw] = shorter_side_size(src->h, src->w, int(double(S) / cfg.crop_pct));
  resize_bicubic(*src, {0, 0, src->h, src->w}, rw, rh, s.resized, s.resample);
  CropBox b = center_crop_box(rh, rw, S, S);
  return {&s.resized, b.top, b.left, false};
}

// place() for --decode fast: the train crop drawn from the JPEG header's size, only the box decoded. false (rng
// untouched) where it does not apply.
bool place_encoded(const TransformConfig& cfg, const uint8_t* data, size_t size, const std::string& name, Rng& rng,
                   TransformScratch& s, Placed& p) {
  JpegInfo info;
  if (!cfg.train || !read_jpeg_info(data, size, name, info) || info.cmyk) return false;
  const CropBox b = random_resized_crop_params(info.height, info.width, cfg.scale_min, cfg.scale_max, cfg.ratio_min,
                                               cfg.ratio_max, rng);
  crop_decode_resize(data, size, name, info, b, cfg.channels, cfg.size, cfg.size, s.resized, s.region, s.grey,
                     s.resample);
  const bool flip = rng.uniform() < cfg.hflip;
  p = {&s.resized, 0, 0, flip};
  return true;
}

// The S×S window of p, flipped if so, as 8-bit HWC with C channels (a grey picture repeated for C = 3).
void window_u8(const Placed& p, int S, int C, Image& out) {
  const Image& r = *p.r;
  out.resize(S, S, C);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      const int sy = p.top + y, sx = p.left + (p.flip ? S - 1 - x : x);
      const bool inside = sy >= 0 && sy < r.h && sx >= 0 && sx < r.w;
      for (int ch = 0; ch < C; ch++)
        out.at(y, x, ch) = inside ? r.px[(size_t(sy) * r.w + sx) * r.c + (r.c == 1 ? 0 : ch)] : 0;
    }
}

}  // namespace

void Transform::emit(const Placed& p, Rng& rng, float* out, TransformScratch& s) const {
  const int S = cfg_.size, C = cfg_.channels;
  if (cfg_.train && (randaug_ || cfg_.erasing.prob > 0)) {
    // RandomResizedCrop → flip → RandAugment (8-bit) → ToTensor + Normalize → RandomErasing
    window_u8(p, S, C, s.augmented);
    if (randaug_) randaug_->apply(s.augmented, rng, s.aug_tmp);
    const Image& a = s.augmented;
    for (int ch = 0; ch < C; ch++) {
      const float* lut = &lut_[size_t(ch) * 256];
      for (size_t i = 0; i < size_t(S) * S; i++) out[size_t(ch) * S * S + i] = lut[a.px[i * C + ch]];
    }
    if (cfg_.erasing.prob > 0) random_erase(out, C, S, S, cfg_.erasing, rng);
    return;
  }
  const Image& r = *p.r;
  if (p.top == 0 && p.left == 0 && r.w == S && r.h == S) {  // train crops: the window is the picture
    for (int ch = 0; ch < C; ch++) {
      const float* lut = &lut_[size_t(ch) * 256];
      const int rc = r.c == 1 ? 0 : ch;
      float* o = out + size_t(ch) * S * S;  // (S, S) plane of channel ch
      for (int y = 0; y < S; y++) {
        const uint8_t* row = &r.px[size_t(y) * S * r.c + rc];
        float* oy = o + size_t(y) * S;
        if (p.flip)
          for (int x = 0; x < S; x++) oy[x] = lut[row[size_t(S - 1 - x) * r.c]];
        else
          for (int x = 0; x < S; x++) oy[x] = lut[row[size_t(x) * r.c]];
      }
    }
    return;
  }
  for (int ch = 0; ch < C; ch++) {
    const float* lut = &lut_[size_t(ch) * 256];
    const int rc = r.c == 1 ? 0 : ch;
    float* o = out + size_t(ch) * S * S;  // (S, S) plane of channel ch
    for (int y = 0; y < S; y++) {
      const int sy = p.top + y;
      for (int x = 0; x < S; x++) {
        const int sx = p.left + (p.flip ? S - 1 - x : x);
        const bool inside = sy >= 0 && sy < r.h && sx >= 0 && sx < r.w;
        o[size_t(y) * S + x] = lut[inside ? r.px[(size_t(sy) * r.w + sx) * r.c + rc] : 0];
      }
    }
  }
}

void Transform::apply(const Image& img, Rng& rng, float* out, TransformScratch& s) const {
  emit(place(cfg_, img, rng, s), rng, out, s);
}

void Transform::apply_u8(const Image& img, Rng& rng, Image& out, TransformScratch& s) const {
  window_u8(place(cfg_, img, rng, s), cfg_.size, cfg_.channels, out);
}

bool Transform::apply_encoded(const uint8_t* data, size_t size, const std::string& name, Rng& rng, float* out,
                              TransformScratch& s) const {
  Placed p;
  if (!place_encoded(cfg_, data, size, name, rng, s, p)) return false;
  emit(p, rng, out, s);
  return true;
}

bool Transform::apply_encoded_u8(const uint8_t* data, size_t size, const std::string& name, Rng& rng, Image& out,
                                 TransformScratch& s) const {
  Placed p;
  if (!place_encoded(cfg_, data, size, name, rng, s, p)) return false;
  window_u8(p, cfg_.size, cfg_.channels, out);
  return true;
}

}  // namespace mae
