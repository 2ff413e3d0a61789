// k-NN and linear probing: the weighted vote against hand computations, k-NN on separable features, LARS against a
// hand-computed two-step reference, a tiny cached linear probe (plus resume and --eval) on a synthetic IDX set,
// and the bad-input errors (library level and through the `mae` binary: message + non-zero exit).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "eval/frozen_encoder.h"
#include "eval/knn.h"
#include "train/linprobe.h"
#include "io/safetensors.h"
#include "model/mae.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "train/lars.h"

namespace fs = std::filesystem;

namespace mae {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// k-NN

TEST(Knn, VotesAreSummedExpSimilarityOverT) {
  // sims (0.9, 0.8, 0.7) with labels (1, 0, 1), T = 0.1: class 1 gets e^9 + e^7, class 0 gets e^8, class 2 nothing.
  const float sims[] = {0.9f, 0.8f, 0.7f};
  const int32_t labels[] = {1, 0, 1};
  double votes[3];
  knn_votes(votes, sims, labels, 3, 0.1, 3);
  EXPECT_NEAR(votes[0], std::exp(double(0.8f) / 0.1), 1e-9 * std::exp(8.0));
  EXPECT_NEAR(votes[1], std::exp(double(0.9f) / 0.1) + std::exp(double(0.7f) / 0.1), 1e-9 * std::exp(9.0));
  EXPECT_EQ(votes[2], 0.0);
}

TEST(Knn, WeightingBeatsMajorityAtLowTemperature) {
  // Bank on the unit circle: one class-0 point at angle 0, two class-1 points at ±60°. Query at angle 0.1:
  // sims ≈ (0.995, 0.58, 0.41). k = 3, T = 0.07: class 0 weight e^14.2 ≫ e^8.3 + e^5.9, so class 0 wins although
  // class 1 has the majority; with T = 100 the weights are ~equal and the majority (class 1) wins.
  const double a1 = M_PI / 3;
  const std::vector<float> bank = {1, 0, float(std::cos(a1)), float(std::sin(a1)), float(std::cos(-a1)),
                                   float(std::sin(-a1))};
  const std::vector<int32_t> bl = {0, 1, 1};
  const std::vector<float> q = {float(std::cos(0.1)), float(std::sin(0.1))};
  const std::vector<int32_t> ql = {0};
  std::vector<int32_t> pred;
  auto r = knn_classify(bank.data(), bl.data(), 3, q.data(), ql.data(), 1, 2, 2, 3, 0.07, &pred);
  EXPECT_EQ(pred[0], 0);
  EXPECT_EQ(r.top1, 1);
  // Hand computation of the same vote.
  double w0 = std::exp(std::cos(0.1) / 0.07), w1 = std::exp(std::cos(a1 - 0.1) / 0.07) + std::exp(std::cos(a1 + 0.1) / 0.07);
  EXPECT_GT(w0, w1);
  r = knn_classify(bank.data(), bl.data(), 3, q.data(), ql.data(), 1, 2, 2, 3, 100.0, &pred);
  EXPECT_EQ(pred[0], 1);
  EXPECT_EQ(r.top1, 0);
  // k = 1: the nearest alone.
  knn_classify(bank.data(), bl.data(), 3, q.data(), ql.data(), 1, 2, 2, 1, 100.0, &pred);
  EXPECT_EQ(pred[0], 0);
  // k larger than the bank is clamped.
  knn_classify(bank.data(), bl.data(), 3, q.data(), ql.data(), 1, 2, 2, 50, 0.07, &pred);
  EXPECT_EQ(pred[0], 0);
}

TEST(Knn, SeparableFeaturesGiveFullAccuracy) {
  // 7 classes, each a cluster around its own random unit direction in 32-d; noise small next to the gaps.
  const int C = 7, D = 32, per_bank = 40, per_q = 15;
  std::mt19937 g(5);
  std::normal_distribution<float> n01(0, 1);
  std::vector<std::vector<float>> centre(C, std::vector<float>(D));
  for (auto& c : centre)
    for (auto& v : c) v = n01(g);
  auto make = [&](int per, std::vector<float>& x, std::vector<int32_t>& y) {
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < per; ++i) {
        for (int d = 0; d < D; ++d) x.push_back(centre[c][d] + 0.15f * n01(g));
        y.push_back(c);
      }
  };
  std::vector<float> bank, q;
  std::vector<int32_t> bl, ql;
  make(per_bank, bank, bl);
  make(per_q, q, ql);
  l2_normalize_rows(bank.data(), int64_t(bl.size()), D);
  l2_normalize_rows(q.data(), int64_t(ql.size()), D);
  const KnnResult r = knn_classify(bank.data(), bl.data(), int64_t(bl.size()), q.data(), ql.data(),
                                   int64_t(ql.size()), D, C, 20, 0.07);
  EXPECT_EQ(r.n, C * per_q);
  EXPECT_EQ(r.top1, r.n);
  EXPECT_EQ(r.top5, r.n);
  EXPECT_DOUBLE_EQ(r.acc1(), 100.0);
}

