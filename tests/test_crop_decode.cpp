// --decode fast (data/crop_decode.h): the crop box comes from the JPEG header and equals the exact path's box (same
// draws), a region decoded at scale 1 has the full decode's pixels, so the fast path is bit-identical to the exact
// one whenever no DCT scaling applies; with DCT scaling its pixels stay close (PSNR). Chroma subsamplings 4:4:4,
// 4:2:2, 4:2:0, grey and progressive files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/crop_decode.h"
#include "data/decode.h"
#include "data/transforms.h"
#include "data_files.h"

using namespace mae;

namespace {

struct JpegSpec {
  int w, h, c;
  int hs, vs;  // luma sampling factors: (1,1) 4:4:4, (2,1) 4:2:2, (2,2) 4:2:0
  bool progressive;
};

// A photo-like picture: smooth gradients, a few edges and some texture, so both DCT scaling and crops show.
std::vector<uint8_t> picture(int w, int h, int c, int salt) {
  std::vector<uint8_t> px(size_t(w) * h * c);
  Rng rng(uint64_t(salt) + 1);
  const double cx = w * (0.3 + 0.4 * rng.uniform()), cy = h * (0.3 + 0.4 * rng.uniform());
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++) {
        const double r = std::hypot(x - cx, y - cy);
        double v = 128 + 70 * std::sin(r / (9.0 + 3 * ch)) + 0.15 * (x - y) + (r < w / 5.0 ? 40 : 0);
        v += 12 * std::sin(x * 0.9 + ch) * std::cos(y * 0.7);
        px[(size_t(y) * w + x) * c + ch] = uint8_t(std::clamp(v, 0.0, 255.0));
      }
  return px;
}

std::vector<uint8_t> encode(const JpegSpec& s, int salt) {
  return test::encode_jpeg(picture(s.w, s.h, s.c, salt), s.w, s.h, s.c, 90, s.hs, s.vs, s.progressive);
}

const std::vector<JpegSpec> kSpecs = {
    {333, 251, 3, 2, 2, false}, {500, 375, 3, 2, 2, false}, {257, 190, 3, 2, 1, false},
    {201, 299, 3, 1, 1, false}, {311, 203, 1, 1, 1, false}, {420, 317, 3, 2, 2, true},
};

double psnr(const Image& a, const Image& b) {
  double se = 0;
  for (size_t i = 0; i < a.px.size(); i++) se += (double(a.px[i]) - b.px[i]) * (double(a.px[i]) - b.px[i]);
  const double mse = se / double(a.px.size());
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

TransformConfig train_cfg(int size, int channels) {
  TransformConfig tc;
  tc.size = size, tc.channels = channels, tc.train = true;
  return tc;
}

}  // namespace

TEST(CropDecode, HeaderSizeIsTheDecodedSize) {
  for (const JpegSpec& s : kSpecs) {
    const auto b = encode(s, 1);
    JpegInfo info;
    ASSERT_TRUE(read_jpeg_info(b.data(), b.size(), "x.jpg", info));
    Image full;
    decode_image_memory(b.data(), b.size(), "x.jpg", full);
    EXPECT_EQ(info.width, full.w);
    EXPECT_EQ(info.height, full.h);
    EXPECT_EQ(info.channels, full.c);
    EXPECT_FALSE(info.cmyk);
  }
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  JpegInfo info;
  EXPECT_FALSE(read_jpeg_info(png.data(), png.size(), "x.png", info));
}

// At scale 1 the decoded region holds exactly the full decode's pixels (crop + skip in libjpeg-turbo change which
// work is done, never the result): the basis of bit-identity.
TEST(CropDecode, RegionAtScale1EqualsFullDecode) {
  Rng rng(5);
  for (const JpegSpec& s : kSpecs) {
    const auto b = encode(s, 2);
    Image full, region;
    decode_image_memory(b.data(), b.size(), "x.jpg", full);
    for (int k = 0; k < 12; k++) {
      const int x0 = int(rng.uniform_int(uint64_t(s.w - 1))), y0 = int(rng.uniform_int(uint64_t(s.h - 1)));
      const int x1 = x0 + 1 + int(rng.uniform_int(uint64_t(s.w - x0))), y1 = y0 + 1 + int(rng.uniform_int(uint64_t(s.h - y0)));
      int rx0 = -1;
      decode_jpeg_region(b.data(), b.size(), "x.jpg", 1, x0, y0, x1, y1, region, rx0);
      ASSERT_LE(rx0, x0);
      ASSERT_GE(rx0 + region.w, x1);
      ASSERT_EQ(region.h, y1 - y0);
      for (int y = 0; y < region.h; y++)
        for (int x = x0 - rx0; x < x1 - rx0; x++)  // the margin beyond the region may differ (chroma edges)
          for (int ch = 0; ch < s.c; ch++)
            ASSERT_EQ(region.at(y, x, ch), full.at(y0 + y, rx0 + x, ch))
                << s.w << "x" << s.h << " sampling " << s.hs << s.vs << " prog " << s.progressive << " region ["
                << x0 << "," << x1 << ")x[" << y0 << "," << y1 << ") at (" << x << "," << y << ")";
    }
  }
}

