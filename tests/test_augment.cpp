// Fine-tuning augmentation: RandAugment's ops against PIL 9.4 on small grey and RGB images (hashes of PIL's output
// bytes, generated once with Pillow; plus hand-checked cases), RandAugment's policy parsing and determinism per
// key, timm RandomErasing bounds, Mixup / CutMix targets and images, the Beta sampler, and the train transform
// chain (crop → flip → RandAugment → normalise → erase).
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/mixup.h"
#include "data/randaugment.h"
#include "data/random_erasing.h"
#include "data/transforms.h"

using namespace mae;

namespace {

// The images the PIL hashes were made from: 23×19, grey g(x, y) and RGB (g, (3g + 50) % 256, (9x + 17y) % 256).
Image make_image(int c) {
  const int W = 23, H = 19;
  Image img;
  img.resize(W, H, c);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int g = ((x * x + 3 * y) * 29 + (x ^ y) * 7) % 200 + 20;
      const int v[3] = {g, (g * 3 + 50) % 256, (x * 9 + y * 17) % 256};
      for (int ch = 0; ch < c; ++ch) img.at(y, x, ch) = uint8_t(v[ch]);
    }
  return img;
}

uint64_t fnv(const Image& img) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t v : img.px) h = (h ^ v) * 1099511628211ull;
  return h;
}

struct PilCase {
  const char* op;
  double p;
  uint64_t grey, rgb;
};
// PIL 9.4: ImageOps / ImageEnhance / Image.transform(AFFINE, BICUBIC, fillcolor=(124, 116, 104)) / rotate.
const PilCase kPil[] = {
    {"autocontrast", 0, 0xac2f51ab3ffac293ull, 0x7a8c12421ef28631ull},
    {"equalize", 0, 0x43256b510687189full, 0x6b75e94ad431515dull},
    {"invert", 0, 0x76966835fb362ff6ull, 0x87151de30fd00976ull},
    {"posterize", 2, 0xeb40f34b1d356269ull, 0xc9850589096ba231ull},
    {"posterize", 0, 0xfd7ec8bfc2bd0669ull, 0x7139471688a97b71ull},
    {"solarize", 128, 0x2a978f4b912ca3f3ull, 0x78f7056b0501c38bull},
    {"solarize_add", 60, 0x4a1e2f05e93bf42full, 0x0f26d99a3fd6c84dull},
    {"color", 0.3, 0x8dd2df36200d4e3bull, 0x1fb3debb15d9a1beull},
    {"color", 1.8, 0x8dd2df36200d4e3bull, 0x6c6336ff249b84e3ull},
    {"contrast", 1.7, 0xd09bbb38d4321e61ull, 0x4fda75450a0b64d1ull},
    {"contrast", 0.4, 0xe5380f48cbd737a5ull, 0xbecb1affa0b9f411ull},
    {"brightness", 1.5, 0xbf3b9134a4b17a22ull, 0x84ffa104cd4aeecdull},
    {"brightness", 0.3, 0xaea51b1f3884acf7ull, 0x63c5d3b1f0954621ull},
    {"sharpness", 0.2, 0xc48017cc20f330c5ull, 0x4ca720649bd2e99aull},
    {"sharpness", 1.9, 0xcbb3b4eb105920daull, 0x4f02499e7ac6c211ull},
    {"rotate", 25.0, 0x42ffb3a205d51222ull, 0x9fae014fd8c40308ull},
    {"rotate", -13.5, 0x5539cda610013675ull, 0xda84809178da3861ull},
    {"shear_x", 0.3, 0xa636bae10a3e4255ull, 0x6a89285ad03d7e56ull},
    {"shear_y", -0.2, 0xdea3f6e3b6811c15ull, 0xc9010a323fedc39dull},
    {"translate_x", 0.4, 0xd8514b8de6db37d9ull, 0xf8e172ac700fc3baull},
    {"translate_y", -0.3, 0x17a33ac835084371ull, 0xfb7c6c88296d81dcull},
};

