// The ViT classifier (models_vit.py) and the shared BlockStack: finite differences in double through the whole
// classifier (global pool and cls token, drop path off and on with a fixed mask), CPU kernels vs reference loops,
// the parameter list (names, layer ids, decay groups), layer-wise lr decay scales, drop-path draws; starting from an
// MAE checkpoint (pos_embed interpolation against torch, missing/ignored tensors) and classifier checkpoints.
#include <gtest/gtest.h>
#include <omp.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "model/mae.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "ops/cpu/row_tiles.h"

using namespace mae;
using mae::test::expect_close;
using mae::test::rel_l2;

namespace {

// Odd little config: 2 channels, 3×3 grid of 2-px patches, 3 heads, MLP hidden 30, 5 classes.
ModelConfig tiny() {
  ModelConfig c;
  c.img_size = 6, c.patch_size = 2, c.in_chans = 2;
  c.embed_dim = 12, c.depth = 3, c.num_heads = 3;
  c.mlp_ratio = 2.5;
  c.decoder_embed_dim = 8, c.decoder_depth = 1, c.decoder_num_heads = 2;
  return c;
}

template <class Bk> void randomize(VitClassifier<Bk>& m, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, 0.3);
  for (size_t i = 0; i < m.params().total; ++i) m.params_data()[i] = typename Bk::T(nd(g));
}

struct Data {
  std::vector<double> imgs, targets;
};

Data make_data(const ModelConfig& c, int B, int NC, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<double> ud(0.05, 1.0);
  Data d;
  d.imgs.resize(size_t(B) * c.in_chans * c.img_size * c.img_size);
  for (auto& x : d.imgs) x = nd(g);
  d.targets.resize(size_t(B) * NC);
  for (int b = 0; b < B; ++b) {  // soft targets (as mixup + smoothing make them), rows summing to 1
    double s = 0;
    for (int k = 0; k < NC; ++k) s += d.targets[size_t(b) * NC + k] = ud(g);
    for (int k = 0; k < NC; ++k) d.targets[size_t(b) * NC + k] /= s;
  }
  return d;
}

template <class Bk> double loss_of(VitClassifier<Bk>& m, const std::vector<typename Bk::T>& imgs,
                                   const std::vector<typename Bk::T>& t, int B) {
  m.forward(imgs.data(), B);
  return double(m.loss(t.data(), B));
}

template <class Bk> std::vector<double> grads_of(VitClassifier<Bk>& m, const Data& d, int B, double* loss) {
  using T = typename Bk::T;
  std::vector<T> imgs(d.imgs.begin(), d.imgs.end()), t(d.targets.begin(), d.targets.end());
  *loss = loss_of(m, imgs, t, B);
  m.zero_grad();
  m.backward(T(1), B);
  return std::vector<double>(m.grads_data(), m.grads_data() + m.params().total);
}

// Fixed drop-path scales (depth, 2, B): a mix of dropped (0) and kept (1/(1−p)) paths.
template <class Bk> void fixed_drop_mask(VitClassifier<Bk>& m, int B) {
  using T = typename Bk::T;
  auto& bs = m.blocks();
  std::vector<T> s(size_t(bs.depth()) * 2 * B);
  for (int i = 0; i < bs.depth(); ++i)
    for (int br = 0; br < 2; ++br)
      for (int b = 0; b < B; ++b)
        s[(size_t(i) * 2 + br) * B + b] = (i + br + b) % 3 == 0 ? T(0) : T(1.0 / (1.0 - bs.block_rate(i)));
  bs.set_drop_scales(s.data(), B);
}

}  // namespace

class VitGrad : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

