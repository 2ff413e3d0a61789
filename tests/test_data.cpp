// Data layer: decoding (PNG exactly, JPEG closely), datasets and their detection, transforms (PIL-exact bicubic,
// torchvision crop parameters), and the loader's determinism (worker count, resume, sharding, corrupt files).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "data_files.h"

namespace fs = std::filesystem;
using namespace mae;

namespace {

// ------------------------------------------------------------------------------------------------------- helpers

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

// A PNG of any colour type and depth, straight from libpng. rows: packed bytes as the PNG stores them.
void write_png_raw(const std::string& path, int w, int h, int color, int depth, const std::vector<uint8_t>& rows,
                   const std::vector<png_color>& palette = {}, const std::vector<uint8_t>& trns = {},
                   bool interlace = false) {
  fs::create_directories(fs::path(path).parent_path());
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  ASSERT_EQ(setjmp(png_jmpbuf(png)), 0);
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, depth, color, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), int(palette.size()));
  if (!trns.empty()) png_set_tRNS(png, info, trns.data(), int(trns.size()), nullptr);
  png_write_info(png, info);
  size_t rowbytes = rows.size() / h;
  std::vector<png_bytep> ptrs(h);
  for (int y = 0; y < h; y++) ptrs[y] = const_cast<png_bytep>(rows.data() + y * rowbytes);
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  fclose(f);
}

void write_jpeg(const std::string& path, int w, int h, int c, const std::vector<uint8_t>& px, int quality = 100,
                J_COLOR_SPACE space = JCS_UNKNOWN) {
  fs::create_directories(fs::path(path).parent_path());
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = w;
  cinfo.image_height = h;
  cinfo.input_components = c;
  cinfo.in_color_space = space != JCS_UNKNOWN ? space : c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(px.data() + size_t(cinfo.next_scanline) * w * c);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  fclose(f);
}

Image pattern(int w, int h, int c, int salt = 0) {  // deterministic, high-frequency content
  Image im;
  im.resize(w, h, c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++) im.at(y, x, ch) = uint8_t((x * 37 + y * 11 * (ch + 1) + (x * y * 7) % 53 + ch * 50 + salt) & 255);
  return im;
}

Image smooth(int w, int h, int c) {  // JPEG-friendly
  Image im;
  im.resize(w, h, c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++) im.at(y, x, ch) = uint8_t(40 + 3 * x + 2 * y + 30 * ch);
  return im;
}

void expect_throws_naming(const std::function<void()>& f, const std::string& name) {
  try {
    f();
    ADD_FAILURE() << "no error for " << name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << "message does not name " << name << ": "
                                                                   << e.what();
  }
}

void write_idx(const std::string& path, const std::vector<int>& dims, const std::vector<uint8_t>& data, bool gz) {
  std::vector<uint8_t> b = {0, 0, 8, uint8_t(dims.size())};
  for (int d : dims) b.insert(b.end(), {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)});
  b.insert(b.end(), data.begin(), data.end());
  if (!gz) return write_bytes(path, b);
  fs::create_directories(fs::path(path).parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, b.data(), unsigned(b.size()));
  gzclose(f);
}

uint64_t fnv1a(const std::vector<uint8_t>& b) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t x : b) h = (h ^ x) * 0x100000001b3ull;
  return h;
}

// Images of varied sizes held in memory; image 7 can be made to fail like a corrupt file.
class SynthDataset : public Dataset {
 public:
  explicit SynthDataset(size_t n, int bad = -1) : n_(n), bad_(bad) {}
  size_t size() const override { return n_; }
  int num_classes() const override { return 5; }
  int label(size_t i) const override { return int(i * 7 % 5); }
  int channels() const override { return 3; }
  void load(size_t i, Image& out) const override {
    if (int(i) == bad_) fail("image ", item_name(i), ": corrupt JPEG: test");
    out = pattern(20 + int(i % 13), 17 + int(i % 7), 3, int(i));
  }
  std::string name() const override { return "synth"; }
  std::string description() const override { return "synth"; }
  std::string item_name(size_t i) const override { return "synth/" + std::to_string(i) + ".png"; }
  std::vector<std::string> class_names() const override { return {"a", "b", "c", "d", "e"}; }

 private:
  size_t n_;
  int bad_;
};

struct Collected {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int32_t>> labels;
  std::vector<std::vector<int64_t>> indices;
  std::vector<int64_t> batch_ids;
};

Collected run_epoch(Loader& L, int epoch, int64_t first = 0) {
  Collected c;
  L.start_epoch(epoch, first);
  while (const Batch* b = L.next()) {
    c.images.push_back(b->images);
    c.labels.push_back(b->labels);
    c.indices.push_back(b->indices);
    c.batch_ids.push_back(b->index);
  }
  return c;
}

}  // namespace

// ------------------------------------------------------------------------------------------------------------ RNG

TEST(Rng, KeyedStreamsAreDeterministicAndDistinct) {
  Rng a = Rng::keyed(42, 3, 7), b = Rng::keyed(42, 3, 7), c = Rng::keyed(42, 7, 3), d = Rng::keyed(43, 3, 7);
  for (int i = 0; i < 10; i++) {
    uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
    EXPECT_NE(x, d.next_u64());
  }
  Rng r(123);
  double s = 0, s2 = 0, n = 20000;
  std::vector<int> hist(6, 0);
  for (int i = 0; i < n; i++) {
    double u = r.uniform();
    ASSERT_TRUE(u >= 0 && u < 1);
    float f = r.uniform_f();
    ASSERT_TRUE(f >= 0 && f < 1);
    uint64_t k = r.uniform_int(6);
    ASSERT_LT(k, 6u);
    hist[k]++;
    double z = r.normal();
    s += z, s2 += z * z;
  }
  for (int h : hist) EXPECT_NEAR(h, n / 6, 5 * std::sqrt(n / 6));
  EXPECT_NEAR(s / n, 0, 0.05);
  EXPECT_NEAR(s2 / n, 1, 0.05);
  // (key, counter) is the whole state
  Rng r2(r.key(), r.counter());
  EXPECT_EQ(r.next_u64(), r2.next_u64());
}

