// Using a model: reconstructions (eval/reconstruct, `mae reconstruct`) and encoder features (eval/features,
// `mae embed`), with the committed fixture checkpoints (cfgA: 28 px, 1 channel; cfgB: 20 px, 3 channels).
// The CLI cases run the real binary on PNG/JPEG files made here, and check its bad-input behaviour: a clear
// message naming the file, a non-zero exit without a crash, and no output file left behind.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include <jpeglib.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "data/transforms.h"
#include "eval/features.h"
#include "eval/frozen_encoder.h"
#include "eval/reconstruct.h"
#include "io/safetensors.h"
#include "model/pretrained.h"

namespace fs = std::filesystem;
using namespace mae;

namespace {

const std::string kFx = std::string(MAE_SOURCE_DIR) + "/tests/fixtures/";
const std::string kA = kFx + "cfgA.weights.safetensors";  // 28 px, patch 4, 1 channel
const std::string kB = kFx + "cfgB.weights.safetensors";  // 20 px, patch 4, 3 channels

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mae_test_recon_XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
};

Image pattern(int w, int h, int c, int salt = 0) {  // deterministic, varied content (no flat patches)
  Image im;
  im.resize(w, h, c);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < c; ch++)
        im.at(y, x, ch) = uint8_t((x * 37 + y * 11 * (ch + 1) + (x * y * 7) % 53 + ch * 50 + salt) & 255);
  return im;
}

void write_jpeg(const std::string& path, const Image& im, int quality = 92) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = im.w;
  cinfo.image_height = im.h;
  cinfo.input_components = im.c;
  cinfo.in_color_space = im.c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(im.px.data() + size_t(cinfo.next_scanline) * im.w * im.c);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  fclose(f);
}

std::string read_text(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void truncate_copy(const std::string& src, const std::string& dst, double keep) {
  std::string b = read_text(src);
  std::ofstream(dst, std::ios::binary) << b.substr(0, size_t(b.size() * keep));
}

struct CmdResult {
  int rc;
  std::string out;  // stdout + stderr
};
// Runs `mae ARGS` (ARGS already shell-quoted where needed).
CmdResult mae(const std::string& args, const TempDir& t) {
  const std::string log = t / "cmd.log";
  const std::string cmd = std::string(MAE_BINARY) + " " + args + " >" + log + " 2>&1";
  const int st = std::system(cmd.c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), read_text(log)};
}

// Removed patches by the rule of `mae reconstruct`: image k's noise from (seed, k), argsort, keep the first len_keep.
std::vector<bool> removed_patches(uint64_t seed, int k, int L, int keep) {
  Rng r = Rng::keyed(Rng::derive(seed, stream::mask), 0, uint64_t(k));
  std::vector<float> noise(L);
  for (float& x : noise) x = r.uniform_f();
  std::vector<int> ids(L);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return noise[a] < noise[b]; });
  std::vector<bool> removed(L, true);
  for (int i = 0; i < keep; i++) removed[ids[i]] = false;
  return removed;
}

// Panel `col` of row `row` of a grid, downscaled back to S × S (top-left pixel of each scale × scale block).
Image panel(const Image& grid, int row, int col, int S, int scale, int gap) {
  Image p;
  p.resize(S, S, grid.c);
  const int Ps = S * scale;
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++)
      for (int ch = 0; ch < grid.c; ch++)
        p.at(y, x, ch) = grid.at(row * (Ps + gap) + y * scale, col * (Ps + gap) + x * scale, ch);
  return p;
}

bool patch_equal(const Image& a, const Image& b, int l, int p, int g) {
  const int y0 = (l / g) * p, x0 = (l % g) * p;
  for (int y = y0; y < y0 + p; y++)
    for (int x = x0; x < x0 + p; x++)
      for (int ch = 0; ch < a.c; ch++)
        if (a.at(y, x, ch) != b.at(y, x, ch)) return false;
  return true;
}