// Every tensor, a sample of its elements, against central differences of the soft-target cross-entropy.
TEST_P(VitGrad, MatchesFiniteDifferences) {
  const auto [global_pool, drop] = GetParam();
  const ModelConfig c = tiny();
  ClassifierConfig cc{5, global_pool, drop ? 0.3 : 0.0};
  const int B = 3;
  VitClassifier<CpuBackend<double>> m(c, cc, B);
  randomize(m, 3);
  if (drop) {
    m.set_training(true);
    fixed_drop_mask(m, B);
  }
  const Data d = make_data(c, B, 5, 5);
  double loss;
  const auto g = grads_of(m, d, B, &loss);
  std::vector<double> imgs = d.imgs, t = d.targets;
  std::mt19937 pick(9);
  for (const auto& s : m.params().specs) {
    for (int k = 0; k < 4; ++k) {
      const size_t i = s.offset + pick() % s.numel;
      double& p = m.params_data()[i];
      const double p0 = p, eps = 1e-5;
      p = p0 + eps;
      const double fp = loss_of(m, imgs, t, B);
      p = p0 - eps;
      const double fm = loss_of(m, imgs, t, B);
      p = p0;
      const double num = (fp - fm) / (2 * eps);
      EXPECT_NEAR(g[i], num, 1e-7 + 1e-5 * std::abs(num)) << s.name << "[" << i - s.offset << "]";
    }
  }
}

// The reference loops and the CPU kernels agree on logits and every gradient (double: tight; float: close).
TEST_P(VitGrad, CpuMatchesReference) {
  const auto [global_pool, drop] = GetParam();
  const ModelConfig c = tiny();
  ClassifierConfig cc{5, global_pool, drop ? 0.3 : 0.0};
  const int B = 4;
  VitClassifier<RefBackend<double>> r(c, cc, B);
  VitClassifier<CpuBackend<double>> cd(c, cc, B);
  VitClassifier<CpuBackend<float>> cf(c, cc, B);
  randomize(r, 7), randomize(cd, 7), randomize(cf, 7);
  if (drop) {
    r.set_training(true), cd.set_training(true), cf.set_training(true);
    fixed_drop_mask(r, B), fixed_drop_mask(cd, B), fixed_drop_mask(cf, B);
  }
  const Data d = make_data(c, B, 5, 11);
  double lr, lc, lf;
  const auto gr = grads_of(r, d, B, &lr);
  const auto gc = grads_of(cd, d, B, &lc);
  const auto gf = grads_of(cf, d, B, &lf);
  EXPECT_NEAR(lc, lr, 1e-12 * std::abs(lr));
  EXPECT_NEAR(lf, lr, 1e-5 * std::abs(lr));
  EXPECT_LT(rel_l2(gc, gr), 1e-11);
  EXPECT_LT(rel_l2(gf, gr), 1e-4);
  std::vector<double> l1(r.logits(), r.logits() + B * 5), l2(cd.logits(), cd.logits() + B * 5);
  expect_close(l2, l1, 1e-10, 1e-12, "logits");
  for (const auto& s : r.params().specs) {  // every tensor is reached by the backward
    double n = 0;
    for (size_t i = 0; i < s.numel; ++i) n += gr[s.offset + i] * gr[s.offset + i];
    EXPECT_GT(n, 0.0) << s.name << " has an all-zero gradient";
  }
}

INSTANTIATE_TEST_SUITE_P(PoolAndDropPath, VitGrad, ::testing::Combine(::testing::Bool(), ::testing::Bool()));

TEST(Vit, DropPathOffInEvalAndSmallerBatches) {
  const ModelConfig c = tiny();
  const int B = 4;
  VitClassifier<CpuBackend<double>> m(c, {5, true, 0.5}, B);
  randomize(m, 1);
  const Data d = make_data(c, B, 5, 2);
  std::vector<double> l_eval(m.forward(d.imgs.data(), B), m.logits() + B * 5);
  // Training mode with every path kept at scale 1 equals evaluation; dropping a path changes that sample only.
  m.set_training(true);
  std::vector<double> ones(size_t(c.depth) * 2 * B, 1.0);
  m.blocks().set_drop_scales(ones.data(), B);
  std::vector<double> l1(m.forward(d.imgs.data(), B), m.logits() + B * 5);
  expect_close(l1, l_eval, 1e-12, 1e-12, "scale 1 == eval");
  ones[(size_t(2) * 2 + 1) * B + 1] = 0.0;  // block 2, MLP branch, sample 1
  std::vector<double> l2(m.forward(d.imgs.data(), B), m.logits() + B * 5);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < 5; ++k) {
      if (b == 1) continue;
      EXPECT_EQ(l2[b * 5 + k], l1[b * 5 + k]);
    }
  m.blocks().set_drop_scales(ones.data(), B);
  l2.assign(m.forward(d.imgs.data(), B), m.logits() + B * 5);
  EXPECT_GT(std::abs(l2[5] - l1[5]) + std::abs(l2[6] - l1[6]), 1e-9);
  // A smaller batch gives the same logits for the samples it holds (evaluation's final partial batch).
  m.set_training(false);
  std::vector<double> l3(m.forward(d.imgs.data(), 2), m.logits() + 2 * 5);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(l3[i], l_eval[i], 1e-13);
}