// --------------------------------------------------------------------------------------------------------- decode

TEST(Decode, PngAllColourTypesExact) {
  TempDir t;
  const int w = 5, h = 3;
  Image rgb = pattern(w, h, 3);
  // grey 8-bit
  Image g = pattern(w, h, 1);
  write_png_raw(t / "g.png", w, h, PNG_COLOR_TYPE_GRAY, 8, g.px);
  Image d = decode_image(t / "g.png");
  EXPECT_EQ(d.c, 1);
  EXPECT_EQ(d.w, w);
  EXPECT_EQ(d.h, h);
  EXPECT_EQ(d.px, g.px);
  // grey + alpha: alpha dropped
  std::vector<uint8_t> ga;
  for (uint8_t v : g.px) ga.insert(ga.end(), {v, uint8_t(255 - v)});
  write_png_raw(t / "ga.png", w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga);
  d = decode_image(t / "ga.png");
  EXPECT_EQ(d.c, 1);
  EXPECT_EQ(d.px, g.px);
  // RGB, and interlaced RGB
  write_png_raw(t / "rgb.png", w, h, PNG_COLOR_TYPE_RGB, 8, rgb.px);
  d = decode_image(t / "rgb.png");
  EXPECT_EQ(d.c, 3);
  EXPECT_EQ(d.px, rgb.px);
  Image big = pattern(19, 11, 3);
  write_png_raw(t / "adam7.png", 19, 11, PNG_COLOR_TYPE_RGB, 8, big.px, {}, {}, true);
  EXPECT_EQ(decode_image(t / "adam7.png").px, big.px);
  // RGBA: alpha dropped
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < rgb.px.size(); i += 3) rgba.insert(rgba.end(), {rgb.px[i], rgb.px[i + 1], rgb.px[i + 2], 7});
  write_png_raw(t / "rgba.png", w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba);
  d = decode_image(t / "rgba.png");
  EXPECT_EQ(d.c, 3);
  EXPECT_EQ(d.px, rgb.px);
  // palette (4-bit, with transparency): expanded to the palette colours
  std::vector<png_color> pal = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}, {255, 255, 255}};
  std::vector<uint8_t> idx(w * h), packed;
  for (int i = 0; i < w * h; i++) idx[i] = uint8_t(i % 4);
  for (int y = 0; y < h; y++) {
    int rowbytes = (w * 4 + 7) / 8;
    for (int b = 0; b < rowbytes; b++) {
      uint8_t hi = idx[y * w + 2 * b], lo = 2 * b + 1 < w ? idx[y * w + 2 * b + 1] : 0;
      packed.push_back(uint8_t(hi << 4 | lo));
    }
  }
  write_png_raw(t / "pal.png", w, h, PNG_COLOR_TYPE_PALETTE, 4, packed, pal, {0, 128});
  d = decode_image(t / "pal.png");
  ASSERT_EQ(d.c, 3);
  for (int i = 0; i < w * h; i++) {
    EXPECT_EQ(d.px[3 * i], pal[idx[i]].red);
    EXPECT_EQ(d.px[3 * i + 1], pal[idx[i]].green);
    EXPECT_EQ(d.px[3 * i + 2], pal[idx[i]].blue);
  }
  // 16-bit RGB: the high byte (PIL's RGB;16B); 16-bit grey: PIL's "I;16", clipped at 255 by convert("L"/"RGB")
  std::vector<uint8_t> rgb16, g16, g16_want;
  for (uint8_t v : rgb.px) rgb16.insert(rgb16.end(), {v, uint8_t(v ^ 0x5a)});
  for (int i = 0; i < w * h; i++) {
    const unsigned v = i == w * h - 1 ? 65535u : unsigned(i) * 37u;  // 0 … 518, then 65535
    g16.insert(g16.end(), {uint8_t(v >> 8), uint8_t(v & 0xff)});
    g16_want.push_back(uint8_t(std::min(v, 255u)));
  }
  write_png_raw(t / "rgb16.png", w, h, PNG_COLOR_TYPE_RGB, 16, rgb16);
  write_png_raw(t / "g16.png", w, h, PNG_COLOR_TYPE_GRAY, 16, g16);
  EXPECT_EQ(decode_image(t / "rgb16.png").px, rgb.px);
  Image d16 = decode_image(t / "g16.png");
  EXPECT_EQ(d16.c, 1);
  EXPECT_EQ(d16.px, g16_want);
  // 1-bit grey: 0 / 255
  std::vector<uint8_t> bits = {0b10100000, 0b01000000, 0b11111000};
  write_png_raw(t / "g1.png", w, h, PNG_COLOR_TYPE_GRAY, 1, bits);
  d = decode_image(t / "g1.png");
  std::vector<uint8_t> want = {255, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255};
  EXPECT_EQ(d.px, want);
}

