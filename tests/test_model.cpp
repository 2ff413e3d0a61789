// The whole model: backend agreement (reference loops vs CPU kernels), end-to-end finite differences in double,
// official initialisation statistics, the parameter list and the sin-cos table.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/host_alloc.h"
#include "gradcheck.h"
#include "model/mae.h"
#include "model/masking.h"
#include "model/pos_embed.h"
#include "model/vit.h"
#include "ops/backend.h"
#include "ops/cpu/row_tiles.h"
#include "train/step_graph.h"

using namespace mae;
using mae::test::expect_close;
using mae::test::rel_l2;

namespace {

// Odd little config: 3 channels, 4×4 grid of 2-px patches, decoder width ≠ encoder width, several heads.
ModelConfig tiny(bool norm_pix) {
  ModelConfig c;
  c.img_size = 8, c.patch_size = 2, c.in_chans = 3;
  c.embed_dim = 12, c.depth = 2, c.num_heads = 3;
  c.decoder_embed_dim = 8, c.decoder_depth = 1, c.decoder_num_heads = 2;
  c.mlp_ratio = 2.5;  // hidden 30 / 20: not multiples of 8
  c.norm_pix_loss = norm_pix;
  return c;
}

struct Batch {
  std::vector<double> imgs;
  std::vector<float> noise;
};

Batch make_batch(const ModelConfig& c, int B, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<float> ud;
  Batch b;
  b.imgs.resize(size_t(B) * c.in_chans * c.img_size * c.img_size);
  for (auto& x : b.imgs) x = nd(g);
  b.noise.resize(size_t(B) * c.num_patches());
  for (auto& x : b.noise) x = ud(g);
  return b;
}

// Random weights (not the official init) so no parameter is trivially 0 or 1.
template <class Bk> void randomize(MaeModel<Bk>& m, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, 0.3);
  for (size_t i = 0; i < m.params().total; ++i) m.params_data()[i] = typename Bk::T(nd(g));
}

template <class Bk>
std::vector<double> run(MaeModel<Bk>& m, const Batch& b, double* loss, std::vector<double>* pred = nullptr) {
  using T = typename Bk::T;
  std::vector<T> imgs(b.imgs.begin(), b.imgs.end());
  *loss = double(m.forward(imgs.data(), b.noise.data()));
  if (pred) {
    const size_t n = size_t(m.batch()) * (1 + m.config().num_patches()) * m.config().patch_dim();
    pred->assign(m.pred(), m.pred() + n);
  }
  m.zero_grad();
  m.backward();
  return std::vector<double>(m.grads_data(), m.grads_data() + m.params().total);
}

}  // namespace

class ModelBackends : public ::testing::TestWithParam<std::tuple<bool, double>> {};

// The CPU kernels and the reference loops give the same loss, predictions and every gradient.
TEST_P(ModelBackends, CpuMatchesReference) {
  const auto [norm_pix, ratio] = GetParam();
  const ModelConfig c = tiny(norm_pix);
  const int B = 3;
  MaeModel<RefBackend<double>> ref(c, B, ratio);
  MaeModel<CpuBackend<double>> cpu(c, B, ratio);
  MaeModel<CpuBackend<float>> cpuf(c, B, ratio);
  randomize(ref, 7);
  randomize(cpu, 7);
  randomize(cpuf, 7);
  const Batch b = make_batch(c, B, 11);
  double lr, lc, lf;
  std::vector<double> pr, pc, pf;
  const auto gr = run(ref, b, &lr, &pr);
  const auto gc = run(cpu, b, &lc, &pc);
  const auto gf = run(cpuf, b, &lf, &pf);
  EXPECT_NEAR(lc, lr, 1e-12 * std::abs(lr));
  expect_close(pc, pr, 1e-10, 1e-12, "pred cpu<double> vs ref");
  EXPECT_LT(rel_l2(gc, gr), 1e-11);
  EXPECT_NEAR(lf, lr, 1e-5 * std::abs(lr));
  EXPECT_LT(rel_l2(pf, pr), 1e-5);
  EXPECT_LT(rel_l2(gf, gr), 1e-4);
  // Every tensor gets a gradient (the key slice of qkv.bias is analytically 0, so look at whole tensors).
  for (const auto& s : ref.params().specs) {
    double n = 0;
    for (size_t i = 0; i < s.numel; ++i) n += gr[s.offset + i] * gr[s.offset + i];
    EXPECT_GT(n, 0.0) << s.name << " has an all-zero gradient";
  }
}