// The row-tiled CPU step (model/vit_blocks.cpp) under drop path: each tile applies its own samples' scales
// (offset into the (depth, 2, B) table) forward and backward, so logits, loss and gradients equal the untiled
// step's up to float rounding (OpenBLAS rounds a row's products by where its block of rows starts). A scale read
// from another sample would move that sample's logits, or its gradients, by far more.
TEST(Vit, RowTiledStepWithDropPath) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const ModelConfig c = tiny();  // 9 patches + cls: 10 tokens
  const int B = 500, NC = 5;     // 5000 rows: 9 tiles
  VitClassifier<CpuBackend<float>> m(c, {NC, true, 0.5}, B);
  randomize(m, 21);
  EXPECT_EQ(m.blocks().forward_tiles(B), 9);
  EXPECT_EQ(m.blocks().backward_tiles(B), 9);
  m.set_training(true);
  std::vector<int64_t> ids(B);
  for (int b = 0; b < B; ++b) ids[size_t(b)] = b;
  m.blocks().draw_drop_path(5, 6, ids.data(), B);
  const auto& sc = m.blocks().drop_scales();
  EXPECT_GT(std::count(sc.begin(), sc.end(), 0.f), 100);  // paths dropped, in many samples
  const Data d = make_data(c, B, NC, 22);
  auto run = [&](bool tiles, std::vector<double>* logits) {
    cpu::set_row_tiles(tiles);
    double loss = 0;
    std::vector<double> g = grads_of(m, d, B, &loss);
    logits->assign(m.logits(), m.logits() + size_t(B) * NC);
    g.push_back(loss);
    return g;
  };
  std::vector<double> l_off, l_on;
  const std::vector<double> off = run(false, &l_off), on = run(true, &l_on);
  cpu::set_row_tiles(true);
  omp_set_num_threads(threads);
  expect_close(l_on, l_off, 1e-5, 1e-6, "logits");
  EXPECT_LT(rel_l2(on, off), 1e-5);
  // A scale taken from the wrong sample would move that sample's logits by far more than rounding.
  EXPECT_LT(std::abs(on.back() - off.back()), 1e-6 * std::abs(off.back()));
}

// ModelMode::inference (finetune --eval): no gradients, no backward buffers, fewer activations, and the same logits
// and loss bit for bit as the training model in eval mode, for both poolings, full and partial batches, twice.
TEST(Vit, InferenceModeMatchesTrainForward) {
  const ModelConfig c = tiny();
  const int B = 4, NC = 5;
  for (bool gp : {true, false}) {
    SCOPED_TRACE(gp ? "global pool" : "cls token");
    VitClassifier<CpuBackend<float>> tr(c, {NC, gp, 0.2}, B), inf(c, {NC, gp, 0.2}, B, ModelMode::inference);
    randomize(tr, 7);
    std::copy_n(tr.params_data(), tr.params().total, inf.params_data());
    EXPECT_EQ(inf.grads_data(), nullptr);
    EXPECT_LT(inf.activation_elements(), tr.activation_elements());
    tr.set_training(false), inf.set_training(false);
    const Data d = make_data(c, B, NC, 8);
    const std::vector<float> imgs(d.imgs.begin(), d.imgs.end()), tg(d.targets.begin(), d.targets.end());
    for (int n : {B, 3, B}) {
      const std::vector<float> lt(tr.forward(imgs.data(), n), tr.logits() + n * NC);
      const std::vector<float> li(inf.forward(imgs.data(), n), inf.logits() + n * NC);
      EXPECT_EQ(lt, li);
      EXPECT_EQ(tr.loss(tg.data(), n), inf.loss(tg.data(), n));
    }
    EXPECT_THROW(inf.zero_grad(), Error);
    EXPECT_THROW(inf.backward(1.f, B), Error);
  }
}