void run_op(const std::string& op, double p, Image& img) {
  Image tmp;
  const uint8_t fill[3] = {124, 116, 104};
  if (op == "autocontrast") aug::auto_contrast(img);
  else if (op == "equalize") aug::equalize(img);
  else if (op == "invert") aug::invert(img);
  else if (op == "posterize") aug::posterize(img, int(p));
  else if (op == "solarize") aug::solarize(img, int(p));
  else if (op == "solarize_add") aug::solarize_add(img, int(p));
  else if (op == "color") aug::color(img, float(p), tmp);
  else if (op == "contrast") aug::contrast(img, float(p));
  else if (op == "brightness") aug::brightness(img, float(p));
  else if (op == "sharpness") aug::sharpness(img, float(p), tmp);
  else if (op == "rotate") aug::rotate(img, p, fill, tmp);
  else if (op == "shear_x") aug::shear_x(img, p, fill, tmp);
  else if (op == "shear_y") aug::shear_y(img, p, fill, tmp);
  else if (op == "translate_x") aug::translate_x_rel(img, p, fill, tmp);
  else if (op == "translate_y") aug::translate_y_rel(img, p, fill, tmp);
  else FAIL() << op;
}

}  // namespace

TEST(RandAugmentOps, MatchPillowByteForByte) {
  for (const auto& c : kPil) {
    for (int ch : {1, 3}) {
      Image img = make_image(ch);
      run_op(c.op, c.p, img);
      EXPECT_EQ(fnv(img), ch == 1 ? c.grey : c.rgb) << c.op << "(" << c.p << ") on " << (ch == 1 ? "grey" : "RGB");
    }
  }
}

TEST(RandAugmentOps, HandCases) {
  Image img;
  img.resize(4, 1, 1);
  img.px = {0, 100, 128, 255};
  Image a = img;
  aug::invert(a);
  EXPECT_EQ(a.px, (std::vector<uint8_t>{255, 155, 127, 0}));
  a = img;
  aug::solarize(a, 128);  // invert what is ≥ 128
  EXPECT_EQ(a.px, (std::vector<uint8_t>{0, 100, 127, 0}));
  a = img;
  aug::solarize_add(a, 60);  // add below 128, saturating
  EXPECT_EQ(a.px, (std::vector<uint8_t>{60, 160, 128, 255}));
  a = img;
  aug::posterize(a, 2);  // keep the top 2 bits
  EXPECT_EQ(a.px, (std::vector<uint8_t>{0, 64, 128, 192}));
  a = img;
  aug::posterize(a, 8);
  EXPECT_EQ(a.px, img.px);
  a.px = {50, 60, 70, 90};
  aug::auto_contrast(a);  // lo 50 → 0, hi 90 → 255, int(ix·scale + offset)
  EXPECT_EQ(a.px, (std::vector<uint8_t>{0, 63, 127, 255}));
  a = img;
  aug::brightness(a, 0.0f);
  EXPECT_EQ(a.px, (std::vector<uint8_t>{0, 0, 0, 0}));
  a = img;
  aug::brightness(a, 0.5f);  // truncating blend with black
  EXPECT_EQ(a.px, (std::vector<uint8_t>{0, 50, 64, 127}));
  // An integer translation is an exact shift (bicubic at whole pixels), the vacated columns get the fill.
  Image g = make_image(1), t = g, tmp;
  const uint8_t fill = 7;
  aug::translate_x_rel(t, 3.0 / 23.0, &fill, tmp);  // 3 px: output (x, y) = input (x + 3, y)
  for (int y = 0; y < g.h; ++y)
    for (int x = 0; x < g.w; ++x) EXPECT_EQ(t.at(y, x, 0), x + 3 < g.w ? g.at(y, x + 3, 0) : 7) << x << "," << y;
  // Rotating by 0 or 360 degrees is the identity.
  t = g;
  aug::rotate(t, 360.0, &fill, tmp);
  EXPECT_EQ(t.px, g.px);
}