// The geometry contract: the fast path draws the same box (from the header's size) and the same flip, with the same
// number of draws, so every later draw of the sample (and every other sample) is unchanged; where no DCT scaling
// applies its output is the exact path's, byte for byte.
TEST(CropDecode, FastBoxIsTheExactBoxAndScale1IsBitIdentical) {
  int identical = 0, scaled = 0;
  for (const JpegSpec& s : kSpecs)
    for (int channels : {3, 1})
      for (int S : {224, 96, 32}) {
        const auto b = encode(s, 3);
        Image full;
        decode_image_memory(b.data(), b.size(), "x.jpg", full);
        const Transform tf(train_cfg(S, channels));
        TransformScratch s1, s2;
        for (uint64_t key = 0; key < 24; key++) {
          Rng ra = Rng::keyed(11, 0, key), rb = ra, rc = ra, rd = ra;
          // the boxes: drawn from the decoded size and from the header's size
          JpegInfo info;
          ASSERT_TRUE(read_jpeg_info(b.data(), b.size(), "x.jpg", info));
          const CropBox be = random_resized_crop_params(full.h, full.w, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rc);
          const CropBox bf = random_resized_crop_params(info.height, info.width, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rd);
          ASSERT_EQ(be.top, bf.top);
          ASSERT_EQ(be.left, bf.left);
          ASSERT_EQ(be.height, bf.height);
          ASSERT_EQ(be.width, bf.width);
          Image exact, fast;
          tf.apply_u8(full, ra, exact, s1);
          ASSERT_TRUE(tf.apply_encoded_u8(b.data(), b.size(), "x.jpg", rb, fast, s2));
          ASSERT_EQ(ra.counter(), rb.counter()) << "the fast path must draw exactly what the exact path draws";
          ASSERT_EQ(exact.w, fast.w);
          ASSERT_EQ(exact.c, fast.c);
          if (crop_dct_denom(be, S, S) == 1) {
            ASSERT_EQ(exact.px, fast.px) << s.w << "x" << s.h << " S " << S << " C " << channels << " key " << key;
            identical++;
          } else {
            EXPECT_GT(psnr(exact, fast), 28.0) << s.w << "x" << s.h << " S " << S << " key " << key;
            scaled++;
          }
        }
      }
  EXPECT_GT(identical, 100);
  EXPECT_GT(scaled, 100);
}

TEST(CropDecode, DctScaleChoice) {
  EXPECT_EQ(crop_dct_denom({0, 0, 223, 500}, 224, 224), 1);
  EXPECT_EQ(crop_dct_denom({0, 0, 448, 448}, 224, 224), 2);
  EXPECT_EQ(crop_dct_denom({0, 0, 1000, 2000}, 224, 224), 4);
  EXPECT_EQ(crop_dct_denom({0, 0, 1792, 1800}, 224, 224), 8);
  EXPECT_EQ(crop_dct_denom({0, 0, 4000, 4000}, 224, 224), 8);  // never below 1/8
}

// PSNR of fast vs exact over a set where DCT scaling does apply (32-px crops of ~400-px pictures): reported in the
// README; the test keeps a floor under it.
TEST(CropDecode, PsnrOfScaledCrops) {
  double sum = 0, worst = 99;
  int n = 0;
  const Transform tf(train_cfg(32, 3));
  TransformScratch s1, s2;
  for (int salt = 0; salt < 16; salt++) {
    const JpegSpec s = kSpecs[size_t(salt) % kSpecs.size()];
    if (s.c != 3) continue;
    const auto b = encode(s, 100 + salt);
    Image full, exact, fast;
    decode_image_memory(b.data(), b.size(), "x.jpg", full);
    for (uint64_t key = 0; key < 8; key++) {
      Rng ra = Rng::keyed(3, uint64_t(salt), key), rb = ra;
      tf.apply_u8(full, ra, exact, s1);
      tf.apply_encoded_u8(b.data(), b.size(), "x.jpg", rb, fast, s2);
      const double p = psnr(exact, fast);
      sum += p, worst = std::min(worst, p), n++;
    }
  }
  std::printf("fast vs exact at 32 px: mean PSNR %.2f dB over %d crops, worst %.2f dB\n", sum / n, n, worst);
  EXPECT_GT(sum / n, 32.0);
  EXPECT_GT(worst, 26.0);
}

TEST(CropDecode, WhereItDoesNotApplyNothingIsDrawn) {
  const auto b = encode({64, 48, 3, 2, 2, false}, 0);
  TransformScratch s;
  Image out;
  TransformConfig ev = train_cfg(32, 3);
  ev.train = false;
  Rng r(1);
  EXPECT_FALSE(Transform(ev).apply_encoded_u8(b.data(), b.size(), "x.jpg", r, out, s));  // eval: exact path
  EXPECT_EQ(r.counter(), 0u);
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0};
  EXPECT_FALSE(Transform(train_cfg(32, 3)).apply_encoded_u8(png.data(), png.size(), "x.png", r, out, s));
  EXPECT_EQ(r.counter(), 0u);
  // a corrupt JPEG is an error naming it, on both paths
  auto cut = std::vector<uint8_t>(b.begin(), b.begin() + long(b.size() / 2));
  try {
    Transform(train_cfg(16, 3)).apply_encoded_u8(cut.data(), cut.size(), "cut.jpg", r, out, s);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.jpg"), std::string::npos) << e.what();
  }
}