// Finite differences through the whole model, in double, on a sample of every tensor's elements.
TEST_P(ModelBackends, GradientsMatchFiniteDifferences) {
  const auto [norm_pix, ratio] = GetParam();
  const ModelConfig c = tiny(norm_pix);
  const int B = 2;
  MaeModel<CpuBackend<double>> m(c, B, ratio);
  randomize(m, 3);
  const Batch b = make_batch(c, B, 5);
  double loss;
  const auto g = run(m, b, &loss);
  std::vector<double> imgs(b.imgs.begin(), b.imgs.end());
  std::mt19937 pick(9);
  for (const auto& s : m.params().specs) {
    for (int k = 0; k < 3; ++k) {
      const size_t i = s.offset + pick() % s.numel;
      double& p = m.params_data()[i];
      const double p0 = p, eps = 1e-5;
      p = p0 + eps;
      const double fp = m.forward(imgs.data(), b.noise.data());
      p = p0 - eps;
      const double fm = m.forward(imgs.data(), b.noise.data());
      p = p0;
      const double num = (fp - fm) / (2 * eps);
      EXPECT_NEAR(g[i], num, 1e-6 + 1e-5 * std::abs(num)) << s.name << "[" << i - s.offset << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(NormPixAndRatio, ModelBackends,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0.75, 0.5, 0.3)));

std::vector<float> grads_of(const MaeModel<CpuBackend<float>>& m) {
  return std::vector<float>(m.grads_data(), m.grads_data() + m.params().total);
}

// The training-loop entry points: forward_nowait + loss_wait, and GraphedStep::run (on a host backend a plain
// step) give exactly forward + backward, whatever dloss.
TEST(Model, NowaitAndGraphStepEqualPlainStep) {
  const ModelConfig c = tiny(true);
  MaeModel<CpuBackend<float>> a(c, 2, 0.75), b(c, 2, 0.75);
  randomize(a, 3);
  randomize(b, 3);
  const Batch bt = make_batch(c, 2, 4);
  const std::vector<float> imgs(bt.imgs.begin(), bt.imgs.end());
  for (float dloss : {1.f, 0.25f}) {
    a.zero_grad();
    const float la = a.forward(imgs.data(), bt.noise.data());
    a.backward(dloss);
    b.zero_grad();
    b.forward_nowait(imgs.data(), bt.noise.data());
    EXPECT_EQ(b.loss_wait(), la);
    b.backward(dloss);
    EXPECT_EQ(grads_of(a), grads_of(b));
    b.zero_grad();
    GraphedStep<CpuBackend<float>>(b).run(imgs.data(), bt.noise.data(), dloss);
    EXPECT_EQ(b.loss_wait(), la);
    EXPECT_EQ(grads_of(a), grads_of(b));
  }
}

// ModelMode::inference: no gradients, no backward buffers, one activation set per block stack — and the same
// forward (loss, pred, encoder latent) bit for bit, twice in a row (the shared activations leave no trace).
TEST(Model, InferenceModeSameForwardLessMemory) {
  const ModelConfig c = tiny(true);
  MaeModel<CpuBackend<float>> tr(c, 2, 0.75), inf(c, 2, 0.75, ModelMode::inference);
  randomize(tr, 5);
  std::copy_n(tr.params_data(), tr.params().total, inf.params_data());
  EXPECT_EQ(inf.grads_data(), nullptr);
  EXPECT_LT(inf.activation_elements(), tr.activation_elements());  // (ViT-B: 2.8 GB → 1.3 GB peak RSS in mae embed)
  const size_t np = size_t(2) * (1 + c.num_patches()) * c.patch_dim();
  for (unsigned seed : {4u, 9u, 4u}) {
    const Batch bt = make_batch(c, 2, seed);
    const std::vector<float> imgs(bt.imgs.begin(), bt.imgs.end());
    EXPECT_EQ(tr.forward(imgs.data(), bt.noise.data()), inf.forward(imgs.data(), bt.noise.data()));
    EXPECT_EQ(std::vector<float>(tr.pred(), tr.pred() + np), std::vector<float>(inf.pred(), inf.pred() + np));
    const size_t nl = size_t(2) * (1 + tr.len_keep()) * c.embed_dim;
    const float* lt = tr.forward_encoder(imgs.data(), bt.noise.data());
    const std::vector<float> a(lt, lt + nl);
    const float* li = inf.forward_encoder(imgs.data(), bt.noise.data());
    EXPECT_EQ(a, std::vector<float>(li, li + nl));
  }
  EXPECT_THROW(inf.backward(), mae::Error);
}

// The CPU step in row tiles (model/vit_blocks.cpp: whole samples, one thread per tile through every block; the
// backward in one run of tiles a thread, each run's weight gradients in its own buffer, summed in run order) gives
// the untiled step's loss, predictions, latent and gradients up to float rounding (OpenBLAS rounds a row's
// products differently depending on where its block of rows starts: tiles and thread counts move those boundaries,
// and the runs split the gradients' sums), and the same bits on every run; the inference model (one activation set
// shared by the blocks) in tiles gives the training model's tiled forward bit for bit. Three OpenMP threads and a
// batch big enough that both stacks tile (runs of unequal length; samples split unevenly).
TEST(Model, RowTiledStepSameAsUntiled) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(3);
  const ModelConfig c = tiny(true);  // 16 patches, mask 0.75: 5 encoder tokens, 17 decoder tokens
  const int B = 700;                 // 3500 encoder rows (6 tiles), 11900 decoder rows (23 tiles)
  MaeModel<CpuBackend<float>> m(c, B, 0.75), inf(c, B, 0.75, ModelMode::inference);
  randomize(m, 11);
  std::copy_n(m.params_data(), m.params().total, inf.params_data());
  EXPECT_EQ(m.encoder_blocks().forward_tiles(B), 6);
  EXPECT_EQ(m.decoder_blocks().forward_tiles(B), 23);
  EXPECT_EQ(m.encoder_blocks().forward_tiles(B / 2), 1);  // fewer than two tiles a thread: untiled
  EXPECT_EQ(m.encoder_blocks().backward_tiles(B), 6);     // the backward too: runs of 2 + 2 + 2 tiles
  EXPECT_EQ(m.decoder_blocks().backward_tiles(B), 23);    // 7 + 8 + 8
  const Batch bt = make_batch(c, B, 12);
  const std::vector<float> imgs(bt.imgs.begin(), bt.imgs.end());
  const size_t np = size_t(B) * (1 + c.num_patches()) * c.patch_dim(), nl = size_t(B) * (1 + m.len_keep()) * c.embed_dim;
  struct Out {
    std::vector<float> loss, pred, grads, latent;
  };
  auto step = [&](bool tiles) {
    cpu::set_row_tiles(tiles);
    Out o;
    m.zero_grad();
    const float loss = m.forward(imgs.data(), bt.noise.data());
    o.loss = {loss};
    o.pred.assign(m.pred(), m.pred() + np);
    const float* lat_train = m.forward_encoder(imgs.data(), bt.noise.data());
    o.latent.assign(lat_train, lat_train + nl);
    m.forward(imgs.data(), bt.noise.data());
    m.backward();
    o.grads.assign(m.grads_data(), m.grads_data() + m.params().total);
    const float* lat = inf.forward_encoder(imgs.data(), bt.noise.data());
    EXPECT_EQ(std::vector<float>(lat, lat + nl), o.latent);
    EXPECT_EQ(inf.forward(imgs.data(), bt.noise.data()), loss);
    EXPECT_EQ(std::vector<float>(inf.pred(), inf.pred() + np), o.pred);
    return o;
  };
  const Out off = step(false), on = step(true), again = step(true);
  cpu::set_row_tiles(true);
  omp_set_num_threads(threads);
  EXPECT_EQ(again.loss, on.loss);  // deterministic: a tile's rows do not depend on which thread takes it
  EXPECT_EQ(again.pred, on.pred);
  EXPECT_EQ(again.grads, on.grads);
  expect_close(on.loss, off.loss, 1e-6, 0, "loss");
  expect_close(on.pred, off.pred, 1e-5, 1e-6, "pred");
  expect_close(on.latent, off.latent, 1e-5, 1e-6, "latent");
  EXPECT_LT(rel_l2(on.grads, off.grads), 1e-5);
  EXPECT_LT(std::count(on.grads.begin(), on.grads.end(), 0.f), long(on.grads.size()) / 2);  // a real backward
}