TEST(RandAugment, ParsesTimmPolicies) {
  const auto c = RandAugmentConfig::parse("rand-m9-mstd0.5-inc1");
  EXPECT_EQ(c.num_ops, 2);
  EXPECT_EQ(c.magnitude, 9);
  EXPECT_EQ(c.magnitude_std, 0.5);
  EXPECT_TRUE(c.increasing);
  const auto d = RandAugmentConfig::parse("rand-n3-m7");
  EXPECT_EQ(d.num_ops, 3);
  EXPECT_EQ(d.magnitude, 7);
  EXPECT_FALSE(d.increasing);
  EXPECT_THROW(RandAugmentConfig::parse("original"), Error);
  EXPECT_THROW(RandAugmentConfig::parse("rand-q5"), Error);
  EXPECT_THROW(RandAugmentConfig::parse("rand-m9-w0"), Error);
  // ranges checked before any cast to int
  for (const char* p : {"rand-m99999999999", "rand-m101", "rand-n17", "rand-n99999999999", "rand-mstd1e300",
                        "rand-inc2", "rand-m9-inc0.5"})
    EXPECT_THROW(RandAugmentConfig::parse(p), Error) << p;
  EXPECT_EQ(RandAugmentConfig::parse("rand-m100-n16-mstd100-inc0").magnitude, 100);
  EXPECT_STREQ(aug_op_name(AugOp::Posterize, true), "PosterizeIncreasing");
}

TEST(RandAugment, DeterministicPerKey) {
  RandAugmentConfig cfg = RandAugmentConfig::parse("rand-m9-mstd0.5-inc1");
  cfg.fill = {124, 116, 104};
  const RandAugment ra(cfg);
  std::set<uint64_t> distinct;
  int changed = 0;
  for (uint64_t k = 0; k < 40; ++k) {
    Image a = make_image(3), b = make_image(3), tmp;
    Rng r1 = Rng::keyed(11, 0, k), r2 = Rng::keyed(11, 0, k);
    ra.apply(a, r1, tmp);
    ra.apply(b, r2, tmp);
    EXPECT_EQ(a.px, b.px) << "key " << k;
    EXPECT_EQ(r1.counter(), r2.counter());
    distinct.insert(fnv(a));
    changed += a.px != make_image(3).px;
  }
  EXPECT_GT(distinct.size(), 20u);  // different keys draw different ops / magnitudes
  EXPECT_GT(changed, 20);           // each op applies with p 0.5: most images change
  // Magnitude 0 with no noise: the geometric ops do nothing; an explicit op at magnitude 10 is the extreme.
  Image g = make_image(1), tmp;
  RandAugment(cfg).apply_op(AugOp::Rotate, 0.0, 1, g, tmp);
  EXPECT_EQ(g.px, make_image(1).px);
  RandAugment(cfg).apply_op(AugOp::Posterize, 10.0, 1, g, tmp);  // PosterizeIncreasing at 10: 0 bits, black
  for (uint8_t v : g.px) EXPECT_EQ(v, 0);
}

