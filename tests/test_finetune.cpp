// `mae finetune` end to end on a tiny synthetic IDX dataset (3 classes told apart by brightness, 8×8 grey) and a
// tiny MAE checkpoint: it learns, writes the official log.txt and the best/last checkpoints, --eval reproduces the
// accuracy, the full augmentation path (RandAugment, random erasing, mixup + cutmix, drop path) runs, a resumed run
// is bit-identical to an uninterrupted one; bad input fails with a clear message and a non-zero exit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "io/safetensors.h"
#include "model/mae.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "train/finetune.h"

using namespace mae;
namespace fs = std::filesystem;

namespace {

void write_be32(std::ofstream& o, uint32_t v) {
  const unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  o.write(reinterpret_cast<const char*>(b), 4);
}

// MNIST-style IDX files: class k has pixels around 30 / 128 / 220 with ±25 noise.
void write_idx(const fs::path& dir, const std::string& prefix, int n, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> noise(-25, 25);
  std::ofstream im(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary), lb(dir / (prefix + "-labels-idx1-ubyte"),
                                                                                 std::ios::binary);
  write_be32(im, 0x803), write_be32(im, uint32_t(n)), write_be32(im, 8), write_be32(im, 8);
  write_be32(lb, 0x801), write_be32(lb, uint32_t(n));
  const int base[3] = {30, 128, 220};
  for (int i = 0; i < n; ++i) {
    const int c = i % 3;
    for (int p = 0; p < 64; ++p) im.put(char(uint8_t(std::clamp(base[c] + noise(g), 0, 255))));
    lb.put(char(c));
  }
}

class Finetune : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("mae_test_finetune_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    write_idx(dir_ / "data", "train", 192, 1);
    write_idx(dir_ / "data", "t10k", 60, 2);
    ModelConfig c;
    c.img_size = 8, c.patch_size = 4, c.in_chans = 1, c.embed_dim = 16, c.depth = 2, c.num_heads = 2;
    c.decoder_embed_dim = 8, c.decoder_depth = 1, c.decoder_num_heads = 2;
    MaeModel<CpuBackend<float>> m(c, 1, 0.5);
    m.init(0);
    save_params((dir_ / "mae.safetensors").string(), c, m.params(), m.params_data());
    c.in_chans = 3;
    MaeModel<CpuBackend<float>> rgb(c, 1, 0.5);
    rgb.init(0);
    save_params((dir_ / "mae_rgb.safetensors").string(), c, rgb.params(), rgb.params_data());
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static FinetuneArgs base_args(const std::string& out) {
    FinetuneArgs a;
    a.finetune = (dir_ / "mae.safetensors").string();
    a.data_path = (dir_ / "data").string();
    a.output_dir = (dir_ / out).string();
    a.batch_size = 32;
    a.epochs = 6;
    a.warmup_epochs = 1;
    a.lr = 0.01;
    a.num_workers = 1;
    a.print_every_s = 1e9;
    return a;
  }

  // Runs the binary; returns the exit status and the combined output.
  static int run_cli(const std::string& args, std::string* out) {
    const std::string cmd = std::string(MAE_BINARY) + " finetune " + args + " --data_path " +
                            (dir_ / "data").string() + " --num_workers 0 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    out->clear();
    while (size_t n = fread(buf, 1, sizeof buf, p)) out->append(buf, n);
    const int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

  static fs::path dir_;
};
fs::path Finetune::dir_;

}  // namespace

TEST_F(Finetune, LearnsLogsAndEvaluates) {
  FinetuneArgs a = base_args("plain");
  a.aa.clear(), a.reprob = 0, a.layer_decay = 1.0;  // a clean signal: brightness survives the random crops
  const FinetuneResult r = run_finetune(a);
  EXPECT_EQ(r.epochs_run, 6);
  EXPECT_GE(r.best_acc1, 95.0);
  // log.txt: one JSON line per epoch with the official keys
  std::ifstream log(fs::path(a.output_dir) / "log.txt");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    const auto j = nlohmann::json::parse(line);
    for (const char* k : {"train_lr", "train_loss", "test_acc1", "test_acc5", "test_loss", "epoch", "n_parameters"})
      EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["epoch"].get<int>(), lines);
    ++lines;
  }
  EXPECT_EQ(lines, 6);
  // --eval of the best checkpoint reproduces the best accuracy (same eval batches)
  FinetuneArgs e = base_args("plain");
  e.eval = true;
  e.finetune.clear();
  e.resume = (fs::path(a.output_dir) / "checkpoint-best.safetensors").string();
  EXPECT_DOUBLE_EQ(run_finetune(e).best_acc1, r.best_acc1);
  // the CLI prints the official line
  std::string out;
  EXPECT_EQ(run_cli("--eval --batch_size 32 --resume " + e.resume, &out), 0) << out;
  EXPECT_NE(out.find("Accuracy of the network on the 60 test images"), std::string::npos) << out;
}

TEST_F(Finetune, FullAugmentationAndExactResume) {
  // defaults: RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, drop path 0.1, smoothing 0.1; plus mixup/cutmix
  FinetuneArgs a = base_args("aug_full");
  a.epochs = 3;
  a.mixup = 0.8, a.cutmix = 1.0;
  a.global_pool = false;  // the --cls_token head too
  const FinetuneResult full = run_finetune(a);
  EXPECT_TRUE(std::isfinite(full.last_train_loss));
  FinetuneArgs b = a;
  b.output_dir = (dir_ / "aug_resumed").string();
  b.stop_epoch = 1;
  run_finetune(b);
  b.stop_epoch = 0;
  b.resume = "auto";
  const FinetuneResult resumed = run_finetune(b);
  EXPECT_EQ(resumed.epochs_run, 2);
  io::SafeTensorsReader x((fs::path(a.output_dir) / "checkpoint-last.safetensors").string());
  io::SafeTensorsReader y((fs::path(b.output_dir) / "checkpoint-last.safetensors").string());
  ASSERT_EQ(x.names(), y.names());
  for (const auto& n : x.names()) EXPECT_EQ(x.read_f32(n), y.read_f32(n)) << n;
  EXPECT_EQ(full.last_acc1, resumed.last_acc1);
}

TEST_F(Finetune, BadInputFailsClearly) {
  std::string out;
  const std::string out_dir = " --output_dir " + (dir_ / "bad").string();
  const std::string mae = (dir_ / "mae.safetensors").string();
  // --nb_classes smaller than the labels need
  int rc = run_cli("--finetune " + mae + " --nb_classes 2" + out_dir, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("--nb_classes 2 but the labels"), std::string::npos) << out;
  // a checkpoint for 3-channel images on grey data
  rc = run_cli("--finetune " + (dir_ / "mae_rgb.safetensors").string() + out_dir, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("3-channel images"), std::string::npos) << out;
  EXPECT_NE(out.find("--in_chans 3"), std::string::npos) << out;
  // --eval of a plain MAE checkpoint
  rc = run_cli("--eval --resume " + mae, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("not a fine-tuned classifier"), std::string::npos) << out;
  // mixup with an odd batch, an unknown RandAugment policy, a missing checkpoint
  rc = run_cli("--finetune " + mae + " --mixup 0.8 --batch_size 31" + out_dir, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("odd"), std::string::npos) << out;
  rc = run_cli("--finetune " + mae + " --aa rand-z3" + out_dir, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("--aa"), std::string::npos) << out;
  rc = run_cli("--finetune " + (dir_ / "nope.safetensors").string() + out_dir, &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("nope.safetensors"), std::string::npos) << out;
}