bool no_output_left(const TempDir& t, const std::string& stem) {
  for (const auto& e : fs::directory_iterator(t.path))
    if (e.path().filename().string().rfind(stem, 0) == 0) return false;
  return true;
}

uint8_t u8(double v) { return uint8_t(std::clamp(std::lround(v * 255.0), 0L, 255L)); }

// ---------------------------------------------------------------------------------------------- library level

// Each panel against an independent computation from the model's pred: pixel (y, x, c) of patch l = (y/p)·g + x/p
// is element ((y%p)·p + x%p)·C + c of pred[l] (the official (i, j, c) patchify order); norm-pix predictions are
// mapped back with the original patch's mean and unbiased std.
void check_panels(const std::string& ck, bool norm_pix) {
  const Pretrained pt = load_pretrained(ck, "", true);
  const ModelConfig& c = pt.config;
  const int S = c.img_size, C = c.in_chans, p = c.patch_size, g = c.grid(), L = c.num_patches(), P = c.patch_dim();
  const int n = 3;
  std::vector<Image> crops;
  for (int k = 0; k < n; k++) crops.push_back(pattern(S, S, C, 17 * k));
  std::vector<float> noise(size_t(n) * L);
  Rng r(5);
  for (float& x : noise) x = r.uniform_f();
  auto model = pt.make_model(2, 0.75);  // 2 per forward: the third image goes in a padded batch
  const auto rows = reconstruct(*model, crops, pt.norm, noise, norm_pix);
  ASSERT_EQ(rows.size(), size_t(n));

  auto single = pt.make_model(1, 0.75);
  for (int k = 0; k < n; k++) {
    std::vector<double> x(size_t(C) * S * S);  // normalised input (C, S, S)
    std::vector<float> xf(x.size());
    for (int ch = 0; ch < C; ch++)
      for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++) {
          const size_t i = (size_t(ch) * S + y) * S + xx;
          xf[i] = (float(crops[k].at(y, xx, ch)) / 255.0f - pt.norm.mean[ch]) / pt.norm.std[ch];
          x[i] = xf[i];
        }
    const float loss = single->forward(xf.data(), noise.data() + size_t(k) * L);
    const float* pred = single->pred() + P;  // skip the cls row
    const float* mask = single->mask();
    int removed = 0;
    for (int l = 0; l < L; l++) removed += mask[l] > 0.5f;
    EXPECT_EQ(removed, L - c.len_keep(0.75));
    // per-patch statistics of the normalised original
    std::vector<double> pm(L, 0.0), ps(L, 1.0);
    if (norm_pix)
      for (int l = 0; l < L; l++) {
        const int y0 = (l / g) * p, x0 = (l % g) * p;
        double s = 0, s2 = 0;
        for (int ch = 0; ch < C; ch++)
          for (int y = y0; y < y0 + p; y++)
            for (int xx = x0; xx < x0 + p; xx++) s += x[(size_t(ch) * S + y) * S + xx];
        pm[l] = s / P;
        for (int ch = 0; ch < C; ch++)
          for (int y = y0; y < y0 + p; y++)
            for (int xx = x0; xx < x0 + p; xx++) s2 += std::pow(x[(size_t(ch) * S + y) * S + xx] - pm[l], 2);
        ps[l] = std::sqrt(s2 / (P - 1) + 1e-6);
      }
    const ReconstructPanels& R = rows[k];
    int off_by_more_than_one = 0;
    for (int y = 0; y < S; y++)
      for (int xx = 0; xx < S; xx++)
        for (int ch = 0; ch < C; ch++) {
          const int l = (y / p) * g + xx / p;
          const double v = pred[size_t(l) * P + ((y % p) * p + xx % p) * C + ch] * ps[l] + pm[l];
          const int want = u8(v * pt.norm.std[ch] + pt.norm.mean[ch]);
          off_by_more_than_one += std::abs(int(R.recon.at(y, xx, ch)) - want) > 1;
          const bool rem = mask[l] > 0.5f;
          ASSERT_EQ(R.original.at(y, xx, ch), crops[k].at(y, xx, ch));
          ASSERT_EQ(R.masked.at(y, xx, ch), rem ? u8(pt.norm.mean[ch]) : crops[k].at(y, xx, ch));
          ASSERT_EQ(R.paste.at(y, xx, ch), rem ? R.recon.at(y, xx, ch) : crops[k].at(y, xx, ch));
        }
    EXPECT_EQ(off_by_more_than_one, 0) << "image " << k;  // batch 2 vs 1 GEMMs may flip a rounding
    // The per-patch loss (mae serve's /reconstruct shows it): its mean over removed patches is the model's own loss
    // when the target is the one the model trains with.
    ASSERT_EQ(R.mask.size(), size_t(L));
    ASSERT_EQ(R.patch_loss.size(), size_t(L));
    for (int l = 0; l < L; l++) ASSERT_EQ(R.mask[l], mask[l] > 0.5f) << l;
    double mean_removed = 0;
    for (int l = 0; l < L; l++) mean_removed += R.mask[l] ? R.patch_loss[l] / removed : 0.0;
    EXPECT_NEAR(R.loss, mean_removed, 1e-6 * std::max(1.0, mean_removed));  // float patch losses, double sum
    if (norm_pix == c.norm_pix_loss) {
      EXPECT_NEAR(R.loss, loss, 1e-4 * std::max(1.0f, loss)) << "image " << k;
    }
  }
}