// mae bench --profile on the CPU: with profiling on, every op call of a step is counted under its name (attention
// once per block each way; the encoder and decoder stacks together); off, nothing is recorded.
TEST(Model, OpProfileCountsEveryCall) {
  const ModelConfig c = tiny(true);
  MaeModel<CpuBackend<float>> m(c, 2, 0.75);
  randomize(m, 3);
  const Batch bt = make_batch(c, 2, 4);
  const std::vector<float> imgs(bt.imgs.begin(), bt.imgs.end());
  auto step = [&] {
    m.zero_grad();
    m.forward(imgs.data(), bt.noise.data());
    m.backward();
  };
  prof::report();
  step();
  EXPECT_TRUE(prof::report().empty());
  prof::set_on(true);
  step();
  prof::set_on(false);
  std::map<std::string, prof::OpTime> by;
  for (const auto& t : prof::report()) by[t.op] = t;
  const int blocks = c.depth + c.decoder_depth;
  EXPECT_EQ(by["attention_forward"].calls, blocks);
  EXPECT_EQ(by["attention_backward"].calls, blocks);
  EXPECT_EQ(by["linear_gelu_forward"].calls, blocks);
  // patch embed, qkv/proj/fc2 per block, decoder_embed, decoder_pred (fc1 is linear_gelu_forward)
  EXPECT_EQ(by["linear_forward"].calls, 1 + 3 * blocks + 2);
  // backward: the same linears, fc1 included, fc2's in two calls (input gradient, then weight gradient once the
  // fused GELU pass has recomputed its input)
  EXPECT_EQ(by["linear_backward"].calls, 1 + 5 * blocks + 2);
  EXPECT_EQ(by["gelu_backward_recompute"].calls, blocks);
  EXPECT_EQ(by["masked_mse_forward"].calls, 1);
  for (const auto& [name, t] : by) EXPECT_GE(t.ms, 0.0) << name;
}

