// Parity with PyTorch: the fixtures under tests/fixtures were written by tools/make_fixtures.py from our PyTorch
// reference (tools/mae_torch.py, written from docs/architecture.md §3). MAE_FIXTURE_DIR points elsewhere (the regeneration test
// runs this binary on freshly generated fixtures).
//   loss: relative error ≤ 1e-5; pred, mask: max abs ≤ 1e-4; ids_restore exact;
//   every gradient: ‖g − g_ref‖ / ‖g_ref‖ ≤ 1e-4; 5 AdamW steps (official groups): losses relative ≤ 1e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "gradcheck.h"
#include "io/safetensors.h"
#include "model/mae.h"
#include "model/pos_embed.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "train/adamw.h"

using namespace mae;
using mae::test::rel_l2;

namespace {

std::string fixture_dir() {
  const char* e = std::getenv("MAE_FIXTURE_DIR");
  return e && *e ? e : std::string(MAE_SOURCE_DIR) + "/tests/fixtures";
}

struct Case {
  std::string cfg;
  int norm_pix;
  int ratio_pct;
};

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  return i.param.cfg + "_np" + std::to_string(i.param.norm_pix) + "_mr" + std::to_string(i.param.ratio_pct);
}

class Parity : public ::testing::TestWithParam<Case> {};

TEST_P(Parity, ForwardBackwardAndAdamW) {
  const Case c = GetParam();
  const std::string dir = fixture_dir();
  const std::string stem = dir + "/" + c.cfg;
  const std::string exp_path = stem + "_np" + std::to_string(c.norm_pix) + "_mr" + std::to_string(c.ratio_pct) +
                               ".expected.safetensors";
  ASSERT_TRUE(std::filesystem::exists(exp_path)) << exp_path;
  io::SafeTensorsReader wf(stem + ".weights.safetensors"), in(stem + ".input.safetensors"), ex(exp_path);
  ModelConfig cfg = read_config(wf);
  cfg.norm_pix_loss = c.norm_pix != 0;
  const double ratio = c.ratio_pct / 100.0;

  std::vector<int64_t> ishape;
  const auto imgs = in.read_f32("imgs", &ishape);
  const int B = int(ishape[0]), L = cfg.num_patches(), P = cfg.patch_dim();
  const auto noise = in.read_f32("noise");

  MaeModel<CpuBackend<float>> m(cfg, B, ratio);
  load_params(wf, m.params(), m.params_data());

  // The fixed tables in the file are PyTorch's: ours must be the same numbers.
  const auto pe = wf.read_f32("pos_embed");
  const auto ours = sincos_pos_embed_2d(cfg.embed_dim, cfg.grid(), cfg.grid(), true);
  EXPECT_LT(rel_l2(ours, pe), 1e-7);
  const auto dpe = wf.read_f32("decoder_pos_embed");
  EXPECT_LT(rel_l2(sincos_pos_embed_2d(cfg.decoder_embed_dim, cfg.grid(), cfg.grid(), true), dpe), 1e-7);

  const double loss = m.forward(imgs.data(), noise.data());
  m.zero_grad();
  m.backward();

  const double want_loss = ex.read_f32("loss")[0];
  EXPECT_LE(std::abs(loss - want_loss), 1e-5 * std::abs(want_loss)) << "loss " << loss << " vs " << want_loss;

  const auto want_pred = ex.read_f32("pred");
  ASSERT_EQ(want_pred.size(), size_t(B) * L * P);
  double worst = 0;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < L * P; ++i)
      worst = std::max(worst, double(std::abs(m.pred()[(size_t(b) * (1 + L) + 1) * P + i] -
                                              want_pred[size_t(b) * L * P + i])));
  EXPECT_LE(worst, 1e-4) << "pred max abs error";

  const auto want_mask = ex.read_f32("mask");
  const auto want_ids = ex.read_i64("ids_restore");
  for (size_t i = 0; i < size_t(B) * L; ++i) {
    ASSERT_EQ(m.mask()[i], want_mask[i]) << "mask[" << i << "]";
    ASSERT_EQ(m.ids_restore()[i], want_ids[i]) << "ids_restore[" << i << "]";
  }

  for (const auto& s : m.params().specs) {
    const std::string gname = "grad." + s.name;
    ASSERT_TRUE(ex.has(gname)) << gname;
    std::vector<float> want(s.numel);
    ex.read_f32(gname, want.data(), s.shape);
    std::vector<float> got(m.grads_data() + s.offset, m.grads_data() + s.offset + s.numel);
    if (s.name.find("attn.qkv.bias") != std::string::npos) {
      // The key slice of qkv.bias has an analytically zero gradient (softmax ignores a constant added to all keys):
      // compare the q and v slices by relative norm, the k slice by absolute size.
      const size_t D = s.numel / 3;
      std::vector<float> gq(got.begin(), got.begin() + D), wq(want.begin(), want.begin() + D);
      std::vector<float> gv(got.begin() + 2 * D, got.end()), wv(want.begin() + 2 * D, want.end());
      EXPECT_LE(rel_l2(gq, wq), 1e-4) << gname << " (q)";
      EXPECT_LE(rel_l2(gv, wv), 1e-4) << gname << " (v)";
      for (size_t i = D; i < 2 * D; ++i) EXPECT_LE(std::abs(got[i]), 1e-6) << gname << " (k)";
    } else {
      EXPECT_LE(rel_l2(got, want), 1e-4) << gname;
    }
  }

  // 5 AdamW steps, lr 1e-3 constant, betas (0.9, 0.95), eps 1e-8, wd 0.05 on the official groups.
  const auto want_losses = ex.read_f32("adamw_losses");
  std::vector<int64_t> nshape;
  const auto steps_noise = in.read_f32("noise_steps", &nshape);
  ASSERT_EQ(nshape.size(), 3u);
  MaeModel<CpuBackend<float>> t(cfg, B, ratio);
  load_params(wf, t.params(), t.params_data());
  std::vector<float> mom(t.params().total, 0.0f), var(t.params().total, 0.0f);
  for (int s = 0; s < int(nshape[0]); ++s) {
    const double l = t.forward(imgs.data(), steps_noise.data() + size_t(s) * B * L);
    EXPECT_LE(std::abs(l - want_losses[s]), 1e-4 * std::abs(want_losses[s])) << "AdamW step " << s;
    t.zero_grad();
    t.backward();
    adamw_step<CpuBackend<float>>(t.params(), t.params_data(), mom.data(), var.data(), t.grads_data(), 1e-3f,
                                  AdamWConfig{}, s + 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity,
                         ::testing::Values(Case{"cfgA", 0, 75}, Case{"cfgA", 1, 75}, Case{"cfgA", 0, 50},
                                           Case{"cfgA", 1, 50}, Case{"cfgB", 0, 75}, Case{"cfgB", 1, 75},
                                           Case{"cfgB", 0, 50}, Case{"cfgB", 1, 50}),
                         case_name);

}  // namespace