TEST(Reconstruct, PanelsMatchIndependentComputation1ch) { check_panels(kA, false); }
TEST(Reconstruct, PanelsMatchIndependentComputation3ch) { check_panels(kB, false); }
TEST(Reconstruct, NormPixPanelsUseEachPatchsMeanAndStd1ch) { check_panels(kA, true); }
TEST(Reconstruct, NormPixPanelsUseEachPatchsMeanAndStd3ch) { check_panels(kB, true); }

TEST(Reconstruct, GridLayout) {
  std::vector<ReconstructPanels> rows(2);
  for (int r = 0; r < 2; r++) {
    rows[r].original = pattern(5, 5, 3, 1 + r);
    rows[r].masked = pattern(5, 5, 3, 2 + r);
    rows[r].recon = pattern(5, 5, 3, 3 + r);
    rows[r].paste = pattern(5, 5, 3, 4 + r);
  }
  const Image g = make_grid(rows, 3, 2);
  EXPECT_EQ(g.w, 4 * 15 + 3 * 2);
  EXPECT_EQ(g.h, 2 * 15 + 2);
  EXPECT_EQ(g.c, 3);
  for (int r = 0; r < 2; r++) {
    const Image* ps[4] = {&rows[r].original, &rows[r].masked, &rows[r].recon, &rows[r].paste};
    for (int k = 0; k < 4; k++) {
      const Image got = panel(g, r, k, 5, 3, 2);
      EXPECT_EQ(got.px, ps[k]->px) << r << " " << k;
      EXPECT_EQ(g.at(r * 17 + 14, k * 17 + 14, 0), ps[k]->at(4, 4, 0));  // the block's last pixel too
    }
  }
  EXPECT_EQ(g.at(0, 15, 0), 255);  // the white gap
  EXPECT_EQ(g.at(16, 0, 1), 255);
  EXPECT_EQ(default_scale(28), 8);
  EXPECT_EQ(default_scale(224), 1);
  EXPECT_EQ(default_scale(500), 1);
}