TEST(RandomErasing, BoxesStayInBoundsWithTheRightArea) {
  RandomErasingConfig cfg;
  cfg.prob = 1.0;
  const int C = 3, H = 20, W = 17;
  int erased = 0;
  for (uint64_t k = 0; k < 300; ++k) {
    std::vector<float> img(size_t(C) * H * W, 5.0f);
    Rng r = Rng::keyed(3, 1, k);
    EraseBox box;
    const int n = random_erase(img.data(), C, H, W, cfg, r, &box);
    if (n == 0) continue;  // 10 tries may all miss
    ++erased;
    ASSERT_EQ(n, 1);
    EXPECT_GE(box.top, 0);
    EXPECT_GE(box.left, 0);
    EXPECT_LE(box.top + box.h, H);
    EXPECT_LE(box.left + box.w, W);
    EXPECT_LT(box.h, H);
    EXPECT_LT(box.w, W);
    // area U(0.02, 1/3)·H·W and aspect h/w in (0.3, 1/0.3), up to rounding h and w to integers
    const double area = double(box.h) * box.w, hw = double(H) * W, slack = 0.5 * (box.h + box.w) + 0.25;
    EXPECT_LE(area, hw / 3 + slack);
    EXPECT_GE(area, 0.02 * hw - slack);
    EXPECT_GE((box.h + 0.5) / (box.w - 0.5), 0.3);
    EXPECT_LE((box.h - 0.5) / (box.w + 0.5), 1 / 0.3);
    for (int ch = 0; ch < C; ++ch)
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const bool in = y >= box.top && y < box.top + box.h && x >= box.left && x < box.left + box.w;
          const float v = img[(size_t(ch) * H + y) * W + x];
          if (!in) {
            EXPECT_EQ(v, 5.0f);
          } else {
            EXPECT_NE(v, 5.0f);  // per-pixel normals
          }
        }
  }
  EXPECT_GT(erased, 250);
  // prob 0 never erases and draws one number; const mode writes zeros.
  std::vector<float> img(size_t(C) * H * W, 5.0f);
  cfg.prob = 0;
  Rng r(9);
  EXPECT_EQ(random_erase(img.data(), C, H, W, cfg, r), 0);
  EXPECT_EQ(r.counter(), 1u);
  cfg.prob = 1, cfg.mode = "const";
  EraseBox b;
  Rng r2(10);
  if (random_erase(img.data(), C, H, W, cfg, r2, &b)) {
    EXPECT_EQ(img[size_t(b.top) * W + b.left], 0.0f);
  }
  cfg.mode = "bogus";
  EXPECT_THROW(validate(cfg), Error);
}

TEST(Mixup, TargetsHandComputed) {
  // 4 samples, 3 classes, smoothing 0.1: off = 0.1/3, on = 1 − 0.1 + off; partner of b is B−1−b
  const int32_t y[4] = {0, 1, 2, 1};
  std::vector<float> t(12);
  mixup_targets(t.data(), y, 4, 3, 0.7, 0.1);
  const double off = 0.1 / 3, on = 0.9 + off;
  auto oh = [&](int lab, int k) { return k == lab ? on : off; };
  for (int b = 0; b < 4; ++b) {
    double s = 0;
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(t[b * 3 + k], 0.7 * oh(y[b], k) + 0.3 * oh(y[3 - b], k), 1e-6) << b << "," << k;
      s += t[b * 3 + k];
    }
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  EXPECT_NEAR(t[0], 0.7 * on + 0.3 * off, 1e-7);  // sample 0 (label 0) with sample 3 (label 1)
  EXPECT_NEAR(t[1], 0.7 * off + 0.3 * on, 1e-7);
  // lam 1, smoothing 0: plain one-hot
  mixup_targets(t.data(), y, 4, 3, 1.0, 0.0);
  EXPECT_EQ(t, (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0}));
}