TEST(Vit, DropPathDraws) {
  const ModelConfig c = tiny();
  const int B = 64;
  VitClassifier<CpuBackend<float>> m(c, {5, true, 0.4}, B);
  auto& bs = m.blocks();
  EXPECT_DOUBLE_EQ(bs.block_rate(0), 0.0);  // linspace(0, 0.4, 3)
  EXPECT_DOUBLE_EQ(bs.block_rate(1), 0.2);
  EXPECT_DOUBLE_EQ(bs.block_rate(2), 0.4);
  std::vector<int64_t> ids(B);
  for (int b = 0; b < B; ++b) ids[b] = 1000 + b;
  const uint64_t key = Rng::derive(7, stream::drop);
  int dropped[3] = {0, 0, 0};
  std::vector<float> first;
  for (int epoch = 0; epoch < 50; ++epoch) {
    bs.draw_drop_path(key, uint64_t(epoch), ids.data(), B);
    const auto& s = bs.drop_scales();
    if (epoch == 0) first = s;
    for (int i = 0; i < 3; ++i)
      for (int br = 0; br < 2; ++br)
        for (int b = 0; b < B; ++b) {
          const float v = s[(size_t(i) * 2 + br) * B + b];
          const float keep = float(1.0 / (1.0 - bs.block_rate(i)));
          EXPECT_TRUE(v == 0.0f || v == keep) << v;
          dropped[i] += v == 0.0f;
        }
  }
  const double n = 50.0 * 2 * B;
  EXPECT_EQ(dropped[0], 0);
  EXPECT_NEAR(dropped[1] / n, 0.2, 0.03);
  EXPECT_NEAR(dropped[2] / n, 0.4, 0.03);
  // Same (key, epoch, sample id) → same masks, whatever the position of the sample in the batch.
  std::vector<int64_t> rev(ids.rbegin(), ids.rend());
  bs.draw_drop_path(key, 0, rev.data(), B);
  const auto& s = bs.drop_scales();
  for (int ib = 0; ib < 6; ++ib)
    for (int b = 0; b < B; ++b) EXPECT_EQ(s[size_t(ib) * B + b], first[size_t(ib) * B + (B - 1 - b)]);
}

TEST(Vit, ParamListNamesLayersAndDecay) {
  ModelConfig c = tiny();
  for (bool gp : {true, false}) {
    const ParamList pl = make_vit_params(c, {7, gp, 0.1});
    std::vector<std::string> names;
    for (const auto& s : pl.specs) names.push_back(s.name);
    EXPECT_EQ(names[0], "cls_token");
    EXPECT_EQ(names[1], "pos_embed");
    EXPECT_EQ(names[2], "patch_embed.proj.weight");
    EXPECT_EQ(pl.find("pos_embed").shape, (std::vector<int64_t>{1, 10, 12}));
    EXPECT_EQ(pl.find("head.weight").shape, (std::vector<int64_t>{7, 12}));
    EXPECT_EQ(pl.try_find("fc_norm.weight") != nullptr, gp);
    EXPECT_EQ(pl.try_find("norm.weight") != nullptr, !gp);
    EXPECT_EQ(pl.specs.size(), 4 + 12 * 3 + 2 + 2u);
    for (const auto& s : pl.specs) {
      // get_layer_id_for_vit
      int want = c.depth + 1;
      if (s.name == "cls_token" || s.name == "pos_embed" || s.name.rfind("patch_embed", 0) == 0) want = 0;
      if (s.name.rfind("blocks.", 0) == 0) want = std::stoi(s.name.substr(7)) + 1;
      EXPECT_EQ(s.layer_id, want) << s.name;
      // param_groups_lrd: no decay for ndim 1 and the no_weight_decay_list
      const bool no_decay = s.shape.size() == 1 || s.name == "cls_token" || s.name == "pos_embed";
      EXPECT_EQ(s.decay, !no_decay) << s.name;
    }
  }
}