TEST(Model, BatchSamplesAreIndependent) {
  // Sample b's prediction depends only on sample b's image and noise.
  const ModelConfig c = tiny(true);
  MaeModel<CpuBackend<double>> m2(c, 2, 0.75), m1(c, 1, 0.75);
  randomize(m2, 1);
  randomize(m1, 1);
  const Batch b = make_batch(c, 2, 2);
  m2.forward(b.imgs.data(), b.noise.data());
  const size_t img = size_t(c.in_chans) * c.img_size * c.img_size, L = c.num_patches(), P = c.patch_dim();
  m1.forward(b.imgs.data() + img, b.noise.data() + L);
  for (size_t i = 0; i < (1 + L) * P; ++i) ASSERT_NEAR(m2.pred()[(1 + L) * P + i], m1.pred()[i], 1e-12);
}

TEST(Model, OfficialInitStatistics) {
  ModelConfig c = tiny(false);
  c.embed_dim = 64, c.num_heads = 4, c.decoder_embed_dim = 32, c.decoder_num_heads = 4;
  MaeModel<CpuBackend<float>> m(c, 1, 0.75);
  m.init(42);
  const double cpp = double(c.in_chans) * c.patch_size * c.patch_size;
  for (const auto& s : m.params().specs) {
    const float* p = m.params_data() + s.offset;
    double mx = 0, sum = 0, sq = 0;
    for (size_t i = 0; i < s.numel; ++i) mx = std::max(mx, double(std::abs(p[i]))), sum += p[i], sq += p[i] * p[i];
    const double mean = sum / s.numel, sd = std::sqrt(sq / s.numel - mean * mean);
    switch (s.init) {
      case Init::Xavier: {
        const double fo = s.shape[0], fi = double(s.numel) / fo, a = std::sqrt(6 / (fi + fo));
        EXPECT_LE(mx, a) << s.name;
        EXPECT_GT(mx, 0.8 * a) << s.name;
        EXPECT_NEAR(sd, a / std::sqrt(3.0), 0.15 * a) << s.name;
        break;
      }
      case Init::ConvBias:
        EXPECT_LE(mx, 1 / std::sqrt(cpp)) << s.name;
        EXPECT_GT(mx, 0) << s.name;
        break;
      case Init::Normal002:
        EXPECT_NEAR(sd, 0.02, 0.01) << s.name;
        break;
      case Init::One:
        EXPECT_EQ(mx, 1.0) << s.name;
        EXPECT_EQ(sd, 0.0) << s.name;
        break;
      case Init::Zero:
        EXPECT_EQ(mx, 0.0) << s.name;
        break;
    }
  }
  // Same seed, same weights; another seed, others.
  MaeModel<CpuBackend<float>> m2(c, 1, 0.75), m3(c, 1, 0.75);
  m2.init(42);
  m3.init(43);
  EXPECT_EQ(0, std::memcmp(m.params_data(), m2.params_data(), m.params().total * sizeof(float)));
  EXPECT_NE(0, std::memcmp(m.params_data(), m3.params_data(), m.params().total * sizeof(float)));
}