TEST(Decode, JpegRgbGreyCmyk) {
  TempDir t;
  Image rgb = smooth(32, 24, 3), g = smooth(32, 24, 1);
  write_jpeg(t / "rgb.jpg", 32, 24, 3, rgb.px);
  write_jpeg(t / "g.jpg", 32, 24, 1, g.px);
  for (auto [file, src] : {std::pair{t / "rgb.jpg", &rgb}, std::pair{t / "g.jpg", &g}}) {
    Image d = decode_image(file);
    ASSERT_EQ(d.w, 32);
    ASSERT_EQ(d.h, 24);
    ASSERT_EQ(d.c, src->c);
    int maxdiff = 0;
    for (size_t i = 0; i < d.px.size(); i++) maxdiff = std::max(maxdiff, std::abs(int(d.px[i]) - int(src->px[i])));
    EXPECT_LE(maxdiff, 4) << file;
  }
  // Adobe CMYK (stored inverted, as Photoshop does): cyan ink only → RGB (0, 255, 255); libjpeg writes the Adobe
  // marker for CMYK.
  std::vector<uint8_t> cmyk;
  for (int i = 0; i < 16 * 16; i++) cmyk.insert(cmyk.end(), {0, 255, 255, 255});
  write_jpeg(t / "cmyk.jpg", 16, 16, 4, cmyk, 100, JCS_CMYK);
  Image d = decode_image(t / "cmyk.jpg");
  ASSERT_EQ(d.c, 3);
  EXPECT_NEAR(d.at(8, 8, 0), 0, 2);
  EXPECT_NEAR(d.at(8, 8, 1), 255, 2);
  EXPECT_NEAR(d.at(8, 8, 2), 255, 2);
  // A PNG named .JPEG (there is one in ImageNet) is recognised by its bytes.
  write_png_raw(t / "fake.JPEG", 32, 24, PNG_COLOR_TYPE_RGB, 8, rgb.px);
  EXPECT_EQ(decode_image(t / "fake.JPEG").px, rgb.px);
}

TEST(Decode, EncodePngRoundTripAtomic) {
  TempDir t;
  for (int c = 1; c <= 4; c++) {
    Image im = pattern(9, 4, c);
    std::string p = t / ("out" + std::to_string(c) + ".png");
    encode_png(p, im);
    Image d = decode_image(p);
    ASSERT_EQ(d.c, c == 2 ? 1 : c == 4 ? 3 : c);
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 9; x++)
        for (int ch = 0; ch < d.c; ch++) ASSERT_EQ(d.at(y, x, ch), im.at(y, x, ch));
  }
  for (const auto& e : fs::directory_iterator(t.path))  // no temporary left behind
    EXPECT_EQ(e.path().extension(), ".png") << e.path();
  expect_throws_naming([&] { encode_png(t / "nodir/x.png", pattern(2, 2, 3)); }, t / "nodir/x.png");
  EXPECT_FALSE(fs::exists(t / "nodir"));
}

// ok.png and ok.jpg (quality 90) of an image, and their bytes.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> ok_png_and_jpeg(const TempDir& t, const Image& im) {
  write_png_raw(t / "ok.png", im.w, im.h, im.c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, 8, im.px);
  write_jpeg(t / "ok.jpg", im.w, im.h, im.c, im.px, 90);
  return {read_bytes(t / "ok.png"), read_bytes(t / "ok.jpg")};
}

// The pixel budget (core/limits.h: PIL's DecompressionBombError threshold) is checked from the header: a tiny file
// claiming 60000×60000 pixels is refused before any pixel buffer exists, naming the file and the limit.
TEST(Decode, PixelLimitCheckedFromTheHeader) {
  TempDir t;
  auto [png, jpg] = ok_png_and_jpeg(t, smooth(8, 8, 1));
  auto be32 = [](uint8_t* p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = uint8_t(v); };
  be32(&png[16], 60000), be32(&png[20], 60000);  // IHDR width, height; then its CRC over type + data
  be32(&png[29], uint32_t(crc32(0, png.data() + 12, 17)));
  write_bytes(t / "bomb.png", png);
  size_t sof = 2;  // the SOF0 marker: FF C0, length, precision, height, width
  while (sof + 9 < jpg.size() && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0)) sof++;
  ASSERT_LT(sof + 9, jpg.size());
  jpg[sof + 5] = 60000 >> 8, jpg[sof + 6] = 60000 & 0xff, jpg[sof + 7] = 60000 >> 8, jpg[sof + 8] = 60000 & 0xff;
  write_bytes(t / "bomb.jpg", jpg);
  for (const std::string& p : {t / "bomb.png", t / "bomb.jpg"}) {
    try {
      decode_image(p);
      ADD_FAILURE() << p << " decoded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p + ": 60000×60000 pixels is more than the limit of 178956970"),
                std::string::npos) << e.what();
    }
  }
}

TEST(Decode, CorruptTruncatedAndForeignFilesNameTheFile) {
  TempDir t;
  Image rgb = smooth(32, 24, 3);
  auto [png, jpg] = ok_png_and_jpeg(t, rgb);
  // truncations at several points, each must fail (JPEG: libjpeg alone would pad with grey and succeed)
  for (size_t keep : {size_t(12), png.size() / 2, png.size() - 5}) {
    std::string p = t / ("trunc" + std::to_string(keep) + ".png");
    write_bytes(p, std::vector<uint8_t>(png.begin(), png.begin() + keep));
    expect_throws_naming([&] { decode_image(p); }, p);
  }
  for (size_t keep : {size_t(4), size_t(100), jpg.size() / 2, jpg.size() - 2}) {
    std::string p = t / ("trunc" + std::to_string(keep) + ".jpg");
    write_bytes(p, std::vector<uint8_t>(jpg.begin(), jpg.begin() + keep));
    expect_throws_naming([&] { decode_image(p); }, p);
  }
  // PNG: a flipped byte inside IDAT breaks its CRC
  auto bad = png;
  bad[bad.size() - 20] ^= 0xff;
  write_bytes(t / "crc.png", bad);
  expect_throws_naming([&] { decode_image(t / "crc.png"); }, t / "crc.png");
  // JPEG: garbage in the headers after the SOI marker
  bad = jpg;
  for (size_t i = 2; i < 40; i++) bad[i] = uint8_t(i * 13);
  write_bytes(t / "hdr.jpg", bad);
  expect_throws_naming([&] { decode_image(t / "hdr.jpg"); }, t / "hdr.jpg");
  write_bytes(t / "text.png", {'h', 'e', 'l', 'l', 'o'});
  expect_throws_naming([&] { decode_image(t / "text.png"); }, t / "text.png");
  write_bytes(t / "empty.jpg", {});
  expect_throws_naming([&] { decode_image(t / "empty.jpg"); }, t / "empty.jpg");
  expect_throws_naming([&] { decode_image(t / "missing.jpg"); }, t / "missing.jpg");
  // the good ones still decode after all those jumps
  EXPECT_EQ(decode_image(t / "ok.png").px, rgb.px);
  EXPECT_EQ(decode_image(t / "ok.jpg").w, 32);
}