TEST(Vit, LayerDecayScales) {
  // depth 3: num_layers 4, scales[i] = 0.75^(4 − i), i = 0..4
  const auto s = layer_lr_scales(3, 0.75);
  ASSERT_EQ(s.size(), 5u);
  const double want[5] = {0.31640625, 0.421875, 0.5625, 0.75, 1.0};
  for (int i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(s[i], want[i]);
  EXPECT_EQ(layer_lr_scales(12, 1.0), std::vector<double>(14, 1.0));
}

TEST(Vit, InitStatistics) {
  ModelConfig c = tiny();
  c.embed_dim = 48, c.num_heads = 4;
  VitClassifier<CpuBackend<float>> m(c, {10, true, 0.1}, 1);
  m.init(Rng::derive(0, stream::init));
  auto stats = [&](const std::string& n, double* mean, double* sd) {
    const auto& s = m.params().find(n);
    double a = 0, b = 0;
    for (size_t i = 0; i < s.numel; ++i) {
      const double v = m.params_data()[s.offset + i];
      a += v, b += v * v;
    }
    *mean = a / s.numel;
    *sd = std::sqrt(b / s.numel - *mean * *mean);
  };
  double mu, sd;
  stats("blocks.0.mlp.fc1.weight", &mu, &sd);
  EXPECT_NEAR(sd, 0.02, 0.002);
  stats("fc_norm.weight", &mu, &sd);
  EXPECT_EQ(mu, 1.0);
  // pos_embed starts as the sin-cos table: zero cls row, row 1 = position (0, 0): [sin 0.. | cos 0 ..]
  const float* pos = m.param("pos_embed");
  for (int d = 0; d < 48; ++d) EXPECT_EQ(pos[d], 0.0f);
  EXPECT_EQ(pos[48 + 0], 0.0f);   // sin(0)
  EXPECT_EQ(pos[48 + 12], 1.0f);  // cos(0)
  m.init_head(5, 2e-5);
  stats("head.weight", &mu, &sd);
  EXPECT_NEAR(sd, 2e-5, 4e-6);
  EXPECT_THROW((VitClassifier<CpuBackend<float>>(c, {0, true, 0.1}, 1)), mae::Error);
  EXPECT_THROW((VitClassifier<CpuBackend<float>>(c, {3, true, 1.0}, 1)), mae::Error);
}

// ------------------------------------------------------------------------------------------ weights and loading

namespace {
std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("mae_test_vit_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}
}  // namespace

TEST(VitWeights, InterpolatePosEmbedMatchesTorch) {
  // F.interpolate(bicubic, align_corners=False) of a 3×3 grid (D = 1) to 4×4, from torch 1.13; the cls row is kept.
  std::vector<float> src(10);
  for (int i = 0; i < 10; ++i) src[i] = float((i * 37) % 101) / 16.0f - 3.0f;
  const auto out = interpolate_pos_embed(src.data(), 1, 3, 4, 1);
  const float want[16] = {-0.898345947f, 1.1862793f,  0.392791748f, -2.70697021f, -0.522369385f, 1.56225586f,
                          0.768768311f,  -2.33099365f, 0.0653991699f, 2.15002418f, 1.35653698f,   -1.7432251f,
                          0.441375732f,  2.52600098f, 1.73251343f,  -1.36724854f};
  ASSERT_EQ(out.size(), 17u);
  EXPECT_EQ(out[0], src[0]);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(out[1 + i], want[i], 2e-6) << i;  // within float rounding of torch's
  // Same grid: the identity
  const auto same = interpolate_pos_embed(src.data(), 1, 3, 3, 1);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(same[i], src[i], 1e-6);
}

TEST(VitWeights, FinetuneFromMaeCheckpoint) {
  ModelConfig c = tiny();  // 6 px, patch 2: grid 3
  MaeModel<CpuBackend<float>> mae(c, 1, 0.5);
  mae.init(1);
  const std::string path = temp_path("mae.safetensors");
  save_params(path, c, mae.params(), mae.params_data());
  const LoadedWeights w = load_weights_any(path, "");

  for (bool gp : {true, false}) {
    ModelConfig m = c;
    m.img_size = 8;  // grid 4: pos_embed interpolated from 3×3
    VitClassifier<CpuBackend<float>> v(m, {4, gp, 0.1}, 2);
    v.init(2);
    const FinetuneInit r = load_finetune_weights(w, m, v.params(), v.params_data());
    std::set<std::string> missing(r.missing.begin(), r.missing.end());
    std::set<std::string> want_missing = {"head.weight", "head.bias"};
    if (gp) want_missing.insert({"fc_norm.weight", "fc_norm.bias"});
    EXPECT_EQ(missing, want_missing);  // official: assert set(msg.missing_keys) == {...}
    EXPECT_EQ(r.pos_note, "interpolated 3x3 -> 4x4");
    std::set<std::string> ignored(r.ignored.begin(), r.ignored.end());
    for (const char* n : {"decoder_pred.weight", "mask_token", "decoder_pos_embed"}) EXPECT_TRUE(ignored.count(n)) << n;
    EXPECT_EQ(ignored.count("norm.weight"), gp ? 1u : 0u);  // the MAE's norm feeds --cls_token models only
    // encoder tensors copied exactly
    const auto& s = v.params().find("blocks.1.mlp.fc2.weight");
    const float* src = mae.param("blocks.1.mlp.fc2.weight");
    for (size_t i = 0; i < s.numel; ++i) ASSERT_EQ(v.params_data()[s.offset + i], src[i]);
    EXPECT_EQ(v.param("cls_token")[3], mae.param("cls_token")[3]);
    EXPECT_EQ(v.param("pos_embed")[0], 0.0f);  // the cls row of the sin-cos table stays 0
  }
  // Another encoder shape or channel count is an error naming the file and the mismatch.
  ModelConfig deeper = c;
  deeper.depth = 4;
  VitClassifier<CpuBackend<float>> d(deeper, {4, true, 0.0}, 1);
  try {
    load_finetune_weights(w, deeper, d.params(), d.params_data());
    FAIL() << "depth mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("depth"), std::string::npos) << e.what();
  }
  ModelConfig rgb = c;
  rgb.in_chans = 3;
  VitClassifier<CpuBackend<float>> r3(rgb, {4, true, 0.0}, 1);
  EXPECT_THROW(load_finetune_weights(w, rgb, r3.params(), r3.params_data()), Error);
}

TEST(VitWeights, ClassifierCheckpointRoundTripAndMaeRefused) {
  const ModelConfig c = tiny();
  VitClassifier<CpuBackend<float>> v(c, {7, false, 0.2}, 1);
  v.init(3);
  const std::string path = temp_path("cls.safetensors");
  save_classifier(path, c, v.classifier(), v.params(), v.params_data());
  io::SafeTensorsReader f(path);
  ModelConfig c2;
  ClassifierConfig cc2;
  read_classifier_config(f, &c2, &cc2);
  EXPECT_EQ(config_to_json(c2), config_to_json(c));
  EXPECT_EQ(cc2.nb_classes, 7);
  EXPECT_FALSE(cc2.global_pool);
  EXPECT_EQ(f.entry("pos_embed").shape, (std::vector<int64_t>{1, 10, 12}));
  EXPECT_FALSE(f.has("decoder_pos_embed"));
  // a plain MAE checkpoint is not a classifier
  MaeModel<CpuBackend<float>> mae(c, 1, 0.5);
  const std::string mp = temp_path("plain_mae.safetensors");
  save_params(mp, c, mae.params(), mae.params_data());
  io::SafeTensorsReader g(mp);
  try {
    read_classifier_config(g, &c2, &cc2);
    FAIL() << "MAE checkpoint accepted as a classifier";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a fine-tuned classifier"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}