TEST(Pretrained, NormalizationFromMetadataOrDefaults) {
  TempDir t;
  std::string src;
  Normalization n = checkpoint_normalization(kA, 1, &src);  // fixtures carry no args: the defaults
  EXPECT_NEAR(n.mean[0], 0.2860, 1e-4);
  EXPECT_NEAR(n.std[0], 0.3530, 1e-4);
  n = checkpoint_normalization(kB, 3, &src);
  EXPECT_FLOAT_EQ(n.mean[2], 0.406f);
  EXPECT_FLOAT_EQ(n.std[0], 0.229f);
  // a training checkpoint's args.normalize wins; a top-level "normalize" wins over it
  io::SafeTensorsReader r(kA);
  std::vector<float> w = r.read_f32("norm.weight");
  const std::string f = t / "meta.safetensors";
  io::write_safetensors(f, {{"norm.weight", io::DType::F32, {int64_t(w.size())}, w.data()}},
                        {{"args", R"({"normalize": {"mean": [0.5], "std": [0.25]}, "model": "x"})"}});
  n = checkpoint_normalization(f, 1, &src);
  EXPECT_FLOAT_EQ(n.mean[0], 0.5f);
  EXPECT_FLOAT_EQ(n.std[0], 0.25f);
  EXPECT_NE(src.find("args"), std::string::npos);
  n = checkpoint_normalization(f, 3, &src);  // grey stats repeated for a colour model
  EXPECT_EQ(n.mean.size(), 3u);
  io::write_safetensors(f, {{"norm.weight", io::DType::F32, {int64_t(w.size())}, w.data()}},
                        {{"args", R"({"normalize": {"mean": [0.5], "std": [0.25]}})"},
                         {"normalize", R"({"mean": [0.1, 0.2, 0.3], "std": [1, 2, 3]})"}});
  n = checkpoint_normalization(f, 3, &src);
  EXPECT_FLOAT_EQ(n.mean[1], 0.2f);
  EXPECT_FLOAT_EQ(n.std[2], 3.0f);
}

// ------------------------------------------------------------------------------------------------ features

// A folder dataset of mixed pictures (sizes, grey and colour, PNG and JPEG) in two classes.
void make_folder(const TempDir& t, const std::string& root) {
  fs::create_directories(t / (root + "/cat"));
  fs::create_directories(t / (root + "/dog"));
  encode_png(t / (root + "/cat/a.png"), pattern(37, 23, 3, 1));
  write_jpeg(t / (root + "/cat/b.jpg"), pattern(20, 31, 1, 2));
  encode_png(t / (root + "/dog/c.png"), pattern(28, 28, 1, 3));
  write_jpeg(t / (root + "/dog/d.jpg"), pattern(64, 40, 3, 4));
  encode_png(t / (root + "/dog/e.png"), pattern(19, 19, 3, 5));
}

// Features by hand: one image at a time through forward_encoder with every patch kept in order.
// The encoder's latent, one image at a time; `tc` defaults to the checkpoint's eval transform.
std::vector<float> manual_features(const Pretrained& pt, const Dataset& ds, bool global_pool,
                                   const TransformConfig* tc = nullptr) {
  const ModelConfig& c = pt.config;
  const int L = c.num_patches(), D = c.embed_dim;
  auto m = pt.make_model(1, 0.0);
  Transform tf(tc ? *tc : eval_transform(c, pt.norm));
  TransformScratch s;
  Rng rng(0);
  std::vector<float> img(size_t(c.in_chans) * c.img_size * c.img_size), noise(L), out;
  for (int l = 0; l < L; l++) noise[l] = float(l) / L;
  for (size_t i = 0; i < ds.size(); i++) {
    tf.apply(ds.load(i), rng, img.data(), s);
    const float* lat = m->forward_encoder(img.data(), noise.data());
    for (int d = 0; d < D; d++) {
      double v = 0;
      if (global_pool) {
        for (int l = 1; l <= L; l++) v += lat[size_t(l) * D + d];
        v /= L;
      } else {
        v = lat[d];
      }
      out.push_back(float(v));
    }
  }
  return out;
}