TEST(Model, ParamListOfficialNamesAndGroups) {
  const ParamList l = make_mae_params(preset("mae_vit_base_patch16"));
  // patch (2) + cls + 12 blocks × 12 tensors + norm (2) + decoder_embed (2) + mask_token + 8 × 12 + norms + pred
  EXPECT_EQ(l.specs.size(), size_t(3 + 12 * 12 + 2 + 3 + 8 * 12 + 2 + 2));
  EXPECT_EQ(l.find("blocks.11.attn.qkv.weight").shape, (std::vector<int64_t>{2304, 768}));
  EXPECT_EQ(l.find("patch_embed.proj.weight").shape, (std::vector<int64_t>{768, 3, 16, 16}));
  EXPECT_EQ(l.find("decoder_pred.weight").shape, (std::vector<int64_t>{16 * 16 * 3, 512}));
  EXPECT_EQ(l.find("cls_token").shape, (std::vector<int64_t>{1, 1, 768}));
  // Official groups: no decay for 1-D tensors and biases; tokens (3-D) are decayed.
  for (const auto& s : l.specs) {
    const bool bias = s.name.size() > 5 && s.name.substr(s.name.size() - 5) == ".bias";
    EXPECT_EQ(s.decay, !(s.shape.size() == 1 || bias)) << s.name;
  }
  EXPECT_TRUE(l.find("cls_token").decay);
  EXPECT_TRUE(l.find("mask_token").decay);
  // Trainable parameter count from the architecture: a block has 12·D² + 13·D (qkv, proj, fc1, fc2, 2 norms).
  size_t n = 0;
  for (const auto& s : l.specs) n += s.numel;
  const size_t D = 768, E = 512, Pd = 768;
  const size_t expect = (D * Pd + D) + D + 12 * (12 * D * D + 13 * D) + 2 * D + (E * D + E) + E +
                        8 * (12 * E * E + 13 * E) + 2 * E + (Pd * E + Pd);
  EXPECT_EQ(n, expect);
  // Offsets are aligned and non-overlapping.
  size_t end = 0;
  for (const auto& s : l.specs) {
    EXPECT_EQ(s.offset % 16, 0u);
    EXPECT_GE(s.offset, end);
    end = s.offset + s.numel;
  }
  EXPECT_LE(end, l.total);
}

TEST(Model, SinCosTableMatchesOfficialFormula) {
  // Hand-evaluated entries of the official get_2d_sincos_pos_embed(8, 3, cls_token=True):
  // row 1 + i·3 + j: [sin(j·ω0), sin(j·ω1), cos(j·ω0), cos(j·ω1), sin(i·ω0), sin(i·ω1), cos(i·ω0), cos(i·ω1)],
  // ω_k = 1/10000^(k/2).
  const auto t = sincos_pos_embed_2d(8, 3, 3, true);
  ASSERT_EQ(t.size(), 10u * 8);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(t[k], 0.0f);
  const double w[2] = {1.0, 1.0 / 100.0};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const float* r = &t[(1 + i * 3 + j) * 8];
      for (int k = 0; k < 2; ++k) {
        EXPECT_FLOAT_EQ(r[k], std::sin(j * w[k]));
        EXPECT_FLOAT_EQ(r[2 + k], std::cos(j * w[k]));
        EXPECT_FLOAT_EQ(r[4 + k], std::sin(i * w[k]));
        EXPECT_FLOAT_EQ(r[6 + k], std::cos(i * w[k]));
      }
    }
}

TEST(Model, MaskingIsArgsortOfNoise) {
  const float noise[2 * 5] = {0.5f, 0.1f, 0.9f, 0.3f, 0.7f, /**/ 0.2f, 0.8f, 0.05f, 0.6f, 0.4f};
  int shuf[10], rest[10];
  float mask[10];
  random_masking(shuf, rest, mask, noise, 2, 5, 2);
  const int want_shuf[10] = {1, 3, 0, 4, 2, /**/ 2, 0, 4, 3, 1};
  const float want_mask[10] = {1, 0, 1, 0, 1, /**/ 0, 1, 0, 1, 1};
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(shuf[i], want_shuf[i]) << i;
    EXPECT_EQ(mask[i], want_mask[i]) << i;
    EXPECT_EQ(shuf[(i / 5) * 5 + rest[i]], i % 5) << i;  // ids_restore = argsort(ids_shuffle)
  }
}