// ------------------------------------------------------------------------------------------------------- datasets

TEST(Dataset, IdxPlainAndGzip) {
  TempDir t;
  const int n = 6, h = 3, w = 4;
  std::vector<uint8_t> px(n * h * w), lab = {3, 1, 4, 1, 5, 9}, px2(2 * h * w), lab2 = {2, 7};
  for (size_t i = 0; i < px.size(); i++) px[i] = uint8_t(i * 5);
  for (size_t i = 0; i < px2.size(); i++) px2[i] = uint8_t(200 - i);
  write_idx(t / "mn/train-images-idx3-ubyte", {n, h, w}, px, false);
  write_idx(t / "mn/train-labels-idx1-ubyte", {n}, lab, false);
  write_idx(t / "mn/t10k-images-idx3-ubyte.gz", {2, h, w}, px2, true);
  write_idx(t / "mn/t10k-labels-idx1-ubyte.gz", {2}, lab2, true);
  auto tr = open_dataset(t / "mn", "train");
  EXPECT_EQ(tr->name(), "idx");
  ASSERT_EQ(tr->size(), size_t(n));
  EXPECT_EQ(tr->num_classes(), 10);
  EXPECT_EQ(tr->channels(), 1);
  EXPECT_EQ(tr->height(), h);
  EXPECT_EQ(tr->width(), w);
  for (int i = 0; i < n; i++) {
    EXPECT_EQ(tr->label(i), lab[i]);
    Image im = tr->load(i);
    ASSERT_EQ(im.c, 1);
    EXPECT_EQ(im.px, std::vector<uint8_t>(px.begin() + i * h * w, px.begin() + (i + 1) * h * w));
  }
  auto te = open_dataset(t / "mn", "test");
  ASSERT_EQ(te->size(), 2u);
  EXPECT_EQ(te->label(1), 7);
  EXPECT_EQ(te->load(1).px, std::vector<uint8_t>(px2.begin() + h * w, px2.end()));
  // normalisation: the train split's, for both splits
  double s = 0, s2 = 0;
  for (uint8_t v : px) s += v / 255.0, s2 += (v / 255.0) * (v / 255.0);
  double mean = s / px.size(), sd = std::sqrt(s2 / px.size() - mean * mean);
  for (auto* ds : {tr.get(), te.get()}) {
    Normalization nm = ds->normalization();
    ASSERT_EQ(nm.mean.size(), 1u);
    EXPECT_NEAR(nm.mean[0], mean, 1e-6);
    EXPECT_NEAR(nm.std[0], sd, 1e-6);
  }
  // broken files: truncated data, count mismatch, wrong rank — each names its file
  write_idx(t / "cut/train-images-idx3-ubyte.gz", {n, h, w}, std::vector<uint8_t>(px.begin(), px.end() - 5), true);
  write_idx(t / "cut/train-labels-idx1-ubyte.gz", {n}, lab, true);
  expect_throws_naming([&] { open_dataset(t / "cut", "train"); }, t / "cut/train-images-idx3-ubyte.gz");
  auto gz = read_bytes(t / "mn/t10k-images-idx3-ubyte.gz");
  write_bytes(t / "cutgz/t10k-images-idx3-ubyte.gz", std::vector<uint8_t>(gz.begin(), gz.end() - 12));
  write_idx(t / "cutgz/t10k-labels-idx1-ubyte.gz", {2}, lab2, true);
  expect_throws_naming([&] { open_dataset(t / "cutgz", "test"); }, t / "cutgz/t10k-images-idx3-ubyte.gz");
  write_idx(t / "mis/train-images-idx3-ubyte", {n, h, w}, px, false);
  write_idx(t / "mis/train-labels-idx1-ubyte", {n - 1}, std::vector<uint8_t>(lab.begin(), lab.end() - 1), false);
  expect_throws_naming([&] { open_dataset(t / "mis", "train"); }, t / "mis/train-labels-idx1-ubyte");
  write_idx(t / "rank/train-images-idx3-ubyte", {n, h * w}, px, false);
  write_idx(t / "rank/train-labels-idx1-ubyte", {n}, lab, false);
  expect_throws_naming([&] { open_dataset(t / "rank", "train"); }, t / "rank/train-images-idx3-ubyte");
  expect_throws_naming([&] { open_dataset(t / "mn2", "train"); }, t / "mn2");
}