TEST(Features, ComputeFeaturesEqualsForwardEncoderRows) {
  TempDir t;
  make_folder(t, "data");
  auto ds = open_dataset(t / "data", "train");
  ASSERT_EQ(ds->size(), 5u);
  for (const std::string& ck : {kA, kB}) {
    const Pretrained pt = load_pretrained(ck, "", false);
    for (bool gp : {false, true}) {
      const std::vector<float> want = manual_features(pt, *ds, gp);
      auto m = pt.make_model(2, 0.0);  // 2 + 2 + a padded 1
      const auto got = compute_features(*m, *ds, eval_transform(pt.config, pt.norm), gp, 1);
      const auto got0 = compute_features(pt.config, pt.params.data(), *ds, eval_transform(pt.config, pt.norm), gp,
                                         3, /*num_workers=*/0);
      ASSERT_EQ(got.size(), size_t(5) * pt.config.embed_dim);
      for (size_t i = 0; i < want.size(); i++) {
        ASSERT_NEAR(got[i], want[i], 1e-4) << ck << " gp " << gp << " at " << i;
        ASSERT_NEAR(got0[i], want[i], 1e-4) << ck << " gp " << gp << " at " << i;
      }
    }
  }
  const Pretrained pa = load_pretrained(kA, "", false);
  auto masked = pa.make_model(2, 0.5);
  EXPECT_THROW(compute_features(*masked, *ds, eval_transform(masked->config(), fashion_mnist_normalization()), false),
               Error);
}

// On the CPU every model of one checkpoint reads Pretrained::params in place (mae serve keeps several: batch sizes,
// mask ratios): a change to them shows in every model's next forward, and the models refuse other weights.
TEST(Pretrained, CpuModelsShareTheWeights) {
  Pretrained pt = load_pretrained(kA, "", false);
  auto m1 = pt.make_model(1, 0.0), m2 = pt.make_model(2, 0.0);
  const ModelConfig& c = pt.config;
  const size_t L = size_t(c.num_patches()), D = size_t(c.embed_dim);
  std::vector<float> img(size_t(2) * c.in_chans * c.img_size * c.img_size), noise(2 * L);
  for (size_t i = 0; i < img.size(); i++) img[i] = float(i % 17) / 17.0f - 0.5f;
  for (size_t l = 0; l < 2 * L; l++) noise[l] = float(l % L) / float(L);
  auto first_row = [&](InferenceModel& m) {
    const float* lat = m.forward_encoder(img.data(), noise.data());  // (B, 1+L, D): sample 0's cls row
    return std::vector<float>(lat, lat + D);
  };
  auto expect_shifted = [&](const std::vector<float>& got, const std::vector<float>& base, float by) {
    ASSERT_EQ(got.size(), base.size());
    for (size_t d = 0; d < got.size(); d++) ASSERT_NEAR(got[d], base[d] + by, 1e-5) << d;
  };
  const std::vector<float> a1 = first_row(*m1);
  expect_shifted(first_row(*m2), a1, 0.0f);
  // norm.bias is added after the final LayerNorm: +1 there moves every latent value by 1
  const ParamSpec& nb = m1->params().find("norm.bias");
  const std::vector<float> saved(pt.params.begin() + nb.offset, pt.params.begin() + nb.offset + nb.numel);
  for (size_t i = 0; i < nb.numel; i++) pt.params[nb.offset + i] += 1.0f;
  expect_shifted(first_row(*m1), a1, 1.0f);
  expect_shifted(first_row(*m2), a1, 1.0f);
  EXPECT_THROW(m1->set_params(pt.params.data()), Error);
  EXPECT_THROW(m2->init(1), Error);
  // A model without shared weights takes them by set_params (a copy): later changes do not reach it.
  auto own = make_inference_model(c, 1, 0.0);
  own->set_params(pt.params.data());
  std::copy(saved.begin(), saved.end(), pt.params.begin() + nb.offset);
  expect_shifted(first_row(*own), a1, 1.0f);
  expect_shifted(first_row(*m1), a1, 0.0f);
}

// ------------------------------------------------------------------------------------------------------ CLI