// ---------------------------------------------------------------------------------------------------------------
// LARS

TEST(Lars, TwoStepsByHand) {
  // util/lars.py with lr 0.5, momentum 0.9, trust 0.001, weight_decay 0.25.
  const LarsConfig c{0.9, 0.001, 0.25};
  // Matrix p (2, 2) = [[3, 0], [0, 4]], ‖p‖ = 5.
  // Step 1, g = [[0.6, 0], [0, 0.8]]: dp = g + 0.25 p = [[1.35, 0], [0, 1.8]], ‖dp‖ = 2.25,
  //   q = 0.001 · 5 / 2.25 = 1/450, dp·q = [[0.003, 0], [0, 0.004]] = mu, p = p − 0.5 mu = [[2.9985, 0], [0, 3.998]].
  // Step 2, g = [[0, 1], [0, 0]]: dp = g + 0.25 p = [[0.749625, 1], [0, 0.9995]], q = 0.001 ‖p‖ / ‖dp‖
  //   = 0.001 · 4.997502... / 1.600281... = 0.0031228655003781316 (the Python float of the same expression),
  //   mu = 0.9 mu + q dp, p = p − 0.5 mu.
  std::vector<double> p = {3, 0, 0, 4}, mu(4, 0.0), s(4);
  lars_update<double>(p.data(), mu.data(), std::vector<double>{0.6, 0, 0, 0.8}.data(), 4, true, 0.5, c, s.data());
  EXPECT_NEAR(mu[0], 0.003, 1e-15);
  EXPECT_NEAR(mu[3], 0.004, 1e-15);
  EXPECT_NEAR(p[0], 2.9985, 1e-15);
  EXPECT_EQ(p[1], 0.0);
  EXPECT_NEAR(p[3], 3.998, 1e-15);
  lars_update<double>(p.data(), mu.data(), std::vector<double>{0, 1, 0, 0}.data(), 4, true, 0.5, c, s.data());
  const double q2 = 0.0031228655003781316;
  EXPECT_NEAR(mu[0], 0.9 * 0.003 + q2 * 0.749625, 1e-15);
  EXPECT_NEAR(mu[1], q2 * 1.0, 1e-15);
  EXPECT_EQ(mu[2], 0.0);
  EXPECT_NEAR(mu[3], 0.9 * 0.004 + q2 * 0.9995, 1e-15);
  EXPECT_NEAR(p[0], 2.9959795109746397, 1e-14);
  EXPECT_NEAR(p[1], -0.0015614327501890658, 1e-14);
  EXPECT_NEAR(p[3], 3.9946393479661864, 1e-14);

  // 1-D (bias): no decay, no trust ratio: plain momentum SGD.
  // b = (1, −2); g1 = (0.5, 0.25): mu = g1, b = (0.75, −2.125); g2 = (−1, 0): mu = (−0.55, 0.225),
  // b = (1.025, −2.2375).
  std::vector<double> b = {1, -2}, mub(2, 0.0);
  lars_update<double>(b.data(), mub.data(), std::vector<double>{0.5, 0.25}.data(), 2, false, 0.5, c, s.data());
  EXPECT_DOUBLE_EQ(b[0], 0.75);
  EXPECT_DOUBLE_EQ(b[1], -2.125);
  lars_update<double>(b.data(), mub.data(), std::vector<double>{-1, 0}.data(), 2, false, 0.5, c, s.data());
  EXPECT_NEAR(mub[0], -0.55, 1e-15);
  EXPECT_NEAR(mub[1], 0.225, 1e-15);
  EXPECT_NEAR(b[0], 1.025, 1e-15);
  EXPECT_NEAR(b[1], -2.2375, 1e-15);

  // A zero matrix: ‖p‖ = 0 → trust ratio 1 (dp = g + wd·0 = g).
  std::vector<double> z(4, 0.0), muz(4, 0.0);
  lars_update<double>(z.data(), muz.data(), std::vector<double>{1, 2, 3, 4}.data(), 4, true, 0.5, c, s.data());
  EXPECT_DOUBLE_EQ(z[0], -0.5);
  EXPECT_DOUBLE_EQ(z[3], -2.0);
  // A zero gradient on a non-zero matrix with no decay: ‖dp‖ = 0 → ratio 1, nothing moves.
  std::vector<double> p3 = {1, 2, 3, 4}, mu3(4, 0.0);
  lars_update<double>(p3.data(), mu3.data(), std::vector<double>(4, 0.0).data(), 4, true, 0.5, LarsConfig{0.9, 0.001, 0},
                      s.data());
  EXPECT_EQ(p3, (std::vector<double>{1, 2, 3, 4}));
}