TEST(Dataset, Cifar10Binary) {
  TempDir t;
  auto record = [](int label, int salt) {
    std::vector<uint8_t> r(CifarDataset::kRecord);
    r[0] = uint8_t(label);
    for (int i = 1; i < int(r.size()); i++) r[i] = uint8_t(i * 3 + salt);
    return r;
  };
  auto batch = [&](std::vector<int> labels, int salt) {
    std::vector<uint8_t> b;
    for (size_t i = 0; i < labels.size(); i++) {
      auto r = record(labels[i], salt + int(i));
      b.insert(b.end(), r.begin(), r.end());
    }
    return b;
  };
  write_bytes(t / "c/cifar-10-batches-bin/data_batch_1.bin", batch({1, 2, 3}, 0));
  write_bytes(t / "c/cifar-10-batches-bin/data_batch_2.bin", batch({9, 0}, 10));
  write_bytes(t / "c/cifar-10-batches-bin/test_batch.bin", batch({4, 5}, 20));
  auto tr = open_dataset(t / "c", "train");  // finds the tarball's folder
  EXPECT_EQ(tr->name(), "cifar10");
  ASSERT_EQ(tr->size(), 5u);
  EXPECT_EQ(tr->num_classes(), 10);
  EXPECT_EQ(tr->class_names()[0], "airplane");
  std::vector<int> labels;
  for (size_t i = 0; i < 5; i++) labels.push_back(tr->label(i));
  EXPECT_EQ(labels, (std::vector<int>{1, 2, 3, 9, 0}));
  Image im = tr->load(3);  // data_batch_2 record 0, salt 10: CHW in the file, HWC here
  ASSERT_EQ(im.w, 32);
  ASSERT_EQ(im.c, 3);
  for (int c = 0; c < 3; c++)
    for (int p : {0, 33, 1023}) EXPECT_EQ(im.px[p * 3 + c], uint8_t((1 + c * 1024 + p) * 3 + 10));
  EXPECT_NE(tr->item_name(3).find("data_batch_2.bin record 0"), std::string::npos);
  auto te = open_dataset(t / "c/cifar-10-batches-bin", "val");
  ASSERT_EQ(te->size(), 2u);
  EXPECT_EQ(te->label(1), 5);
  EXPECT_EQ(te->normalization().mean.size(), 3u);
  auto b = batch({1}, 0);
  b.pop_back();
  write_bytes(t / "bad/data_batch_1.bin", b);
  expect_throws_naming([&] { open_dataset(t / "bad", "train"); }, t / "bad/data_batch_1.bin");
}