TEST(ReconstructCli, GridOfPngAndJpegColourAndGreyBothModels) {
  TempDir t;
  encode_png(t / "colour.png", pattern(50, 30, 3, 7));   // non-square, colour
  write_jpeg(t / "grey.jpg", pattern(17, 41, 1, 9));     // non-square, grey, smaller than the model
  encode_png(t / "big.png", pattern(90, 90, 1, 11));
  struct Case {
    std::string ck;
    int S, C, p;
  };
  for (const Case& cs : {Case{kA, 28, 1, 4}, Case{kB, 20, 3, 4}}) {
    const int g = cs.S / cs.p, L = g * g, keep = int(L * (1 - 0.75));
    const std::string imgs = t / "colour.png" + " " + t / "grey.jpg" + " " + t / "big.png";
    CmdResult r = mae("reconstruct --checkpoint " + cs.ck + " --image " + imgs + " --output " + t / "g1.png" +
                    " --seed 3 --scale 2 --gap 3",
                t);
    ASSERT_EQ(r.rc, 0) << r.out;
    const Image grid = decode_image(t / "g1.png");
    EXPECT_EQ(grid.w, 4 * cs.S * 2 + 3 * 3);
    EXPECT_EQ(grid.h, 3 * cs.S * 2 + 2 * 3);
    EXPECT_EQ(grid.c, cs.C);
    for (int k = 0; k < 3; k++) {
      const Image orig = panel(grid, k, 0, cs.S, 2, 3), masked = panel(grid, k, 1, cs.S, 2, 3),
                  rec = panel(grid, k, 2, cs.S, 2, 3), paste = panel(grid, k, 3, cs.S, 2, 3);
      const auto removed = removed_patches(3, k, L, keep);
      int visible = 0;
      for (int l = 0; l < L; l++) {
        if (!removed[l]) {
          visible++;
          EXPECT_TRUE(patch_equal(paste, orig, l, cs.p, g)) << "visible patch " << l << " of row " << k;
          EXPECT_TRUE(patch_equal(masked, orig, l, cs.p, g)) << "visible patch " << l << " of row " << k;
        } else {
          EXPECT_TRUE(patch_equal(paste, rec, l, cs.p, g)) << "removed patch " << l << " of row " << k;
        }
      }
      EXPECT_EQ(visible, keep);
    }
    // the first panel is the eval transform's picture
    {
      const Pretrained pt = load_pretrained(cs.ck, "", true);
      Transform tf(eval_transform(pt.config, pt.norm));
      TransformScratch s;
      Rng rng(0);
      Image want;
      tf.apply_u8(decode_image(t / "colour.png"), rng, want, s);
      EXPECT_EQ(panel(grid, 0, 0, cs.S, 2, 3).px, want.px);
    }
    // deterministic per seed; another seed, another mask
    r = mae("reconstruct --checkpoint " + cs.ck + " --image " + imgs + " --output " + t / "g2.png" +
                " --seed 3 --scale 2 --gap 3",
            t);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(read_text(t / "g1.png"), read_text(t / "g2.png"));
    r = mae("reconstruct --checkpoint " + cs.ck + " --image " + imgs + " --output " + t / "g3.png" +
                " --seed 4 --scale 2 --gap 3",
            t);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(read_text(t / "g1.png"), read_text(t / "g3.png"));
    // default upscale: about 224 px panels, 2 px gaps
    r = mae("reconstruct --checkpoint " + cs.ck + " --image " + t / "grey.jpg" + " --output " + t / "g4.png", t);
    ASSERT_EQ(r.rc, 0) << r.out;
    const Image g4 = decode_image(t / "g4.png");
    EXPECT_EQ(g4.w, 4 * cs.S * default_scale(cs.S) + 3 * 2);
    EXPECT_EQ(g4.h, cs.S * default_scale(cs.S));
  }
}