// ---------------------------------------------------------------------------------------------------------------
// Synthetic data and checkpoints

void write_be32(std::ofstream& o, uint32_t v) {
  const unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  o.write(reinterpret_cast<const char*>(b), 4);
}

// IDX pair prefix-images-idx3-ubyte / prefix-labels-idx1-ubyte: class 1 bright, class 0 dark, both with pixel noise.
void write_idx(const fs::path& dir, const std::string& prefix, int n, unsigned seed, int bad_label = -1) {
  std::mt19937 g(seed);
  std::vector<uint8_t> px(size_t(n) * 28 * 28), lab(n);
  for (int i = 0; i < n; ++i) {
    lab[i] = uint8_t(i % 2);
    const int base = lab[i] ? 170 : 40;
    for (int k = 0; k < 28 * 28; ++k) px[size_t(i) * 784 + k] = uint8_t(base + int(g() % 60));
  }
  if (bad_label >= 0) lab[n - 1] = uint8_t(bad_label);
  std::ofstream im(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  write_be32(im, 0x803), write_be32(im, n), write_be32(im, 28), write_be32(im, 28);
  im.write(reinterpret_cast<const char*>(px.data()), px.size());
  std::ofstream lb(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(lb, 0x801), write_be32(lb, n);
  lb.write(reinterpret_cast<const char*>(lab.data()), lab.size());
}

ModelConfig tiny_config(int img = 28, int patch = 7, int chans = 1) {
  ModelConfig c;
  c.img_size = img, c.patch_size = patch, c.in_chans = chans;
  c.embed_dim = 32, c.depth = 1, c.num_heads = 2;
  c.decoder_embed_dim = 16, c.decoder_depth = 1, c.decoder_num_heads = 2;
  return c;
}

std::string save_encoder(const fs::path& path, const ModelConfig& c, uint64_t seed = 1) {
  MaeModel<CpuBackend<float>> m(c, 1, 0.75);
  m.init(seed);
  save_params(path.string(), c, m.params(), m.params_data());
  return path.string();
}

struct EvalFixture : ::testing::Test {
  fs::path dir, data, enc;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("mae_test_eval_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir / "data");
    data = dir / "data";
    write_idx(data, "train", 640, 1);
    write_idx(data, "t10k", 60, 2);
    enc = save_encoder(dir / "enc.safetensors", tiny_config());
  }
  void TearDown() override { fs::remove_all(dir); }

  LinprobeArgs probe_args(const std::string& out) const {
    LinprobeArgs a;
    a.finetune = enc.string();
    a.data_path = data.string();
    a.output_dir = out;
    a.cache_features = true;
    a.batch_size = 16;
    // LARS moves the weight matrix by ~lr · trust (0.001) · ‖p‖ per step (×10 with momentum), while the bias takes
    // plain momentum-SGD steps of lr: lr 0.5 over 8 × 40 steps turns the head around and keeps the bias stable.
    // (blr 0.1 at batch 16 gives lr 0.006: the head would hardly move in a unit test's few hundred steps.)
    a.lr = 0.5;
    a.epochs = 8;
    a.warmup_epochs = 1;
    a.num_workers = 0;
    a.print_every_s = 100;
    return a;
  }
};

// Runs `mae ARGS`, returns the exit status and the combined output.
std::pair<int, std::string> run_mae(const std::string& args) {
  const std::string cmd = std::string(MAE_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 512> buf;
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int st = p ? pclose(p) : -1;
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------------------------------------------
// End to end on the synthetic set

TEST_F(EvalFixture, CachedLinearProbeSeparatesBrightFromDark) {
  LinprobeArgs a = probe_args((dir / "probe").string());
  const LinprobeResult r = run_linprobe(a);
  EXPECT_GT(r.acc1, 90.0);
  EXPECT_LT(r.loss, 0.6);  // from ln 2 ≈ 0.69: the head learned, the accuracy is not the random init's luck
  EXPECT_EQ(r.epochs_run, 8);
  EXPECT_TRUE(std::isnan(r.acc5));  // 2 classes: no top-5
  const fs::path ck = dir / "probe" / "checkpoint-last.safetensors";
  ASSERT_TRUE(fs::exists(ck));
  {
    io::SafeTensorsReader f(ck.string());
    EXPECT_EQ(f.entry("head.weight").shape, (std::vector<int64_t>{2, 32}));
    EXPECT_EQ(f.entry("head.bias").shape, (std::vector<int64_t>{2}));
    EXPECT_EQ(f.entry("head_bn.running_mean").shape, (std::vector<int64_t>{32}));
    EXPECT_EQ(f.entry("head_bn.running_var").shape, (std::vector<int64_t>{32}));
    EXPECT_EQ(f.read_i64("head_bn.num_batches_tracked")[0], 8 * (640 / 16));
    EXPECT_EQ(f.metadata().at("encoder_checkpoint"), fs::absolute(enc).lexically_normal().string());
    EXPECT_NE(f.metadata().at("encoder_config").find("\"embed_dim\":32"), std::string::npos);
  }
  // log.txt: one JSON row per epoch, marked as the cached mode
  std::ifstream log(dir / "probe" / "log.txt");
  std::string line;
  int rows = 0;
  while (std::getline(log, line)) {
    ++rows;
    EXPECT_NE(line.find("cached features, no augmentation"), std::string::npos) << line;
    EXPECT_NE(line.find("test_acc1"), std::string::npos) << line;
  }
  EXPECT_EQ(rows, 8);

  // --eval of the saved probe reproduces the last epoch's accuracy.
  LinprobeArgs e;
  e.eval = true;
  e.resume = ck.string();
  e.data_path = data.string();
  e.batch_size = 16;
  e.num_workers = 0;
  const LinprobeResult re = run_linprobe(e);
  EXPECT_DOUBLE_EQ(re.acc1, r.acc1);
  EXPECT_DOUBLE_EQ(re.loss, r.loss);

}

std::vector<float> all_floats(const std::string& path, const std::vector<std::string>& names) {
  io::SafeTensorsReader f(path);
  std::vector<float> v;
  for (const auto& n : names) {
    auto t = f.read_f32(n);
    v.insert(v.end(), t.begin(), t.end());
  }
  return v;
}

TEST_F(EvalFixture, ResumeContinuesExactly) {
  // 4 epochs straight (keeping checkpoint-<epoch> every epoch) == resume from the checkpoint after epoch 2 + 2 more,
  // bit for bit: the schedule depends on --epochs and the data order on (seed, epoch) only.
  LinprobeArgs a = probe_args((dir / "straight").string());
  a.epochs = 4;
  a.save_every = 1;
  run_linprobe(a);
  ASSERT_TRUE(fs::exists(dir / "straight" / "checkpoint-1.safetensors"));
  fs::create_directories(dir / "split");
  fs::copy_file(dir / "straight" / "checkpoint-1.safetensors", dir / "split" / "ck.safetensors");
  LinprobeArgs b = probe_args((dir / "split").string());
  b.epochs = 4;
  b.resume = (dir / "split" / "ck.safetensors").string();
  b.finetune = "";  // the encoder comes from the probe's metadata
  const LinprobeResult rb = run_linprobe(b);
  EXPECT_EQ(rb.epochs_run, 2);
  const std::vector<std::string> names = {"head.weight", "head.bias", "head_bn.running_mean", "head_bn.running_var",
                                          "optim.mu.head.weight", "optim.mu.head.bias"};
  EXPECT_EQ(all_floats((dir / "straight" / "checkpoint-last.safetensors").string(), names),
            all_floats((dir / "split" / "checkpoint-last.safetensors").string(), names));
}

TEST_F(EvalFixture, AugmentedProbeRuns) {
  // The official path: RandomResizedCrop + flip per batch, the encoder run on every batch.
  LinprobeArgs a = probe_args((dir / "aug").string());
  a.cache_features = false;
  a.epochs = 2;
  a.num_workers = 2;
  const LinprobeResult r = run_linprobe(a);
  EXPECT_EQ(r.epochs_run, 2);
  std::ifstream log(dir / "aug" / "log.txt");
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line.find("cached"), std::string::npos) << line;
  io::SafeTensorsReader f((dir / "aug" / "checkpoint-last.safetensors").string());
  EXPECT_NE(f.metadata().at("linprobe").find("\"cached_features\":false"), std::string::npos);
}

TEST_F(EvalFixture, BaselineProbes) {
  // Raw pixels: the 784-d normalised image through the same BN + linear head; --eval of that probe needs no encoder.
  LinprobeArgs a = probe_args((dir / "raw").string());
  a.finetune = "";
  a.raw_pixels = true;
  a.epochs = 3;
  const LinprobeResult r = run_linprobe(a);
  EXPECT_GT(r.acc1, 90.0);
  {
    io::SafeTensorsReader f((dir / "raw" / "checkpoint-last.safetensors").string());
    EXPECT_EQ(f.entry("head.weight").shape, (std::vector<int64_t>{2, 784}));
  }
  LinprobeArgs e;
  e.eval = true;
  e.resume = (dir / "raw" / "checkpoint-last.safetensors").string();
  e.data_path = data.string();
  e.num_workers = 0;
  EXPECT_DOUBLE_EQ(run_linprobe(e).acc1, r.acc1);
  // Random init: the checkpoint's config, weights from the seed; --eval rebuilds the same encoder from the metadata.
  LinprobeArgs b = probe_args((dir / "rand").string());
  b.random_init = true;
  b.seed = 7;
  b.epochs = 2;
  const LinprobeResult rb = run_linprobe(b);
  e.resume = (dir / "rand" / "checkpoint-last.safetensors").string();
  EXPECT_DOUBLE_EQ(run_linprobe(e).acc1, rb.acc1);
}

TEST_F(EvalFixture, EmbedGivesTheFeaturesOfKnnAndLinprobe) {
  // The same flags give the same features: `mae embed` (defaults) and extract_features, what knn and linprobe run,
  // share one transform (the data's normalisation, the crop rule) and one encoder path.
  for (const bool gp : {false, true}) {
    const fs::path out = dir / (gp ? "f_gp.safetensors" : "f_cls.safetensors");
    const auto [rc, log] = run_mae("embed --checkpoint " + enc.string() + " --data_path " + data.string() +
                                   " --split test --batch_size 16 --num_workers 0 --output " + out.string() +
                                   (gp ? " --global_pool" : ""));
    ASSERT_EQ(rc, 0) << log;
    const std::vector<float> got = io::SafeTensorsReader(out.string()).read_f32("features");
    auto ds = open_dataset(data.string(), "test");
    FrozenEncoder e(EncoderSpec{enc.string(), "", false, 0, {}}, 16);
    const FeatureSet want =
        extract_features(&e, *ds, probe_eval_transform(*ds, 28, 1), gp, 16, 0, "test features");
    ASSERT_EQ(got.size(), want.x.size());
    EXPECT_EQ(got, want.x) << (gp ? "mean of patch tokens" : "cls token");
  }
}

TEST_F(EvalFixture, KnnOnSyntheticData) {
  KnnArgs k;
  k.data_path = data.string();
  k.num_workers = 0;
  k.raw_pixels = true;
  EXPECT_GT(run_knn(k).acc1(), 95.0);
  k.raw_pixels = false;
  k.checkpoint = enc.string();
  k.k = 5;
  k.batch_size = 32;
  const KnnResult r = run_knn(k);
  EXPECT_EQ(r.n, 60);
  k.global_pool = true;
  EXPECT_EQ(run_knn(k).n, 60);
  k.random_init = true;  // the checkpoint's config, weights from --seed
  EXPECT_EQ(run_knn(k).n, 60);
  k.output_dir = (dir / "knn").string();
  run_knn(k);
  EXPECT_TRUE(fs::exists(dir / "knn" / "knn.json"));
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input

TEST_F(EvalFixture, LabelsOutOfRange) {
  write_idx(data, "t10k", 60, 2, /*bad_label=*/5);  // test split has a label the 2-class train split lacks
  KnnArgs k;
  k.data_path = data.string();
  k.raw_pixels = true;
  k.num_workers = 0;
  const std::string ek = error_of([&] { run_knn(k); });
  EXPECT_NE(ek.find("label 5"), std::string::npos) << ek;
  EXPECT_NE(ek.find("outside"), std::string::npos) << ek;
  const std::string el = error_of([&] { run_linprobe(probe_args((dir / "p").string())); });
  EXPECT_NE(el.find("label 5"), std::string::npos) << el;
  EXPECT_FALSE(fs::exists(dir / "p" / "checkpoint-last.safetensors"));
}

TEST_F(EvalFixture, NbClassesMustMatchData) {
  LinprobeArgs a = probe_args((dir / "p").string());
  a.nb_classes = 10;
  const std::string e = error_of([&] { run_linprobe(a); });
  EXPECT_NE(e.find("--nb_classes 10"), std::string::npos) << e;
  EXPECT_NE(e.find("2 classes"), std::string::npos) << e;
}

TEST_F(EvalFixture, CheckpointMustFitTheData) {
  // 3 channels vs grey data
  const std::string rgb = save_encoder(dir / "rgb.safetensors", tiny_config(28, 7, 3));
  LinprobeArgs a = probe_args((dir / "p").string());
  a.finetune = rgb;
  std::string e = error_of([&] { run_linprobe(a); });
  EXPECT_NE(e.find(rgb), std::string::npos) << e;
  EXPECT_NE(e.find("3-channel"), std::string::npos) << e;
  EXPECT_NE(e.find("1 channel"), std::string::npos) << e;
  // 32 px vs 28-px data
  const std::string big = save_encoder(dir / "big.safetensors", tiny_config(32, 8, 1));
  KnnArgs k;
  k.checkpoint = big;
  k.data_path = data.string();
  k.num_workers = 0;
  e = error_of([&] { run_knn(k); });
  EXPECT_NE(e.find("32x32"), std::string::npos) << e;
  EXPECT_NE(e.find("28x28"), std::string::npos) << e;
}

TEST_F(EvalFixture, EvalNeedsAProbeCheckpoint) {
  LinprobeArgs e;
  e.eval = true;
  e.resume = enc.string();  // an encoder, not a probe
  e.data_path = data.string();
  e.num_workers = 0;
  std::string msg = error_of([&] { run_linprobe(e); });
  EXPECT_NE(msg.find("needs a probe checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("encoder"), std::string::npos) << msg;
  e.resume = "";
  e.finetune = enc.string();
  msg = error_of([&] { run_linprobe(e); });
  EXPECT_NE(msg.find("--resume"), std::string::npos) << msg;
}

TEST_F(EvalFixture, CliFeatureFlagsLastOneWins) {
  // argparse store_true/store_false on one dest (--global_pool / --cls_token): the later flag decides.
  const std::string base = "knn --checkpoint " + enc.string() + " --data_path " + data.string() + " --k 5 ";
  auto [st, out] = run_mae(base + "--global_pool --cls_token");
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("cls token"), std::string::npos) << out;
  std::tie(st, out) = run_mae(base + "--cls_token --global_pool");
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("mean of patch tokens"), std::string::npos) << out;
}

TEST_F(EvalFixture, CliErrorsExitNonZero) {
  auto [st, out] = run_mae("linprobe --eval --resume " + enc.string() + " --data_path " + data.string());
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("needs a probe checkpoint"), std::string::npos) << out;
  std::tie(st, out) = run_mae("linprobe --finetune " + enc.string() + " --data_path " + data.string() +
                              " --nb_classes 3 --cache_features --output_dir " + (dir / "x").string());
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("--nb_classes 3 does not match"), std::string::npos) << out;
  std::tie(st, out) = run_mae("knn --checkpoint " + (dir / "nope.safetensors").string() + " --data_path " + data.string());
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("nope.safetensors"), std::string::npos) << out;
  // a probe given where an encoder is expected
  LinprobeArgs a = probe_args((dir / "probe").string());
  a.epochs = 1;
  run_linprobe(a);
  std::tie(st, out) = run_mae("knn --checkpoint " + (dir / "probe" / "checkpoint-last.safetensors").string() +
                              " --data_path " + data.string());
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("linear-probe checkpoint"), std::string::npos) << out;
}

}  // namespace
}  // namespace mae