TEST(Dataset, FoldersSplitsClassesAndFlat) {
  TempDir t;
  Image a = pattern(6, 5, 3, 1), b = pattern(7, 4, 3, 2), g = pattern(3, 3, 1, 3);
  // ImageNet-style: train/<class>/..., val/<class>/...; class order and file order sorted; nested files found
  write_png_raw(t / "in/train/dog/b.png", 7, 4, PNG_COLOR_TYPE_RGB, 8, b.px);
  write_png_raw(t / "in/train/dog/a.PNG", 6, 5, PNG_COLOR_TYPE_RGB, 8, a.px);
  write_png_raw(t / "in/train/cat/z/deep.png", 3, 3, PNG_COLOR_TYPE_GRAY, 8, g.px);
  write_jpeg(t / "in/train/cat/x.JPEG", 16, 16, 3, smooth(16, 16, 3).px);
  write_bytes(t / "in/train/cat/notes.txt", {'x'});
  write_png_raw(t / "in/train/.hidden/h.png", 3, 3, PNG_COLOR_TYPE_GRAY, 8, g.px);
  write_png_raw(t / "in/train/cat/.ipynb_checkpoints/c.png", 3, 3, PNG_COLOR_TYPE_GRAY, 8, g.px);
  write_png_raw(t / "in/val/cat/v.png", 6, 5, PNG_COLOR_TYPE_RGB, 8, a.px);
  write_png_raw(t / "in/val/dog/w.png", 6, 5, PNG_COLOR_TYPE_RGB, 8, a.px);
  auto tr = open_dataset(t / "in", "train");
  EXPECT_EQ(tr->name(), "folder");
  EXPECT_EQ(tr->channels(), 3);
  EXPECT_EQ(tr->class_names(), (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(tr->size(), 4u);
  // torchvision order: by directory ("cat" before "cat/z"), then name; "a.PNG" < "b.png"
  std::vector<std::string> items;
  for (size_t i = 0; i < 4; i++) items.push_back(fs::path(tr->item_name(i)).lexically_relative(t / "in/train"));
  EXPECT_EQ(items, (std::vector<std::string>{"cat/x.JPEG", "cat/z/deep.png", "dog/a.PNG", "dog/b.png"}));
  EXPECT_EQ(tr->label(0), 0);
  EXPECT_EQ(tr->label(1), 0);
  EXPECT_EQ(tr->label(2), 1);
  EXPECT_EQ(tr->load(2).px, a.px);
  EXPECT_EQ(tr->load(1).c, 1);  // grey stays grey until the transform
  EXPECT_NE(tr->description().find("1 files without"), std::string::npos) << tr->description();
  auto va = open_dataset(t / "in", "test");  // test falls back to val/
  ASSERT_EQ(va->size(), 2u);
  EXPECT_EQ(va->label(1), 1);
  // a class folder given directly, and a flat folder (one class, label 0)
  EXPECT_EQ(open_dataset(t / "in/train", "train")->size(), 4u);
  write_png_raw(t / "flat/2.png", 6, 5, PNG_COLOR_TYPE_RGB, 8, a.px);
  write_png_raw(t / "flat/1.png", 7, 4, PNG_COLOR_TYPE_RGB, 8, b.px);
  write_bytes(t / "flat/readme.md", {'x'});
  auto flat = open_dataset(t / "flat", "val");
  ASSERT_EQ(flat->size(), 2u);
  EXPECT_EQ(flat->num_classes(), 1);
  EXPECT_EQ(flat->label(1), 0);
  EXPECT_EQ(flat->load(0).px, b.px);
  // errors name the path
  fs::create_directories(t / "empty");
  expect_throws_naming([&] { open_dataset(t / "empty", "train"); }, t / "empty");
  expect_throws_naming([&] { open_dataset(t / "nowhere", "train"); }, t / "nowhere");
  expect_throws_naming([&] { open_dataset(t / "flat/1.png", "train"); }, t / "flat/1.png");
  fs::create_directories(t / "onlytrain/train/x");
  write_png_raw(t / "onlytrain/train/x/1.png", 7, 4, PNG_COLOR_TYPE_RGB, 8, b.px);
  expect_throws_naming([&] { open_dataset(t / "onlytrain", "val"); }, t / "onlytrain");
  EXPECT_THROW(open_dataset(t / "flat", "holdout"), Error);
}

TEST(Dataset, FashionMnistDefault) {
  if (!fs::exists(std::string(default_data_path()) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto tr = open_dataset("", "train");
  auto te = open_dataset("", "test");
  EXPECT_EQ(tr->size(), 60000u);
  EXPECT_EQ(te->size(), 10000u);
  EXPECT_EQ(tr->num_classes(), 10);
  EXPECT_EQ(te->num_classes(), 10);
  EXPECT_EQ(tr->height(), 28);
  EXPECT_EQ(tr->class_names()[9], "Ankle boot");
  Normalization n = tr->normalization();  // the well-known Fashion-MNIST constants
  EXPECT_NEAR(n.mean[0], 0.2860, 1e-3);
  EXPECT_NEAR(n.std[0], 0.3530, 1e-3);
}

// ----------------------------------------------------------------------------------------------------- transforms

TEST(Transforms, RandomResizedCropParams) {
  for (auto [H, W] : {std::pair{224, 224}, std::pair{28, 28}, std::pair{375, 500}, std::pair{600, 90}}) {
    for (uint64_t k = 0; k < 500; k++) {
      Rng r1 = Rng::keyed(5, 1, k), r2 = Rng::keyed(5, 1, k);
      CropBox b = random_resized_crop_params(H, W, 0.2, 1.0, 3.0 / 4, 4.0 / 3, r1);
      CropBox b2 = random_resized_crop_params(H, W, 0.2, 1.0, 3.0 / 4, 4.0 / 3, r2);
      ASSERT_EQ(b.top, b2.top);
      ASSERT_EQ(b.left, b2.left);
      ASSERT_EQ(b.height, b2.height);
      ASSERT_EQ(b.width, b2.width);
      ASSERT_GE(b.top, 0);
      ASSERT_GE(b.left, 0);
      ASSERT_GT(b.height, 0);
      ASSERT_GT(b.width, 0);
      ASSERT_LE(b.top + b.height, H);
      ASSERT_LE(b.left + b.width, W);
      // w, h are sqrt(area·ratio), sqrt(area/ratio) rounded: area ≥ 0.2 and ratio in [3/4, 4/3] up to ±0.5 px
      ASSERT_GE((b.width + 0.5) * (b.height + 0.5), 0.2 * H * W);
      ASSERT_GE((b.width + 0.5) / std::max(b.height - 0.5, 0.5), 0.75);
      ASSERT_LE((b.width - 0.5) / (b.height + 0.5), 4.0 / 3);
    }
  }
  // a 1×100 strip can never fit: the fallback is the central crop clamped to ratio 3/4: w 1, h round(4/3) = 1
  Rng r(9);
  CropBox f = random_resized_crop_params(100, 1, 0.2, 1.0, 3.0 / 4, 4.0 / 3, r);
  EXPECT_EQ(f.top, 49);
  EXPECT_EQ(f.left, 0);
  EXPECT_EQ(f.height, 1);
  EXPECT_EQ(f.width, 1);
  // an image whose ratio is inside the range falls back to the whole image (scale_min > 1 forces the fallback)
  f = random_resized_crop_params(30, 36, 1.5, 2.0, 3.0 / 4, 4.0 / 3, r);
  EXPECT_EQ(f.height, 30);
  EXPECT_EQ(f.width, 36);
  // different keys give different crops
  std::set<std::tuple<int, int, int, int>> seen;
  for (uint64_t k = 0; k < 50; k++) {
    Rng rk = Rng::keyed(5, 1, k);
    CropBox b = random_resized_crop_params(224, 224, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rk);
    seen.insert({b.top, b.left, b.height, b.width});
  }
  EXPECT_GT(seen.size(), 45u);
}

TEST(Transforms, BicubicMatchesPillow) {
  // Hashes of Pillow 9.4's im.crop((j, i, j+w, i+h)).resize((ow, oh), Image.BICUBIC) on pattern(37, 29, c),
  // made with /usr/bin/python3 (PIL). Covers down- and upscaling, mixed directions, grey and RGB.
  struct Case {
    int c;
    CropBox box;
    int ow, oh;
    uint64_t hash;
  } cases[] = {
      {3, {0, 0, 29, 37}, 16, 16, 0xb89e98acea206bf5ull}, {3, {5, 3, 10, 12}, 24, 24, 0xeed4f784bd52c2ffull},
      {3, {2, 1, 20, 30}, 50, 13, 0x04f6c6a470ff2bf6ull}, {1, {0, 0, 29, 37}, 7, 9, 0x20ef00b3c59fe2aeull},
      {1, {4, 6, 20, 9}, 28, 28, 0xba23eb6cf97a3ec2ull},  {3, {0, 0, 29, 37}, 37, 20, 0xe600b658e0dcc2b4ull},
  };
  ResampleScratch s;
  for (const auto& k : cases) {
    Image src = pattern(37, 29, k.c), out;
    resize_bicubic(src, k.box, k.ow, k.oh, out, s);
    EXPECT_EQ(fnv1a(out.px), k.hash) << "c " << k.c << " box " << k.box.top << "," << k.box.left << " "
                                     << k.box.height << "x" << k.box.width << " -> " << k.ow << "x" << k.oh;
  }
}

TEST(Transforms, BicubicConstantAndRamp) {
  Image c;
  c.resize(40, 30, 3);
  std::fill(c.px.begin(), c.px.end(), 173);
  for (auto [w, h] : {std::pair{13, 9}, std::pair{97, 61}, std::pair{40, 7}, std::pair{5, 300}}) {
    Image r = resize_bicubic(c, w, h);
    ASSERT_EQ(r.w, w);
    for (uint8_t v : r.px) ASSERT_EQ(v, 173);
  }
  // horizontal ramp v = 2x + 20: away from the borders the resampled values follow the line at the sample centres
  Image ramp;
  ramp.resize(100, 4, 1);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 100; x++) ramp.at(y, x, 0) = uint8_t(2 * x + 20);
  for (int ow : {50, 37, 173}) {
    Image r = resize_bicubic(ramp, ow, 4);
    double scale = 100.0 / ow;
    for (int x = 0; x < ow; x++) {
      double center = (x + 0.5) * scale - 0.5;
      if (center < 2 * std::max(1.0, scale) + 1 || center > 99 - 2 * std::max(1.0, scale) - 1) continue;
      for (int y = 0; y < 4; y++) ASSERT_NEAR(r.at(y, x, 0), 2 * center + 20, 1.0) << "width " << ow << " x " << x;
    }
  }
}

TEST(Transforms, EvalResizeCropNormaliseAndChannels) {
  TransformConfig cfg;
  cfg.train = false;
  cfg.size = 28;
  cfg.channels = 3;
  cfg.norm = imagenet_normalization();
  Transform tf(cfg);
  Image src = pattern(40, 60, 3);
  std::vector<float> out(3 * 28 * 28);
  TransformScratch s;
  Rng rng(1);
  tf.apply(src, rng, out.data(), s);
  // by hand: shorter side 40 → int(28 / 0.875) = 32, longer int(32·60/40) = 48; centre crop 28 at (10, 2)
  auto [rh, rw] = shorter_side_size(60, 40, 32);
  EXPECT_EQ(rh, 48);
  EXPECT_EQ(rw, 32);
  Image r = resize_bicubic(src, rw, rh);
  CropBox cb = center_crop_box(rh, rw, 28, 28);
  EXPECT_EQ(cb.top, 10);
  EXPECT_EQ(cb.left, 2);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < 28; y++)
      for (int x = 0; x < 28; x++) {
        float v = float(r.at(cb.top + y, cb.left + x, c)) / 255.0f;
        ASSERT_EQ(out[(c * 28 + y) * 28 + x], (v - mean[c]) / sd[c]);
      }
  // crop larger than the image pads with zeros (torchvision CenterCrop), then normalises them
  cfg.crop_pct = 2.0;  // shorter side → 14, crop 28
  Transform pad(cfg);
  pad.apply(src, rng, out.data(), s);
  EXPECT_EQ(out[0], (0.0f - mean[0]) / sd[0]);
  // grey source, RGB model: channels replicated; RGB source, grey model: PIL luma before resampling
  Image g = pattern(28, 28, 1);
  cfg.crop_pct = 1.0;
  cfg.norm = {};
  Transform same(cfg);
  same.apply(g, rng, out.data(), s);
  for (int p = 0; p < 28 * 28; p++) {
    ASSERT_EQ(out[p], g.px[p] / 255.0f);
    ASSERT_EQ(out[28 * 28 + p], out[p]);
    ASSERT_EQ(out[2 * 28 * 28 + p], out[p]);
  }
  cfg.channels = 1;
  Transform grey(cfg);
  Image rgb = pattern(28, 28, 3);
  grey.apply(rgb, rng, out.data(), s);
  for (int p = 0; p < 28 * 28; p++) {
    int l = (rgb.px[3 * p] * 19595 + rgb.px[3 * p + 1] * 38470 + rgb.px[3 * p + 2] * 7471 + 0x8000) >> 16;
    ASSERT_EQ(out[p], l / 255.0f);
  }
}

TEST(Transforms, TrainIsCropResizeFlipPerKey) {
  TransformConfig cfg;
  cfg.size = 16;
  cfg.channels = 3;
  Transform tf(cfg);
  Image src = pattern(37, 29, 3), got, want;
  TransformScratch s;
  int flips = 0;
  for (uint64_t k = 0; k < 40; k++) {
    Rng a = Rng::keyed(1, 2, k), b = Rng::keyed(1, 2, k);
    tf.apply_u8(src, a, got, s);
    CropBox box = random_resized_crop_params(29, 37, 0.2, 1.0, 3.0 / 4, 4.0 / 3, b);
    bool flip = b.uniform() < 0.5;
    flips += flip;
    ResampleScratch rs;
    resize_bicubic(src, box, 16, 16, want, rs);
    for (int y = 0; y < 16; y++)
      for (int x = 0; x < 16; x++)
        for (int c = 0; c < 3; c++) ASSERT_EQ(got.at(y, x, c), want.at(y, flip ? 15 - x : x, c));
  }
  EXPECT_GT(flips, 5);
  EXPECT_LT(flips, 35);
}

// --------------------------------------------------------------------------------------------------------- loader

TEST(Loader, BatchesDoNotDependOnWorkerCount) {
  SynthDataset ds(53);
  LoaderConfig cfg;
  cfg.batch_size = 8;
  cfg.transform.size = 12;
  cfg.transform.norm = imagenet_normalization();
  cfg.seed = 77;
  cfg.drop_last = false;
  std::vector<Collected> runs;
  for (int workers : {1, 3, 0}) {
    cfg.num_workers = workers;
    Loader L(ds, cfg);
    EXPECT_EQ(L.batches_per_epoch(), 7);
    Collected e0 = run_epoch(L, 0), e1 = run_epoch(L, 1);
    e0.images.insert(e0.images.end(), e1.images.begin(), e1.images.end());
    e0.indices.insert(e0.indices.end(), e1.indices.begin(), e1.indices.end());
    e0.labels.insert(e0.labels.end(), e1.labels.begin(), e1.labels.end());
    runs.push_back(e0);
  }
  ASSERT_EQ(runs[0].images.size(), 14u);
  EXPECT_EQ(runs[0].images.back().size(), 5u * 3 * 12 * 12);  // 53 = 6·8 + 5
  for (int r : {1, 2}) {
    EXPECT_EQ(runs[r].indices, runs[0].indices);
    EXPECT_EQ(runs[r].labels, runs[0].labels);
    for (size_t b = 0; b < runs[0].images.size(); b++)
      ASSERT_EQ(std::memcmp(runs[r].images[b].data(), runs[0].images[b].data(), runs[0].images[b].size() * 4), 0)
          << "run " << r << " batch " << b;
  }
  // each epoch is a permutation, different per epoch; labels follow the indices
  std::vector<int64_t> e0, e1;
  for (int b = 0; b < 7; b++) e0.insert(e0.end(), runs[0].indices[b].begin(), runs[0].indices[b].end());
  for (int b = 7; b < 14; b++) e1.insert(e1.end(), runs[0].indices[b].begin(), runs[0].indices[b].end());
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  for (int i = 0; i < 53; i++) ASSERT_EQ(e0[i], i);
  for (size_t b = 0; b < runs[0].indices.size(); b++)
    for (size_t i = 0; i < runs[0].indices[b].size(); i++)
      ASSERT_EQ(runs[0].labels[b][i], ds.label(size_t(runs[0].indices[b][i])));
}

TEST(Loader, ResumeAtBatchEqualsTailOfEpoch) {
  SynthDataset ds(40);
  LoaderConfig cfg;
  cfg.batch_size = 6;
  cfg.transform.size = 10;
  cfg.seed = 3;
  cfg.num_workers = 2;
  Loader L(ds, cfg);
  EXPECT_EQ(L.batches_per_epoch(), 6);  // drop_last
  Collected full = run_epoch(L, 4);
  // stop mid-epoch on purpose (prefetched batches are abandoned), then resume at batch 4
  L.start_epoch(4);
  L.next();
  Collected tail = run_epoch(L, 4, 4);
  ASSERT_EQ(tail.images.size(), 2u);
  EXPECT_EQ(tail.batch_ids, (std::vector<int64_t>{4, 5}));
  for (int b = 0; b < 2; b++) {
    EXPECT_EQ(tail.indices[b], full.indices[4 + b]);
    EXPECT_EQ(tail.images[b], full.images[4 + b]);
  }
  EXPECT_TRUE(run_epoch(L, 4, 6).images.empty());
  EXPECT_THROW(L.start_epoch(4, 7), Error);
}

TEST(Loader, ShardsAreDisjointSlicesOfTheGlobalBatch) {
  SynthDataset ds(29);
  LoaderConfig cfg;
  cfg.transform.size = 8;
  cfg.seed = 11;
  cfg.num_workers = 1;
  cfg.drop_last = false;
  cfg.batch_size = 12;  // the global batch of 3 ranks × 4
  Collected global;
  {
    Loader L(ds, cfg);
    global = run_epoch(L, 2);
  }
  cfg.batch_size = 4;
  cfg.world = 3;
  std::vector<Collected> ranks;
  for (int r = 0; r < 3; r++) {
    cfg.rank = r;
    Loader L(ds, cfg);
    EXPECT_EQ(L.batches_per_epoch(), 3);  // ceil(29 / 12)
    ranks.push_back(run_epoch(L, 2));
  }
  ASSERT_EQ(global.indices.size(), 3u);
  for (int b = 0; b < 3; b++) {
    std::vector<int64_t> joined;
    for (int r = 0; r < 3; r++) joined.insert(joined.end(), ranks[r].indices[b].begin(), ranks[r].indices[b].end());
    EXPECT_EQ(joined, global.indices[b]) << "batch " << b;  // disjoint, ordered, covering
  }
  EXPECT_EQ(ranks[0].indices[2].size() + ranks[1].indices[2].size() + ranks[2].indices[2].size(), 5u);
  // the rank's pixels equal the matching rows of the global batch
  size_t per = 3 * 8 * 8;
  EXPECT_TRUE(std::equal(ranks[1].images[0].begin(), ranks[1].images[0].end(), global.images[0].begin() + 4 * per));
}

TEST(Loader, CorruptFileStopsAtItsBatchNamingIt) {
  TempDir t;
  for (int i = 0; i < 12; i++)
    write_png_raw(t / ("f/" + std::to_string(10 + i) + ".png"), 9, 7, PNG_COLOR_TYPE_RGB, 8, pattern(9, 7, 3, i).px);
  write_bytes(t / "f/15.png", {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0});  // index 5 after sorting
  auto ds = open_dataset(t / "f", "train");
  LoaderConfig cfg;
  cfg.batch_size = 4;
  cfg.transform.size = 8;
  cfg.shuffle = false;
  cfg.num_workers = 3;
  Loader L(*ds, cfg);
  L.start_epoch(0);
  ASSERT_NE(L.next(), nullptr);  // batch 0: files 10..13
  expect_throws_naming([&] { L.next(); }, t / "f/15.png");
  // a new epoch start clears the state; the same failure repeats deterministically
  L.start_epoch(1, 1);
  expect_throws_naming([&] { L.next(); }, t / "f/15.png");
}