TEST(ReconstructCli, FromADatasetSplit) {
  TempDir t;
  make_folder(t, "data");
  CmdResult r = mae("reconstruct --checkpoint " + kB + " --data_path " + t / "data" + " --num 2 --scale 1 --output " +
                  t / "d.png",
              t);
  ASSERT_EQ(r.rc, 0) << r.out;
  const Image g = decode_image(t / "d.png");
  EXPECT_EQ(g.w, 4 * 20 + 3 * 2);
  EXPECT_EQ(g.h, 2 * 20 + 2);
  // mask ratio 0: nothing removed, panels 1, 2 and 4 are the same picture
  r = mae("reconstruct --checkpoint " + kA + " --data_path " + t / "data" + " --num 9 --scale 1 --mask_ratio 0 "
              "--output " + t / "z.png", t);
  ASSERT_EQ(r.rc, 0) << r.out;
  const Image z = decode_image(t / "z.png");
  EXPECT_EQ(z.h, 5 * 28 + 4 * 2);  // --num is capped at the split's size
  EXPECT_EQ(panel(z, 1, 0, 28, 1, 2).px, panel(z, 1, 1, 28, 1, 2).px);
  EXPECT_EQ(panel(z, 1, 0, 28, 1, 2).px, panel(z, 1, 3, 28, 1, 2).px);
}