TEST(Mixup, MixupAndCutmixImages) {
  const int B = 4, C = 2, H = 6, W = 5;
  const size_t per = size_t(C) * H * W;
  std::vector<float> x(B * per);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 97) * 0.25f;
  const std::vector<float> x0 = x;
  // mixup: x = lam·x + (1 − lam)·x.flip(0)
  MixParams p;
  p.lam = 0.625;
  mixup_apply(x.data(), B, C, H, W, p);
  for (int b = 0; b < B; ++b)
    for (size_t i = 0; i < per; ++i)
      EXPECT_NEAR(x[b * per + i], 0.625 * x0[b * per + i] + 0.375 * x0[(B - 1 - b) * per + i], 1e-5);
  // cutmix: the box comes from the partner, the rest stays; lam is corrected to 1 − box area / (H·W)
  MixupConfig mc;
  mc.cutmix_alpha = 1.0;
  mc.num_classes = 3;
  for (uint64_t k = 0; k < 50; ++k) {
    Rng r = Rng::keyed(5, 0, k);
    const MixParams q = mixup_draw(mc, r, H, W);
    ASSERT_TRUE(q.cutmix);
    EXPECT_GE(q.yl, 0);
    EXPECT_LE(q.yh, H);
    EXPECT_GE(q.xl, 0);
    EXPECT_LE(q.xh, W);
    EXPECT_NEAR(q.lam, 1.0 - double((q.yh - q.yl) * (q.xh - q.xl)) / (H * W), 1e-12);
    x = x0;
    mixup_apply(x.data(), B, C, H, W, q);
    for (int b = 0; b < B; ++b)
      for (int ch = 0; ch < C; ++ch)
        for (int yy = 0; yy < H; ++yy)
          for (int xx = 0; xx < W; ++xx) {
            const size_t o = (size_t(ch) * H + yy) * W + xx;
            const bool in = yy >= q.yl && yy < q.yh && xx >= q.xl && xx < q.xh;
            ASSERT_EQ(x[b * per + o], x0[(in ? B - 1 - b : b) * per + o]);
          }
  }
  // mixup_prob 0: never mixed; both alphas: the switch coin picks cutmix about half the time
  mc.prob = 0;
  Rng r0(1);
  EXPECT_EQ(mixup_draw(mc, r0, H, W).lam, 1.0);
  mc.prob = 1, mc.mixup_alpha = 0.8;
  int cut = 0;
  for (uint64_t k = 0; k < 400; ++k) {
    Rng r = Rng::keyed(6, 0, k);
    cut += mixup_draw(mc, r, H, W).cutmix;
  }
  EXPECT_NEAR(cut / 400.0, 0.5, 0.08);
}

TEST(Mixup, BetaSampler) {
  for (double a : {0.8, 1.0, 2.5}) {
    Rng r(77);
    double s = 0, ss = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double v = sample_beta(r, a, a);
      ASSERT_TRUE(v >= 0 && v <= 1);
      s += v, ss += v * v;
    }
    const double mean = s / n, var = ss / n - mean * mean;
    EXPECT_NEAR(mean, 0.5, 0.01) << a;
    EXPECT_NEAR(var, 1.0 / (4 * (2 * a + 1)), 0.01) << a;  // Beta(a, a): 1 / (4 (2a + 1))
  }
}

TEST(FinetuneTransform, ChainIsDeterministicPerKey) {
  TransformConfig tc;
  tc.size = 16;
  tc.channels = 3;
  tc.train = true;
  tc.scale_min = 0.08;
  tc.norm = {{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}};
  tc.auto_augment = "rand-m9-mstd0.5-inc1";
  tc.erasing.prob = 0.25;
  const Transform t(tc);
  TransformConfig plain = tc;
  plain.auto_augment.clear();
  plain.erasing.prob = 0;
  const Transform tp(plain);
  const Image img = make_image(3);
  TransformScratch s;
  int differs = 0;
  for (uint64_t k = 0; k < 20; ++k) {
    std::vector<float> a(3 * 16 * 16), b(a.size()), c(a.size());
    Rng r1 = Rng::keyed(1, 2, k), r2 = Rng::keyed(1, 2, k), r3 = Rng::keyed(1, 2, k);
    t.apply(img, r1, a.data(), s);
    t.apply(img, r2, b.data(), s);
    tp.apply(img, r3, c.data(), s);
    EXPECT_EQ(a, b);
    differs += a != c;
  }
  EXPECT_GT(differs, 10);
  tc.auto_augment = "nonsense";
  EXPECT_THROW(Transform{tc}, Error);
}