TEST(Model, LenKeepUsesPythonFloatArithmetic) {
  ModelConfig c = tiny(false);  // L = 16
  EXPECT_EQ(c.len_keep(0.75), 4);
  EXPECT_EQ(c.len_keep(0.5), 8);
  c.img_size = 20, c.patch_size = 2;  // L = 100: int(100 · (1 − 0.9)) = int(9.999999999999998) = 9, as in Python
  EXPECT_EQ(c.len_keep(0.9), 9);
}

TEST(Model, RejectsImpossibleConfigs) {
  ModelConfig c = tiny(false);
  c.img_size = 9;
  EXPECT_THROW(c.validate("x"), mae::Error);
  c = tiny(false);
  c.num_heads = 5;
  EXPECT_THROW(c.validate("x"), mae::Error);
  EXPECT_THROW((MaeModel<CpuBackend<float>>(tiny(false), 2, 1.0)), mae::Error);
  EXPECT_THROW((MaeModel<CpuBackend<float>>(tiny(false), 2, 0.99)), mae::Error);  // keeps no patch of 16
  EXPECT_THROW(preset("mae_vit_gigantic"), mae::Error);
}

// A batch whose rows (images × tokens) pass the int a GEMM takes is refused before the arena is allocated: a
// mae::Error naming the rows, not std::bad_alloc (the arena would be terabytes) nor an int overflow. 128 × 128
// patches (the config's maximum) make 16385 tokens: 131064 images fit in 2^31 − 1 rows, 131065 do not.
TEST(Model, RejectsBatchRowsPastInt) {
  ModelConfig c = tiny(false);
  c.img_size = 256, c.patch_size = 2;  // 16384 patches
  auto msg = [](auto&& make) {
    try {
      make();
    } catch (const mae::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string mae = msg([&] { MaeModel<CpuBackend<float>>(c, 131071, 0.75, ModelMode::inference); });
  EXPECT_NE(mae.find("131071 images of 16385 tokens is 2147598335 rows"), std::string::npos) << mae;
  const std::string vit =
      msg([&] { VitClassifier<CpuBackend<float>>(c, {10, false, 0.0}, 131071, ModelMode::inference); });
  EXPECT_NE(vit.find("2147598335 rows"), std::string::npos) << vit;
  EXPECT_NO_THROW(check_batch_rows(131064, 16385));  // 2147483640 rows
  EXPECT_THROW(check_batch_rows(131065, 16385), mae::Error);
  EXPECT_THROW(check_batch_rows(0, 50), mae::Error);
}

// Host buffers (core/host_alloc.h): zero-filled and aligned whatever their size, below and above the 2 MiB where
// blocks are mapped on their own; a vector on HostAllocator behaves as a vector.
TEST(HostAlloc, ZeroFilledAlignedAndReleased) {
  for (size_t bytes : {size_t(1), size_t(64), size_t(4096) + 3, (size_t(2) << 20) - 1, size_t(2) << 20,
                       (size_t(5) << 20) + 7}) {
    SCOPED_TRACE(bytes);
    auto* p = static_cast<unsigned char*>(host_alloc_zeroed(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    size_t nonzero = 0;
    for (size_t i = 0; i < bytes; ++i) nonzero += p[i] != 0;
    EXPECT_EQ(nonzero, 0u);
    std::memset(p, 0xab, bytes);  // every byte is ours (ASan would report otherwise)
    host_free(p);
  }
  host_free(nullptr);
  std::vector<float, HostAllocator<float>> v(size_t(3) << 20);  // 12 MB: a mapped block
  EXPECT_EQ(std::count(v.begin(), v.end(), 0.f), ptrdiff_t(v.size()));
  v[7] = 2.f;
  v.resize(4);
  v.resize(size_t(1) << 20);  // grows again: the new elements are zeros, not the old values
  EXPECT_EQ(v[7], 0.f);
  EXPECT_EQ(v[3], 0.f);
  // HostMemory (the CPU backends' buffers) is this allocator.
  float* h = HostMemory::alloc<float>(size_t(1) << 20);
  EXPECT_EQ(h[12345], 0.f);
  HostMemory::release(h);
}