TEST(ReconstructCli, BadInputClearMessageNoOutput) {
  TempDir t;
  encode_png(t / "ok.png", pattern(30, 30, 3));
  write_jpeg(t / "ok.jpg", pattern(60, 40, 3));
  std::ofstream(t / "text.png") << "this is not an image\n";
  truncate_copy(t / "ok.jpg", t / "trunc.jpg", 0.5);
  truncate_copy(t / "ok.png", t / "trunc.png", 0.5);
  {  // encoder-only: the fixture without decoder_* and mask_token
    io::SafeTensorsReader r(kA);
    std::vector<std::vector<float>> keep;
    std::vector<io::TensorOut> out;
    for (const std::string& n : r.names()) {
      if (n.rfind("decoder", 0) == 0 || n == "mask_token") continue;
      std::vector<int64_t> shape;
      keep.push_back(r.read_f32(n, &shape));
      out.push_back({n, io::DType::F32, shape, nullptr});
    }
    for (size_t i = 0; i < out.size(); i++) out[i].data = keep[i].data();
    io::write_safetensors(t / "enc_only.safetensors", out, r.metadata());
  }
  struct Case {
    std::string name, args;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::string out = " --output " + t / "out.png";
  const std::vector<Case> cases = {
      {"not an image", "--checkpoint " + kA + " --image " + t / "ok.png" + " " + t / "text.png" + out,
       {"text.png"}},
      {"truncated jpeg", "--checkpoint " + kB + " --image " + t / "trunc.jpg" + out, {"trunc.jpg"}},
      {"truncated png", "--checkpoint " + kB + " --image " + t / "trunc.png" + out, {"trunc.png"}},
      {"missing image", "--checkpoint " + kB + " --image " + t / "nope.png" + out, {"nope.png"}},
      {"missing checkpoint", "--checkpoint " + t / "missing.safetensors" + " --image " + t / "ok.png" + out,
       {"missing.safetensors"}},
      {"checkpoint is an image", "--checkpoint " + t / "ok.png" + " --image " + t / "ok.png" + out, {"ok.png"}},
      {"encoder-only", "--checkpoint " + t / "enc_only.safetensors" + " --image " + t / "ok.png" + out,
       {"enc_only.safetensors", "decoder"}},
      {"unknown flag", "--checkpoint " + kA + " --image " + t / "ok.png" + " --bogus 3" + out, {"--bogus"}},
      {"no pictures", "--checkpoint " + kA + out, {"--image", "--data_path"}},
      {"both sources", "--checkpoint " + kA + " --image " + t / "ok.png" + " --data_path " + t.path.string() + out,
       {"--image", "--data_path"}},
      {"bad mask ratio", "--checkpoint " + kA + " --image " + t / "ok.png" + " --mask_ratio 1" + out,
       {"--mask_ratio"}},
      {"output folder missing", "--checkpoint " + kA + " --image " + t / "ok.png" + " --output " + t / "no/dir.png",
       {"no/dir.png"}},
  };
  for (const Case& c : cases) {
    CmdResult r = mae("reconstruct " + c.args, t);
    EXPECT_GT(r.rc, 0) << c.name << ": " << r.out;
    EXPECT_LT(r.rc, 128) << c.name << " crashed: " << r.out;
    for (const std::string& s : c.expect) EXPECT_NE(r.out.find(s), std::string::npos) << c.name << ": " << r.out;
    EXPECT_TRUE(no_output_left(t, "out.png")) << c.name;
  }
  // embed takes the encoder-only checkpoint, and its bad inputs fail alike
  make_folder(t, "data");
  CmdResult r = mae("embed --checkpoint " + t / "enc_only.safetensors" + " --data_path " + t / "data" + " --output " +
                  t / "feats.safetensors",
              t);
  EXPECT_EQ(r.rc, 0) << r.out;
  std::ofstream(t / "data/cat/zz.png") << "not a png";  // a corrupt member of the dataset
  for (const std::string& args :
       {"--checkpoint " + kA + " --data_path " + t / "data" + " --output " + t / "out.png",
        "--checkpoint " + t / "missing.safetensors" + " --data_path " + t / "data" + " --output " + t / "out.png",
        "--checkpoint " + kA + " --data_path " + t / "nodata" + " --output " + t / "out.png",
        "--checkpoint " + kA + " --data_path " + t / "data" + " --wat --output " + t / "out.png"}) {
    r = mae("embed " + args, t);
    EXPECT_GT(r.rc, 0) << args << ": " << r.out;
    EXPECT_LT(r.rc, 128) << args << ": " << r.out;
    EXPECT_TRUE(r.out.find("zz.png") != std::string::npos || r.out.find("missing.safetensors") != std::string::npos ||
                r.out.find("nodata") != std::string::npos || r.out.find("--wat") != std::string::npos)
        << r.out;
    EXPECT_TRUE(no_output_left(t, "out.png")) << args;
  }
}

TEST(EmbedCli, FeaturesLabelsNamesEqualForwardEncoder) {
  TempDir t;
  make_folder(t, "data");
  auto ds = open_dataset(t / "data", "train");
  for (const std::string& ck : {kA, kB}) {
    const Pretrained pt = load_pretrained(ck, "", false);
    for (bool gp : {false, true}) {
      CmdResult r = mae("embed --checkpoint " + ck + " --data_path " + t / "data" + " --batch_size 2 --output " +
                      t / "f.safetensors" + (gp ? " --global_pool" : ""),
                  t);
      ASSERT_EQ(r.rc, 0) << r.out;
      io::SafeTensorsReader f(t / "f.safetensors");
      std::vector<int64_t> shape;
      const std::vector<float> got = f.read_f32("features", &shape);
      ASSERT_EQ(shape, (std::vector<int64_t>{5, pt.config.embed_dim}));
      // embed normalises and crops as knn and linprobe do (the data's statistics, crop_pct auto)
      const TransformConfig tc = probe_eval_transform(*ds, pt.config.img_size, pt.config.in_chans);
      const std::vector<float> want = manual_features(pt, *ds, gp, &tc);
      for (size_t i = 0; i < want.size(); i++) ASSERT_NEAR(got[i], want[i], 1e-4) << ck << " " << gp << " " << i;
      EXPECT_EQ(f.read_i64("labels"), (std::vector<int64_t>{0, 0, 1, 1, 1}));
      const std::vector<int64_t> nb = f.read_i64("names");
      std::string names(nb.begin(), nb.end());
      EXPECT_NE(names.find("cat/a.png\n"), std::string::npos) << names;
      EXPECT_EQ(std::count(names.begin(), names.end(), '\n'), 4);
      EXPECT_EQ(nlohmann::json::parse(f.metadata().at("class_names")), nlohmann::json({"cat", "dog"}));
      EXPECT_EQ(f.metadata().at("global_pool"), gp ? "true" : "false");
    }
  }
}

}  // namespace
